"""Finding, checking and loading the fonts that captchas are drawn with."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable
from pathlib import Path

from PIL import ImageFont

from plumbing.errors import UsageError

FONT_SUFFIXES = (".ttf", ".otf", ".ttc")
# Installed fonts whose character map claims letters and digits but that draw something else:
# a fallback font of placeholder boxes, and TeX math fonts that map ASCII to symbols.
NOT_TEXT_FONTS = {"LastResortHE-Regular", "cmex10", "cmsy10"}


def default_font() -> str:
    """The DroidSansMono font that ships with the ``captcha`` package."""
    from captcha.image import DEFAULT_FONTS

    return DEFAULT_FONTS[0]


def installed_fonts() -> tuple[str, ...]:
    """Every TrueType font that the installed packages ship: captcha's DroidSansMono and
    matplotlib's DejaVu, STIX and Computer Modern families (nothing is downloaded)."""
    import matplotlib

    dirs = [Path(default_font()).parent, Path(matplotlib.get_data_path()) / "fonts" / "ttf"]
    found = {str(f) for d in dirs if d.is_dir() for f in d.iterdir()
             if f.suffix.lower() in FONT_SUFFIXES and f.stem not in NOT_TEXT_FONTS}
    return tuple(sorted(found, key=lambda f: Path(f).name.lower()))


def font_family(name: str) -> tuple[str, ...]:
    """Installed fonts whose file name starts with ``name`` (case-insensitive): ``dejavu``,
    ``DejaVuSerif``, ``stix``, ``cm`` (Computer Modern), ``droid``; ``all`` for every one."""
    fonts = installed_fonts()
    if name.lower() == "all":
        return fonts
    return tuple(f for f in fonts if Path(f).stem.lower().startswith(name.lower()))


def select_fonts(args: Iterable[str], charset: str) -> tuple[str, ...]:
    """The fonts to draw ``charset`` with: files and folders must cover every symbol (else
    refused, naming the symbols); families and ``all`` keep the members that do. The
    default (no args, returned as ``()``) is checked as well."""
    args = tuple(args)
    if not args:
        check_font(default_font(), charset)
        return ()
    chosen: list[str] = []
    for arg in args:
        if Path(arg).exists() or not font_family(arg):
            for path in resolve_fonts([arg]):
                check_font(path, charset)
                chosen.append(path)
            continue
        family = font_family(arg)
        usable = [f for f in family if not missing_glyphs(f, charset)]
        if not usable:
            raise UsageError(f"no font of family {arg!r} has glyphs for every symbol of the "
                             f"charset (e.g. {Path(family[0]).name} lacks "
                             f"{''.join(missing_glyphs(family[0], charset))!r})")
        chosen += usable
    return tuple(dict.fromkeys(chosen))


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
        raise UsageError(f"font {Path(path).name} has no glyph for {''.join(missing)!r} of the "
                         "charset (it would draw empty boxes): pick --fonts that cover them")


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
