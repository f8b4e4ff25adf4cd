"""Generator micro-benchmarks: rendering one captcha, and encoding it, side by side.

    pytest benchmarks/ --benchmark-only
"""

from __future__ import annotations

import io
import random

import pytest

from captchagen import CaptchaSpec, parse_charset, render, rng_for
from captchagen.dataset import DatasetJob, encode

SPEC = CaptchaSpec(charset=parse_charset("alnum"), min_len=4, max_len=6)


def _texts(n: int = 64) -> list[str]:
    pick = random.Random(0)
    return ["".join(pick.choices(SPEC.charset, k=pick.randint(4, 6))) for _ in range(n)]


def test_tutorial_captcha_generate_image(benchmark):
    """The captcha package's own ImageCaptcha.generate_image (rendering only)."""
    from captcha.image import ImageCaptcha

    gen, texts = ImageCaptcha(), _texts()
    it = iter(range(10**9))
    benchmark(lambda: gen.generate_image(texts[next(it) % len(texts)]))


def test_captchagen_render(benchmark):
    texts = _texts()
    it = iter(range(10**9))

    def one() -> None:
        i = next(it)
        render(texts[i % len(texts)], SPEC, rng_for(0, i, "image"))

    benchmark(one)


@pytest.mark.parametrize("level", [1, 6])
def test_png_encoding(benchmark, level):
    """zlib level 1 (captchagen's default) against PIL's default 6."""
    image = render("2b827x", SPEC, rng_for(0, 0, "image"))
    job = DatasetJob(spec=SPEC, n=1, png_level=level)
    benchmark(lambda: encode(image, job))


def test_tutorial_png_save(benchmark):
    """How the tutorial loop saves: PIL's default PNG settings."""
    image = render("2b827x", SPEC, rng_for(0, 0, "image"))
    benchmark(lambda: image.save(io.BytesIO(), format="PNG"))
