"""The looks of ``StyleSpec``, drawn from the image's own random generator.

Each function draws from ``rng`` only when its knob is on, so the default style makes the
same draws as before these looks existed (same bytes). Bulk noise (textures, speckle) comes
from a numpy generator seeded by one draw of ``rng``: still a function of (seed, index).
"""

from __future__ import annotations

import dataclasses
import math
import random

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter

from captchagen.spec import Color, NoiseSpec
from captchagen.style import StyleSpec


def random_look(rng: random.Random, noise: NoiseSpec) -> tuple[StyleSpec, NoiseSpec]:
    """Every knob drawn from wide ranges (domain randomisation); each look is off often."""
    def maybe(p: float, value: float) -> float:
        return value if rng.random() < p else 0.0

    lo = rng.uniform(0, 0.15)
    noise = dataclasses.replace(
        noise, dots=rng.randint(0, 60), dot_width=rng.randint(1, 4), curves=rng.randint(0, 3),
        rotation=rng.uniform(0, 35), warp=(lo, lo + rng.uniform(0, 0.2)),
        overlap=rng.uniform(0, 0.4), smooth=rng.random() < 0.5,
        blur=maybe(0.5, rng.uniform(0.2, 1.5)))
    style = StyleSpec(
        lines=rng.choice((0, 0, 1, 1, 2, 3)), line_width=rng.randint(1, 4),
        backdrop=rng.choice(("plain", "grey", "textured")), colors=rng.choice(("color", "grey")),
        spacing=maybe(0.5, rng.uniform(0, 0.3)), baseline=maybe(0.5, rng.uniform(0, 0.25)),
        hollow=maybe(0.15, rng.uniform(0.3, 1.0)), ghosts=int(maybe(0.4, rng.randint(1, 4))),
        sine=maybe(0.4, rng.uniform(0.01, 0.08)), elastic=maybe(0.3, rng.uniform(0.01, 0.05)),
        speckle=maybe(0.2, rng.uniform(0.005, 0.05)), binarize=rng.random() < 0.15)
    return style, noise


def pick_colors(background: Color | None, text: Color | None, style: StyleSpec,
                rng: random.Random) -> tuple[Color, Color]:
    """Background and text colours; ``None`` draws one (today's draws for plain colour)."""
    if style.colors == "grey":
        g = rng.randint(200, 255) if style.backdrop == "plain" else rng.randint(150, 240)
        t = rng.randint(0, 90)
        return background or (g, g, g), text or (t, t, t)
    if style.backdrop != "plain":
        g = rng.randint(150, 240)
        background = background or (g, g, g)
    return (background or _random_color(rng, 238, 255)), (text or _random_color(rng, 10, 200))


def _random_color(rng: random.Random, lo: int, hi: int) -> Color:
    return (rng.randint(lo, hi), rng.randint(lo, hi), rng.randint(lo, hi))


def backdrop(size: tuple[int, int], color: Color, style: StyleSpec,
             rng: random.Random) -> Image.Image:
    """The canvas: one colour, or (textured) a gradient with mottling and grain on it."""
    if style.backdrop != "textured":
        return Image.new("RGB", size, color)
    w, h = size
    gen = np.random.default_rng(rng.getrandbits(64))
    ramp = np.linspace(-1, 1, w)[None, :] if rng.random() < 0.7 else np.linspace(-1, 1, h)[:, None]
    level = np.full((h, w), 0.0) + rng.uniform(-40, 40) * ramp
    coarse = Image.fromarray(gen.uniform(-1, 1, (4, 8)).astype(np.float32), "F")
    level += rng.uniform(0, 30) * np.asarray(coarse.resize((w, h), Image.Resampling.BICUBIC))
    level += gen.normal(0, rng.uniform(0, 10), (h, w))
    rgb = np.asarray(color, dtype=np.float64)[None, None, :] + level[:, :, None]
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB")


def hollow(mask: Image.Image, font_size: int) -> Image.Image:
    """The glyph's outline: its coverage minus an eroded copy."""
    k = 2 * max(1, round(font_size / 18)) + 1
    return ImageChops.subtract(mask, mask.filter(ImageFilter.MinFilter(k)))


def reach(style: StyleSpec, height: int) -> tuple[int, int]:
    """How far (x, y) in px ghosts and warps may move ink: kept free around the text."""
    ghost = ghost_offset(height) if style.ghosts else 0
    resample = 1 if style.sine or style.elastic else 0  # bilinear resampling spreads ink
    warp = (style.sine + style.elastic) * height
    return (math.ceil(ghost + style.elastic * height) + resample,
            math.ceil(ghost + warp) + resample)


def ghost_offset(height: int) -> int:
    return max(1, round(0.05 * height))


def paste_ghosts(image: Image.Image, line: Image.Image, xy: tuple[int, int], color: Color,
                 style: StyleSpec, rng: random.Random) -> None:
    """Faint copies of the text line, shifted by a few pixels (drawn under the text)."""
    g = ghost_offset(image.height)
    for _ in range(style.ghosts):
        alpha = rng.uniform(0.25, 0.6)
        faint = line.point(lambda v, a=alpha: int(v * a))
        image.paste(color, (xy[0] + rng.randint(-g, g), xy[1] + rng.randint(-g, g)), faint)


def strike(image: Image.Image, box: tuple[int, int, int, int], color: Color,
           style: StyleSpec, rng: random.Random) -> None:
    """Lines through the text band, from before its start to past its end."""
    draw = ImageDraw.Draw(image)
    left, top, right, bottom = box
    band = (top + (bottom - top) // 5, max(top + (bottom - top) // 5, bottom - (bottom - top) // 5))
    for _ in range(style.lines):
        x1 = rng.randint(0, max(0, left))
        x2 = rng.randint(min(image.width - 1, right), image.width - 1)
        draw.line(((x1, rng.randint(*band)), (x2, rng.randint(*band))), fill=color,
                  width=style.line_width)


def warp(image: Image.Image, style: StyleSpec, rng: random.Random) -> Image.Image:
    """Sine (vertical, along x) and elastic (smooth random field) displacement, as a PIL
    mesh of small cells (fast); ink moves by at most ``reach``."""
    w, h = image.size
    # Cells narrow across (the sine varies along x), a third of the height tall (the fields
    # are smooth): few cells, because PIL calls back into Python once per cell.
    cw, ch = _CELL, max(_CELL, math.ceil(h / 3))
    xs, ys = np.arange(0, w + cw, cw).clip(max=w), np.arange(0, h + ch, ch).clip(max=h)
    gx, gy = np.meshgrid(xs.astype(np.float64), ys.astype(np.float64))
    dx, dy = np.zeros_like(gx), np.zeros_like(gy)
    if style.sine:
        period, phase = rng.uniform(0.4, 1.5) * w, rng.uniform(0, 2 * math.pi)
        dy += style.sine * h * np.sin(2 * math.pi * gx / period + phase)
    if style.elastic:
        gen = np.random.default_rng(rng.getrandbits(64))
        for field in (dx, dy):
            coarse = Image.fromarray(gen.uniform(-1, 1, (3, 6)).astype(np.float32), "F")
            smooth = np.asarray(coarse.resize(gx.shape[::-1], Image.Resampling.BILINEAR))
            field += style.elastic * h * smooth / max(1e-6, np.abs(smooth).max())
    # Output cell corners sample the source at (x - dx, y - dy); edges repeat outward.
    sx, sy = (gx - dx).clip(0, w - 1).tolist(), (gy - dy).clip(0, h - 1).tolist()
    mesh = [((int(xs[i]), int(ys[j]), int(xs[i + 1]), int(ys[j + 1])),
             (sx[j][i], sy[j][i], sx[j + 1][i], sy[j + 1][i],
              sx[j + 1][i + 1], sy[j + 1][i + 1], sx[j][i + 1], sy[j][i + 1]))
            for j in range(len(ys) - 1) for i in range(len(xs) - 1)]
    return image.transform(image.size, Image.Transform.MESH, mesh, Image.Resampling.BILINEAR)


_CELL = 8  # px: the width of a warp mesh cell


def speckle(image: Image.Image, fraction: float, rng: random.Random) -> Image.Image:
    """Salt-and-pepper: a ``fraction`` of the pixels set to black or white."""
    a = np.array(image)
    gen = np.random.default_rng(rng.getrandbits(64))
    hit = gen.random(a.shape[:2]) < fraction
    values = np.where(gen.random(int(hit.sum())) < 0.5, 0, 255).astype(np.uint8)
    a[hit] = values[:, None] if a.ndim == 3 else values
    return Image.fromarray(a, image.mode)


def binarize(image: Image.Image) -> Image.Image:
    """Two levels (0 and 255) at Otsu's threshold, in the image's mode."""
    gray = np.asarray(image.convert("L"))
    hist = np.bincount(gray.ravel(), minlength=256).astype(np.float64)
    levels = np.arange(256)
    w0 = np.cumsum(hist)
    m0 = np.cumsum(hist * levels)
    total, mean = w0[-1], m0[-1]
    w1 = total - w0
    between = (mean * w0 / total - m0) ** 2 / np.maximum(w0 * w1, 1e-9) * total
    t = int(np.argmax(between))
    bw = Image.fromarray(np.where(gray > t, 255, 0).astype(np.uint8), "L")
    return bw if image.mode == "L" else bw.convert(image.mode)
