"""crnn.data.png: the PNG fast path gives Pillow's pixels exactly, or leaves it to Pillow."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from crnn.data.decode_bytes import gray_from_bytes
from crnn.data.images import MAX_PIXELS, OversizedImage, load_gray, to_gray
from crnn.data.png import (
    FAST_MAX_PIXELS,
    _vertical_first,
    bilinear_coeffs,
    pass_order_rule,
    png_gray,
)


def pillow_gray(blob: bytes, height: int, width: int) -> np.ndarray:
    """The reference: what gray_from_bytes did before the fast path."""
    with Image.open(io.BytesIO(blob)) as im:
        return to_gray(im, height, width)


def chunk(cid: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + cid + data + struct.pack(">I", zlib.crc32(cid + data))


def _filtered(row: np.ndarray, prev: np.ndarray, ft: int, bpp: int) -> np.ndarray:
    x = row.astype(np.int64)
    b = prev.astype(np.int64)
    a = np.concatenate([np.zeros(bpp, np.int64), x[:-bpp]])
    c = np.concatenate([np.zeros(bpp, np.int64), b[:-bpp]])
    if ft == 0:
        pred = np.zeros_like(x)
    elif ft == 1:
        pred = a
    elif ft == 2:
        pred = b
    elif ft == 3:
        pred = (a + b) // 2
    else:
        p = a + b - c
        pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
        pred = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
    return ((x - pred) % 256).astype(np.uint8)


def encode(pixels: np.ndarray, filters, extra: list[bytes] = (), color: int | None = None,
           interlace: int = 0, idat_parts: int = 1, level: int = 6) -> bytes:
    """A PNG written here, with the filter type of each row chosen (``filters``: one type for
    every row, or a list per row)."""
    h, w = pixels.shape[:2]
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    color = {1: 0, 3: 2}[channels] if color is None else color
    flat = pixels.reshape(h, w * channels)
    types = [filters] * h if isinstance(filters, int) else list(filters)
    prev = np.zeros(w * channels, np.uint8)
    raw = b""
    for y in range(h):
        raw += bytes([types[y]]) + _filtered(flat[y], prev, types[y], channels).tobytes()
        prev = flat[y]
    stream = zlib.compress(raw, level)
    cut = [len(stream) * i // idat_parts for i in range(idat_parts + 1)]
    idats = b"".join(chunk(b"IDAT", stream[cut[i]:cut[i + 1]]) for i in range(idat_parts))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, color, 0, 0, interlace)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + b"".join(extra) + idats
            + chunk(b"IEND", b""))


def pillow_png(pixels: np.ndarray, **save) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "PNG", **save)
    return buf.getvalue()


def random_pixels(rng, h: int, w: int, channels: int) -> np.ndarray:
    shape = (h, w) if channels == 1 else (h, w, channels)
    noise = rng.integers(0, 256, shape, dtype=np.uint8)
    if rng.random() < 0.5:  # smooth content too: the filters then predict well
        ramp = np.add.outer(np.arange(h) * rng.integers(1, 5), np.arange(w) * rng.integers(1, 5))
        ramp = ramp if channels == 1 else ramp[:, :, None] + np.arange(channels) * 40
        noise = ((ramp + noise // 16) % 256).astype(np.uint8)
    return noise


def test_the_installed_pillow_is_reproduced():
    assert pass_order_rule() is not None  # else the fast path would be off everywhere


def test_captcha_sized_pngs_take_the_fast_path_with_pillows_pixels():
    rng = np.random.default_rng(0)
    for channels in (1, 3):
        for level in range(10):
            blob = pillow_png(random_pixels(rng, 60, 160, channels), compress_level=level)
            got = png_gray(blob, 32, 128)
            assert got is not None and got.dtype == np.uint8 and got.shape == (32, 128)
            assert np.array_equal(got, pillow_gray(blob, 32, 128))


@pytest.mark.parametrize("channels", [1, 3])
def test_random_sizes_up_and_down_each_dimension_alone(channels):
    rng = np.random.default_rng(channels)
    orders = set()
    for i in range(120):
        h, w = int(rng.integers(1, 90)), int(rng.integers(1, 170))
        oh, ow = int(rng.integers(1, 90)), int(rng.integers(1, 170))
        if i % 6 == 0:
            ow = w  # height alone
        elif i % 6 == 1:
            oh = h  # width alone
        elif i % 6 == 2:
            ow, oh = w, h  # no resize
        elif i % 6 == 3:
            oh = max(1, h // 3)  # the height shrinks most: Pillow >= 13 starts with it
        orders.add(_vertical_first(w, h, ow, oh, "shrink"))
        pixels = random_pixels(rng, h, w, channels)
        blob = pillow_png(pixels, compress_level=int(rng.integers(0, 10)))
        got = png_gray(blob, oh, ow)
        assert got is not None, (w, h)
        assert np.array_equal(got, pillow_gray(blob, oh, ow)), (w, h, ow, oh)
    assert orders == {True, False}


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("filters", [0, 1, 2, 3, 4, "mixed"])
def test_every_filter_type(channels, filters):
    rng = np.random.default_rng(7)
    pixels = random_pixels(rng, 37, 53, channels)
    types = rng.integers(0, 5, 37).tolist() if filters == "mixed" else filters
    blob = encode(pixels, types, idat_parts=3)
    with Image.open(io.BytesIO(blob)) as im:  # the encoder here is right: Pillow agrees
        assert np.array_equal(np.asarray(im), pixels)
    for size in [(32, 128), (37, 53), (20, 53), (37, 30), (80, 200)]:
        got = png_gray(blob, *size)
        assert got is not None and np.array_equal(got, pillow_gray(blob, *size))


def test_rgb_to_gray_is_pillows_formula():
    # Every value of each channel against the others' extremes and a random mix.
    rng = np.random.default_rng(3)
    v = np.arange(256, dtype=np.uint8)
    rows = [np.stack([v, np.full(256, k), np.full(256, 255 - k)], -1) for k in (0, 255)]
    rows += [np.stack([np.full(256, k), v, np.full(256, k)], -1) for k in (0, 128, 255)]
    rows += [rng.integers(0, 256, (256, 3), dtype=np.uint8) for _ in range(20)]
    pixels = np.stack(rows).astype(np.uint8)
    blob = pillow_png(pixels)
    h, w = pixels.shape[:2]
    got = png_gray(blob, h, w)
    assert got is not None and np.array_equal(got, np.asarray(Image.fromarray(pixels).convert("L")))


def test_coefficients_are_cached_and_read_only():
    bounds, weights = bilinear_coeffs(160, 128)
    assert bilinear_coeffs(160, 128)[0] is bounds
    assert not bounds.flags.writeable and not weights.flags.writeable
    assert (weights.sum(axis=1) - (1 << 22)).__abs__().max() <= weights.shape[1]


def test_harmless_chunks_stay_on_the_fast_path_and_others_do_not():
    rng = np.random.default_rng(4)
    pixels = random_pixels(rng, 60, 160, 3)
    harmless = [chunk(b"gAMA", struct.pack(">I", 45455)), chunk(b"sRGB", b"\x00"),
                chunk(b"pHYs", struct.pack(">IIB", 2835, 2835, 1)), chunk(b"tEXt", b"k\x00v")]
    blob = encode(pixels, 4, extra=harmless)
    got = png_gray(blob, 32, 128)
    assert got is not None and np.array_equal(got, pillow_gray(blob, 32, 128))
    for other in [chunk(b"zTXt", b"k\x00\x00" + zlib.compress(b"v")),
                  chunk(b"iCCP", b"p\x00\x00" + zlib.compress(b"x")),
                  chunk(b"gAMA", b"\x00\x01"), chunk(b"PLTE", bytes(range(6)))]:
        assert png_gray(encode(pixels, 4, extra=[other]), 32, 128) is None


def _adam7(pixels: np.ndarray) -> bytes:
    """An interlaced gray PNG (filter type 0 everywhere)."""
    h, w = pixels.shape
    raw = b""
    for x0, y0, dx, dy in [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4),
                           (1, 0, 2, 2), (0, 1, 1, 2)]:
        sub = pixels[y0::dy, x0::dx]
        if sub.size:
            raw += b"".join(b"\x00" + r.tobytes() for r in sub)
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 1)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))


def _fallbacks() -> dict[str, bytes]:
    rng = np.random.default_rng(5)
    rgba = rng.integers(0, 256, (60, 160, 4), dtype=np.uint8)
    rgb = rgba[:, :, :3].copy()
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG")
    return {
        "palette": _save(Image.fromarray(rgb).convert("P")),
        "16-bit": _save(Image.fromarray(rgb[:, :, 0].astype(np.uint16) * 257)),
        "rgba": _save(Image.fromarray(rgba)),
        "la": _save(Image.fromarray(rgba).convert("LA")),
        "interlaced": _adam7(rgb[:, :, 0].copy()),
        "trns": _save(Image.fromarray(rgb), transparency=(1, 2, 3)),
        "jpeg": buf.getvalue(),
    }


def _save(image: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG", **kw)
    return buf.getvalue()


@pytest.mark.parametrize("kind", ["palette", "16-bit", "rgba", "la", "interlaced", "trns", "jpeg"])
def test_other_images_go_to_pillow_with_the_same_pixels(kind, tmp_path):
    blob = _fallbacks()[kind]
    assert png_gray(blob, 32, 128) is None
    expected = pillow_gray(blob, 32, 128)
    assert np.array_equal(gray_from_bytes(blob, 32, 128), expected)
    path = tmp_path / "image.bin"
    path.write_bytes(blob)
    assert np.array_equal(load_gray(path, 32, 128), expected)


def _outcome(fn, *args):
    try:
        return fn(*args)
    except Exception as e:  # the kind of error is what is compared
        return type(e)


def test_corrupt_and_truncated_pngs_fail_as_pillow_does():
    rng = np.random.default_rng(6)
    blob = encode(random_pixels(rng, 60, 160, 3), rng.integers(0, 5, 60).tolist())
    idat = blob.index(b"IDAT")
    cases = [blob[:n] for n in (8, 20, 33, idat + 10, len(blob) // 2, len(blob) - 13,
                                len(blob) - 1)]
    for _ in range(60):  # single flipped bytes anywhere: headers, CRCs, the stream
        pos = int(rng.integers(8, len(blob)))
        cases.append(blob[:pos] + bytes([blob[pos] ^ (1 << int(rng.integers(0, 8)))])
                     + blob[pos + 1:])
    # The stream corrupt but its CRC right: only the inflate can tell.
    data = bytearray(blob[idat + 4:blob.index(b"IEND") - 8])
    data[len(data) // 2] ^= 0xFF
    cases.append(blob[:idat - 4] + chunk(b"IDAT", bytes(data)) + chunk(b"IEND", b""))
    cases.append(encode(random_pixels(rng, 60, 160, 3), [5] * 60))  # unknown filter type
    failures = 0
    for case in cases:
        got, want = _outcome(gray_from_bytes, case, 32, 128), _outcome(pillow_gray, case, 32, 128)
        if isinstance(want, type):
            failures += 1
            assert got is want, (got, want)
        else:
            assert isinstance(got, np.ndarray) and np.array_equal(got, want)
    assert failures >= len(cases) // 2  # most of these are refused, not read as garbage


def test_load_gray_reads_pngs_through_the_fast_path(tmp_path):
    rng = np.random.default_rng(8)
    pixels = random_pixels(rng, 60, 160, 3)
    path = tmp_path / "a.png"
    path.write_bytes(pillow_png(pixels))
    with Image.open(path) as im:
        assert np.array_equal(load_gray(path, 32, 128), to_gray(im, 32, 128))
    with pytest.raises(OSError):
        load_gray(tmp_path / "missing.png", 32, 128)


def test_the_fast_path_limits_sit_below_the_refusals():
    assert FAST_MAX_PIXELS <= MAX_PIXELS
    huge = encode(np.zeros((1, 1), np.uint8), 0).replace(
        chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)),
        chunk(b"IHDR", struct.pack(">IIBBBBB", 10_000, 10_000, 8, 0, 0, 0, 0)))
    assert png_gray(huge, 32, 128) is None  # left to Pillow and check_size
    # Bytes and files share one path, so both refuse it from the header, before decoding.
    with pytest.raises(OversizedImage, match="more than the"):
        gray_from_bytes(huge, 32, 128)


def test_branch_free_paeth_equals_the_textbook_predictor_everywhere():
    """All 256^3 (a, b, c): stb_image's form against the PNG spec's."""
    import numba

    from crnn.data._png_kernels import _paeth

    @numba.njit
    def mismatches() -> int:
        bad = 0
        for a in range(256):
            for b in range(256):
                for c in range(256):
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    want = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                    bad += _paeth(a, b, c) != want
        return bad

    assert mismatches() == 0
