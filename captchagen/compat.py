"""``ImageCaptcha``: the ``captcha`` library's API over captchagen's seeded renderer.

Code written for ``captcha`` switches by changing one import::

    from captchagen import ImageCaptcha          # was: from captcha.image import ImageCaptcha
    gen = ImageCaptcha(width=160, height=60, seed=7)
    gen.write("2b827", "out.png")

The same seed and the same sequence of calls give the same images: call ``k`` of an instance
draws from ``rng_for(seed, k, "image")``, the stream captchagen uses for image ``k``.
"""

from __future__ import annotations

import dataclasses
import os
from io import BytesIO
from typing import IO

from PIL import Image

from captchagen.render import render
from captchagen.sampling import rng_for
from captchagen.spec import CaptchaSpec, NoiseSpec
from plumbing.errors import UsageError

ColorTuple = tuple[int, int, int] | tuple[int, int, int, int]


class ImageCaptcha:
    """Create image captchas, as ``captcha.image.ImageCaptcha`` does, but reproducibly.

    :param width: image width in pixels.
    :param height: image height in pixels.
    :param fonts: font files (default: the DroidSansMono font shipped with ``captcha``).
    :param font_sizes: sizes to choose from per glyph (default: (42, 50, 56) scaled to
        the height, as ``captcha``'s).
    :param seed: the seed of the whole sequence of images; ``None`` draws a random one.
    :param noise: captchagen's distortion settings (default: ``captcha``'s look).
    """

    def __init__(self, width: int = 160, height: int = 60, fonts: list[str] | None = None,
                 font_sizes: tuple[int, ...] | None = None, seed: int | None = None,
                 noise: NoiseSpec | None = None) -> None:
        self._spec = CaptchaSpec(
            charset="0123456789", width=width, height=height,
            fonts=tuple(os.path.abspath(f) for f in fonts or ()),
            font_sizes=tuple(font_sizes or ()), noise=noise or NoiseSpec())
        self.seed = seed if seed is not None else int.from_bytes(os.urandom(8), "little")
        self.calls = 0  # images drawn so far: the next one uses stream ``calls``

    @property
    def width(self) -> int:
        return self._spec.width

    @property
    def height(self) -> int:
        return self._spec.height

    def generate_image(self, chars: str, bg_color: ColorTuple | None = None,
                       fg_color: ColorTuple | None = None) -> Image.Image:
        """The captcha of ``chars`` as an RGB ``PIL.Image``; advances the sequence by one."""
        if not isinstance(chars, str) or not chars:
            raise UsageError(f"chars must be a non-empty string, got {chars!r}")
        spec = dataclasses.replace(
            self._spec, background=_rgb(bg_color), text_color=_rgb(fg_color))
        image = render(chars, spec, rng_for(self.seed, self.calls, "image"))
        self.calls += 1
        return image

    def generate(self, chars: str, format: str = "png", bg_color: ColorTuple | None = None,
                 fg_color: ColorTuple | None = None) -> BytesIO:
        """The captcha of ``chars`` encoded as ``format``, in a ``BytesIO`` at position 0."""
        out = BytesIO()
        self.generate_image(chars, bg_color, fg_color).save(out, format=format)
        out.seek(0)
        return out

    def write(self, chars: str, output: str | os.PathLike | IO[bytes], format: str = "png",
              bg_color: ColorTuple | None = None, fg_color: ColorTuple | None = None) -> None:
        """Write the captcha of ``chars`` to a file name or a binary file object."""
        self.generate_image(chars, bg_color, fg_color).save(output, format=format)


def _rgb(color: ColorTuple | None) -> tuple[int, int, int] | None:
    """captcha takes RGB or RGBA colours; the opacity of a text colour is dropped."""
    if color is None:
        return None
    if len(color) not in (3, 4):
        raise UsageError(f"a colour is (r, g, b) or (r, g, b, a), got {color!r}")
    return (int(color[0]), int(color[1]), int(color[2]))
