"""Finding, checking and loading the fonts that captchas are drawn with."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable
from pathlib import Path

from PIL import ImageFont

from plumbing.errors import UsageError

FONT_SUFFIXES = (".ttf", ".otf", ".ttc")


def default_font() -> str:
    """The DroidSansMono font that ships with the ``captcha`` package."""
    from captcha.image import DEFAULT_FONTS

    return DEFAULT_FONTS[0]


def resolve_fonts(args: Iterable[str]) -> tuple[str, ...]:
    """Expand files and directories into a sorted tuple of font paths (default font if none)."""
    paths: list[str] = []
    for arg in args:
        p = Path(arg)
        if p.is_dir():
            found = sorted(str(f) for f in p.iterdir() if f.suffix.lower() in FONT_SUFFIXES)
            if not found:
                raise UsageError(f"font directory {arg} holds no {'/'.join(FONT_SUFFIXES)} files")
            paths.extend(found)
        elif p.is_file():
            paths.append(str(p))
        else:
            raise UsageError(f"font file not found: {arg}")
    return tuple(paths) or (default_font(),)


def check_font(path: str, charset: str) -> None:
    """Refuse a file that is not a font, or a font that lacks glyphs for some symbols."""
    try:
        ImageFont.truetype(path, 20)
    except OSError:
        raise UsageError(f"not a usable font file: {path}") from None
    missing = missing_glyphs(path, charset)
    if missing:
        raise UsageError(f"font {Path(path).name} has no glyph for {''.join(missing)!r}")


def missing_glyphs(path: str, charset: str) -> list[str]:
    """Symbols of ``charset`` that the font's character map does not cover."""
    from fontTools.ttLib import TTFont  # matplotlib's dependency; only needed here

    try:
        with TTFont(path, fontNumber=0, lazy=True) as font:
            cmap = font.getBestCmap() or {}
    except Exception:  # fontTools raises many types on odd files; PIL already loaded it
        return []
    return [c for c in charset if ord(c) not in cmap]


@functools.cache
def load_font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


def file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
