"""A fast path from PNG bytes to the model's input, pixel for pixel what Pillow gives.

:func:`png_gray` reads the common captcha PNG (8-bit gray or RGB, not interlaced, no
transparency) itself: chunks parsed and CRC-checked here, the image data inflated by
libdeflate (``deflate``) to its known size, filters undone, grayscale and the bilinear
resize done by :mod:`crnn.data._png_kernels` with Pillow's integer arithmetic. Its pixels
equal ``Image.open(...).convert("L").resize((w, h), BILINEAR)`` (the tests hold it to that
on random images, every filter type, up- and down-scaling).

It answers ``None`` for anything else, and the caller takes Pillow's path, which then
decodes, refuses or raises exactly as before. "Anything else" is deliberately broad, so that
the fast path never reads a file Pillow would refuse: another format or PNG flavour
(palette, 16-bit, alpha, interlaced, tRNS, APNG, ...), a chunk outside a short list whose
Pillow handlers cannot fail, a bad CRC in any chunk (Pillow checks those before the image
data; it skips the image data's own), IDAT chunks that are not consecutive, a missing IEND,
a zlib stream that is corrupt, fails its Adler-32, or does not inflate to exactly the
image's size, an unknown filter type, or an image over ``FAST_MAX_PIXELS`` /
``FAST_MAX_BYTES`` or Pillow's own ``MAX_IMAGE_PIXELS`` (oversize refusals stay Pillow's
and :func:`crnn.data.images.check_size`'s).
"""

from __future__ import annotations

import functools
import math
import struct

import deflate
import numpy as np
from PIL import Image

SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Well above any captcha, below crnn.data.images.MAX_PIXELS and Pillow's bomb limit.
FAST_MAX_PIXELS = 16_000_000
FAST_MAX_BYTES = 16 << 20
# Ancillary chunks allowed on the fast path, with the length the spec gives them (None: any
# length): Pillow reads them without being able to fail, and they do not change L/RGB
# pixels. Any other chunk sends the image to Pillow.
_HARMLESS = {b"gAMA": 4, b"sRGB": 1, b"pHYs": 9, b"cHRM": 32, b"tIME": 7, b"tEXt": None}
_CHANNELS = {0: 1, 2: 3}  # PNG colour type -> samples per pixel (gray, RGB)
_CHUNK = struct.Struct(">I4s")
_IHDR = struct.Struct(">IIBBBBB")


def _crc_ok(blob: memoryview, pos: int, length: int) -> bool:
    """The CRC of the chunk whose header starts at ``pos`` (over its type and data)."""
    end = pos + 8 + length
    return deflate.crc32(blob[pos + 4:end]) == int.from_bytes(blob[end:end + 4], "big")


def parse(blob: bytes) -> tuple[int, int, int, bytes | memoryview] | None:
    """``(width, height, channels, zlib stream)`` of a PNG the fast path reads, else None."""
    if len(blob) > FAST_MAX_BYTES or blob[:8] != SIGNATURE:
        return None
    mv = memoryview(blob)
    n = len(blob)
    pos = 8
    header = None
    idat: list[memoryview] = []
    idat_done = False
    while True:
        if pos + 12 > n:
            return None  # truncated: no IEND
        length, cid = _CHUNK.unpack_from(blob, pos)
        if pos + 12 + length > n or not _crc_ok(mv, pos, length):
            return None
        data = pos + 8
        if header is None:
            if cid != b"IHDR" or length != 13:
                return None
            header = _IHDR.unpack_from(blob, data)
        elif cid == b"IDAT":
            if idat_done:
                return None  # a second run of IDAT: Pillow ignores it
            idat.append(mv[data:data + length])
        elif cid == b"IEND":
            break
        else:
            if idat:
                idat_done = True
            if cid not in _HARMLESS or _HARMLESS[cid] not in (None, length):
                return None
        pos += 12 + length
    if not idat:
        return None
    width, height, depth, color, compression, filtering, interlace = header
    if (depth != 8 or color not in _CHANNELS or compression or filtering or interlace
            or not 0 < width * height <= FAST_MAX_PIXELS):
        return None
    bomb = Image.MAX_IMAGE_PIXELS
    if bomb is not None and width * height > bomb:
        return None  # Pillow warns (or refuses): let it
    stream = idat[0] if len(idat) == 1 else b"".join(idat)
    return width, height, _CHANNELS[color], stream


@functools.lru_cache(maxsize=256)
def bilinear_coeffs(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pillow's BILINEAR resampling taps from ``in_size`` to ``out_size`` samples.

    ``bounds`` (out, 2): first input index and number of taps; ``weights`` (out, ksize):
    fixed point with 22 fractional bits. libImaging/Resample.c's ``precompute_coeffs``
    and ``normalize_coeffs_8bpc``, in the same double arithmetic, operation for operation.
    """
    scale = float(in_size) / out_size
    filterscale = max(scale, 1.0)
    support = 1.0 * filterscale
    ksize = math.ceil(support) * 2 + 1
    bounds = np.zeros((out_size, 2), np.int64)
    weights = np.zeros((out_size, ksize), np.int32)
    ss = 1.0 / filterscale
    for xx in range(out_size):
        center = 0.0 + (xx + 0.5) * scale
        xmin = max(int(center - support + 0.5), 0)  # C's (int): truncation toward zero
        xmax = min(int(center + support + 0.5), in_size) - xmin
        taps = []
        for x in range(xmax):
            t = abs((x + xmin - center + 0.5) * ss)
            taps.append(1.0 - t if t < 1.0 else 0.0)
        ww = 0.0
        for w in taps:
            ww += w
        for x, w in enumerate(taps):
            k = w / ww if ww != 0.0 else w
            weights[xx, x] = int(-0.5 + k * (1 << 22)) if k < 0 else int(0.5 + k * (1 << 22))
        bounds[xx] = xmin, xmax
    bounds.setflags(write=False)
    weights.setflags(write=False)
    return bounds, weights


def _vertical_first(in_w: int, in_h: int, out_w: int, out_h: int, rule: str) -> bool:
    """Pillow >= 13 (libImaging/Resample.c) resamples the height first when it shrinks by
    more than twice what the width loses; older Pillow always starts with the width."""
    shrink = in_h - out_h
    return rule == "shrink" and shrink > 0 and shrink > (in_w - out_w) * 2


@functools.cache
def pass_order_rule() -> str | None:
    """Which order of passes the installed Pillow uses: "shrink" (Pillow >= 13), "width
    first" (older), or None if neither reproduces it (then the fast path stays off).

    Found once by resizing a random image whose two orders give different pixels.
    """
    from crnn.data._png_kernels import gray_resized

    in_w, in_h, out_w, out_h = 40, 108, 27, 72  # "shrink" starts with the height here
    pixels = np.random.default_rng(0).integers(0, 256, (in_h, in_w), dtype=np.uint8)
    expected = np.asarray(Image.fromarray(pixels, "L").resize((out_w, out_h),
                                                              Image.Resampling.BILINEAR))
    hb, hk = bilinear_coeffs(in_w, out_w)
    vb, vk = bilinear_coeffs(in_h, out_h)
    for rule in ("shrink", "width first"):
        raw = np.zeros((in_h, in_w + 1), np.uint8)  # filter type 0 (None) on every row
        raw[:, 1:] = pixels
        out = np.empty((out_h, out_w), np.uint8)
        gray_resized(raw.reshape(-1), in_h, in_w, 1, hb, hk, vb, vk,
                     _vertical_first(in_w, in_h, out_w, out_h, rule), out)
        if np.array_equal(out, expected):
            return rule
    return None


def png_gray(blob: bytes, height: int, width: int) -> np.ndarray | None:
    """PNG bytes -> (H, W) uint8 as Pillow's convert("L") + resize(BILINEAR) gives, or None
    where Pillow must decide (see the module's docstring)."""
    parsed = parse(blob)
    if parsed is None:
        return None
    rule = pass_order_rule()
    if rule is None:
        return None
    in_w, in_h, channels, stream = parsed
    expected = in_h * (1 + in_w * channels)
    try:
        raw = deflate.zlib_decompress(stream, expected)
    except (deflate.DeflateError, ValueError, MemoryError):
        return None
    if len(raw) != expected:
        return None
    from crnn.data._png_kernels import gray_resized  # lazily: numba is slow to import

    hb, hk = bilinear_coeffs(in_w, width)
    vb, vk = bilinear_coeffs(in_h, height)
    out = np.empty((height, width), np.uint8)
    status = gray_resized(np.frombuffer(raw, np.uint8), in_h, in_w, channels, hb, hk, vb, vk,
                          _vertical_first(in_w, in_h, width, height, rule), out)
    return out if status == 0 else None
