"""Drawing one captcha from a text, a spec and a seeded random generator.

The look follows captcha 0.7.1's ``ImageCaptcha`` (per-glyph rotation and warp, overlapping
glyphs, dots, an arc, SMOOTH), with three differences that matter for research data:
every random draw comes from the ``rng`` argument, so images are reproducible; glyphs are
never clipped, because the text line is laid out inside the canvas and, when it is too
wide or tall, scaled down uniformly rather than squashed in one direction; and glyph
rasters are cached, which makes drawing several times faster.
"""

from __future__ import annotations

import functools
import math
import random
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFilter, ImageOps

from captchagen import effects
from captchagen.fonts import load_font, resolve_fonts
from captchagen.spec import CaptchaSpec, Color, NoiseSpec
from captchagen.style import StyleSpec
from plumbing.errors import UsageError

MARGIN = 2  # pixels kept free of text on every side of the canvas
# captcha's mask boost: anti-aliased edges become nearly opaque, giving its bold look.
_BOOST = [min(255, int(i * 1.97)) for i in range(256)]


@dataclass(frozen=True)
class Rendered:
    """A captcha and how its text was placed (for tests and analysis)."""

    image: Image.Image
    font: str
    font_sizes: tuple[int, ...]
    text_box: tuple[int, int, int, int]  # (left, top, right, bottom) of the text line
    scale: float  # uniform scale applied to the text line to fit (1.0 = as drawn)


def render(text: str, spec: CaptchaSpec, rng: random.Random) -> Image.Image:
    """Draw ``text`` as a captcha; RGB, or L when ``spec.grayscale``."""
    return render_with_info(text, spec, rng).image


def render_with_info(text: str, spec: CaptchaSpec, rng: random.Random) -> Rendered:
    if not text:
        raise UsageError("cannot draw an empty text")
    style, noise = spec.style, spec.noise
    if style.randomize:
        style, noise = effects.random_look(rng, noise)
    fonts = spec.fonts or resolve_fonts(())
    font = fonts[rng.randrange(len(fonts))]
    background, color = effects.pick_colors(spec.background, spec.text_color, style, rng)
    sizes = tuple(spec.font_sizes[rng.randrange(len(spec.font_sizes))] for _ in text)
    glyphs = [_distort(_styled_glyph(c, font, s, style, rng), noise, rng)
              for c, s in zip(text, sizes)]

    line = _lay_out(glyphs, noise.overlap, rng, style)
    # Ghosts and warps move ink after placement: keep that much free around the line.
    rx, ry = effects.reach(style, spec.height)
    avail_w, avail_h = spec.width - 2 * (MARGIN + rx), spec.height - 2 * (MARGIN + ry)
    scale = min(1.0, avail_w / line.width, avail_h / line.height)
    if scale < 1.0:
        size = (max(1, math.floor(line.width * scale)), max(1, math.floor(line.height * scale)))
        line = line.resize(size, Image.Resampling.BILINEAR)
    line = line.point(_BOOST)
    x = MARGIN + rx + rng.randint(0, avail_w - line.width)
    y = MARGIN + ry + rng.randint(0, avail_h - line.height)
    box = (x, y, x + line.width, y + line.height)

    image = effects.backdrop((spec.width, spec.height), background, style, rng)
    if style.ghosts:
        effects.paste_ghosts(image, line, (x, y), color, style, rng)
    image.paste(color, box, line)
    if style.lines:
        effects.strike(image, box, color, style, rng)
    _add_noise(image, color, noise, rng)
    if style.sine or style.elastic:
        image = effects.warp(image, style, rng)
    if noise.smooth:
        image = image.filter(ImageFilter.SMOOTH)
    if noise.blur > 0:
        image = image.filter(ImageFilter.GaussianBlur(noise.blur))
    if spec.grayscale:
        image = image.convert("L")
    if style.speckle:
        image = effects.speckle(image, style.speckle, rng)
    if style.binarize:
        image = effects.binarize(image)
    return Rendered(image, font, sizes, box, scale)


def _styled_glyph(char: str, font: str, size: int, style: StyleSpec,
                  rng: random.Random) -> Image.Image:
    mask = _glyph(char, font, size)
    if style.hollow and rng.random() < style.hollow:
        return effects.hollow(mask, size)
    return mask


@functools.lru_cache(maxsize=4096)
def _glyph(char: str, font_path: str, size: int) -> Image.Image:
    """The glyph's coverage mask, cropped to its ink (cached: rasterising is the slow part)."""
    font = load_font(font_path, size)
    left, top, right, bottom = font.getbbox(char)
    mask = Image.new("L", (max(1, right - left), max(1, bottom - top)), 0)
    ImageDraw.Draw(mask).text((-left, -top), char, font=font, fill=255)
    return mask.crop(mask.getbbox()) if mask.getbbox() else mask


def _distort(mask: Image.Image, noise: NoiseSpec, rng: random.Random) -> Image.Image:
    """Rotate and warp one glyph; the result is cropped to its ink, which is never cut."""
    if noise.rotation:
        angle = rng.uniform(-noise.rotation, noise.rotation)
        mask = mask.rotate(angle, Image.Resampling.BILINEAR, expand=True)
    lo, hi = noise.warp
    if hi > 0:
        w, h = mask.size
        dx, dy = w * rng.uniform(lo, hi), h * rng.uniform(lo, hi)
        # Corners move by at most the padding, so the sampled quad always holds all the ink.
        pad = math.ceil(max(dx, dy))
        mask = ImageOps.expand(mask, pad, fill=0)
        pw, ph = mask.size
        corners = ((0, 0), (0, ph), (pw, ph), (pw, 0))  # PIL's QUAD order: NW, SW, SE, NE
        quad = [v for cx, cy in corners for v in (cx + rng.uniform(-dx, dx),
                                                  cy + rng.uniform(-dy, dy))]
        mask = mask.transform((pw, ph), Image.Transform.QUAD, quad, Image.Resampling.BILINEAR)
    bbox = mask.getbbox()
    return mask.crop(bbox) if bbox else mask


def _lay_out(glyphs: list[Image.Image], overlap: float, rng: random.Random,
             style: StyleSpec) -> Image.Image:
    """Place glyphs left to right, each overlapping the previous by a random amount (and,
    with the style's jitter, a random extra gap and a random baseline shift)."""
    mean_w = sum(g.width for g in glyphs) / len(glyphs)
    xs, x = [], 0
    for g in glyphs:
        xs.append(x)
        x += g.width - int(rng.uniform(0, overlap * min(mean_w, g.width)))
        if style.spacing:
            x = max(xs[-1] + 1, x + round(rng.uniform(-0.5, 1) * style.spacing * g.width))
    width = max(xi + g.width for xi, g in zip(xs, glyphs))
    height = max(g.height for g in glyphs)
    height += round(style.baseline * height)
    line = Image.new("L", (width, height), 0)
    for xi, g in zip(xs, glyphs):
        line.paste(g, (xi, rng.randint(0, height - g.height)), g)
    return line


def _add_noise(image: Image.Image, color: Color, noise: NoiseSpec, rng: random.Random) -> None:
    draw = ImageDraw.Draw(image)
    w, h = image.size
    for _ in range(noise.dots):
        x, y = rng.randint(0, w), rng.randint(0, h)
        draw.line(((x, y), (x - 1, y - 1)), fill=color, width=noise.dot_width)
    for _ in range(noise.curves):
        # captcha's arc: spans most of the width, in the middle band of the height
        x1 = rng.randint(0, w // 5)
        x2 = rng.randint(w // 5, w)
        y1 = rng.randint(h // 5, h - h // 5)
        y2 = rng.randint(y1, max(y1, h - h // 5))
        start, end = rng.randint(0, 20), rng.randint(160, 200)
        draw.arc((x1, y1, x2, y2), start, end, fill=color)


def check_fit(spec: CaptchaSpec) -> None:
    """Refuse, before any drawing, a spec whose longest text cannot fit the canvas.

    The test is nominal: ``max_len`` of the charset's widest glyphs at the smallest font size,
    upright, overlapping by half the allowed amount, must fit the width inside the margins,
    and the tallest glyph must fit the height. Lines drawn larger or rotated are then scaled
    down uniformly at render time, never squashed in one direction. A set of several fonts
    (proportional ones among them) is judged by its median font on the mean glyph width of
    the charset, a typical text: wider fonts and texts are scaled down to fit.
    """
    avail_w, avail_h = spec.width - 2 * MARGIN, spec.height - 2 * MARGIN
    size = spec.font_sizes[0]
    fonts = spec.fonts or resolve_fonts(())

    def extent(font: str) -> tuple[float, int]:
        widths = [_glyph(c, font, size).width for c in spec.charset]
        return (max(widths) if len(fonts) == 1 else sum(widths) / len(widths),
                max(_glyph(c, font, size).height for c in spec.charset))

    extents = sorted(extent(f) for f in fonts)
    for widest, tallest in extents[(len(extents) - 1) // 2:][:1]:
        need = spec.max_len * widest * (1 - spec.noise.overlap / 2)
        if need > avail_w:
            fit_size = math.floor(size * avail_w / need)
            min_width = math.ceil(need) + 2 * MARGIN
            raise UsageError(
                f"{spec.max_len} characters at font size {size} need about {math.ceil(need)} px "
                f"but the canvas is {spec.width} px wide: use --width {min_width} or more, "
                f"--font-sizes of at most {fit_size}, or a shorter --len"
            )
        if tallest > avail_h:
            raise UsageError(
                f"glyphs at font size {size} are {tallest} px tall but the canvas is "
                f"{spec.height} px high: use --height {tallest + 2 * MARGIN} or more, "
                f"or smaller --font-sizes"
            )
