"""PNG bytes -> the model's 32x128 gray input, per image, side by side: Pillow's decode,
convert and resize against the fast path of crnn/data/png.py (the same pixels).

    pytest benchmarks/test_bench_png.py --benchmark-only --benchmark-group-by=func

On top, the inflate alone with zlib and with libdeflate: the ratios that
crnn/data/decode_bytes.py's docstring quotes.
"""

from __future__ import annotations

import io
import zlib

import deflate
import numpy as np
import pytest
from PIL import Image

from captchagen import CaptchaSpec, parse_charset
from captchagen.sampling import image_for, label_for
from crnn.data.png import parse, png_gray

SPEC = CaptchaSpec(charset=parse_charset("alnum"), min_len=4, max_len=6)


def _png(i: int) -> bytes:
    buf = io.BytesIO()
    image_for(SPEC, 0, i, label_for(SPEC, 0, i)).save(buf, "PNG", compress_level=1)
    return buf.getvalue()


BLOBS = [_png(i) for i in range(64)]


def _pillow(blob: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(blob)) as im:
        return np.asarray(im.convert("L").resize((128, 32), Image.Resampling.BILINEAR))


@pytest.mark.parametrize("path", ["pillow", "fast"])
def test_decode_64_pngs(benchmark, path):
    decode = _pillow if path == "pillow" else (lambda b: png_gray(b, 32, 128))
    out = benchmark(lambda: [decode(b) for b in BLOBS])
    assert all(np.array_equal(a, _pillow(b)) for a, b in zip(out, BLOBS))


@pytest.mark.parametrize("inflate", ["zlib", "libdeflate"])
def test_inflate_64_pngs(benchmark, inflate):
    streams = [(bytes(s), h * (1 + w * c)) for w, h, c, s in map(parse, BLOBS)]
    if inflate == "zlib":
        out = benchmark(lambda: [zlib.decompress(s) for s, _ in streams])
    else:
        out = benchmark(lambda: [deflate.zlib_decompress(s, n) for s, n in streams])
    assert [len(o) for o in out] == [n for _, n in streams]
