"""captchagen.ImageCaptcha: the captcha library's API, seeded."""

from __future__ import annotations

import inspect
import io

import numpy as np
from captcha.image import ImageCaptcha as Original
from PIL import Image

from captchagen import ImageCaptcha


def test_same_method_names_and_parameters_as_captcha():
    for name in ("generate_image", "generate", "write"):
        ours = list(inspect.signature(getattr(ImageCaptcha, name)).parameters)
        theirs = list(inspect.signature(getattr(Original, name)).parameters)
        assert ours == theirs, name
    init = list(inspect.signature(ImageCaptcha.__init__).parameters)
    assert init[: 5] == list(inspect.signature(Original.__init__).parameters)
    assert "seed" in init


def test_output_size_and_mode_match_captcha():
    for w, h in ((160, 60), (200, 80)):
        ours = ImageCaptcha(width=w, height=h, seed=1).generate_image("ab12")
        theirs = Original(width=w, height=h).generate_image("ab12")
        assert (ours.size, ours.mode) == (theirs.size, theirs.mode) == ((w, h), "RGB")


def test_same_seed_same_call_sequence_same_images():
    a, b = ImageCaptcha(seed=7), ImageCaptcha(seed=7)
    first = [np.asarray(a.generate_image(t)) for t in ("1234", "abcd", "1234")]
    second = [np.asarray(b.generate_image(t)) for t in ("1234", "abcd", "1234")]
    for x, y in zip(first, second):
        assert np.array_equal(x, y)
    # each call advances the sequence: the same text twice gives two different images
    assert not np.array_equal(first[0], first[2])
    assert not np.array_equal(first[0], np.asarray(ImageCaptcha(seed=8).generate_image("1234")))


def test_generate_and_write_encode_the_same_images(tmp_path):
    data = ImageCaptcha(seed=3).generate("x9z", format="png")
    assert isinstance(data, io.BytesIO) and data.tell() == 0
    ImageCaptcha(seed=3).write("x9z", str(tmp_path / "a.png"))
    buf = io.BytesIO()
    ImageCaptcha(seed=3).write("x9z", buf, format="jpeg")
    with Image.open(data) as x, Image.open(tmp_path / "a.png") as y:
        assert np.array_equal(np.asarray(x), np.asarray(y))
    assert Image.open(io.BytesIO(buf.getvalue())).format == "JPEG"


def test_colours_as_captcha_takes_them():
    im = ImageCaptcha(seed=0).generate_image("42", bg_color=(255, 255, 255),
                                             fg_color=(0, 0, 0, 255))
    assert im.getpixel((0, 0)) == (255, 255, 255)
