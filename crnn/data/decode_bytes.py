"""Encoded image bytes -> the model's (N, H, W) uint8 input, with the decoding on threads.

On a 2-core machine the decoding competes with the model's forward pass for the CPU, so
its CPU time is what counts. The common PNG (8-bit gray or RGB, no transparency, not
interlaced) therefore takes :func:`crnn.data.png.png_gray`: libdeflate inflates these
streams faster than zlib (zlib-ng and ISA-L were slower; pyspng's whole decode was no faster
than Pillow's), and the unfiltering, grayscale and bilinear resize run in one compiled call
with Pillow's integer arithmetic, so the pixels are Pillow's, bit for bit, for less CPU per
image (``pytest benchmarks/test_bench_png.py --benchmark-only --benchmark-group-by=func``
measures both paths side by side).
Everything else (JPEG, palette, 16-bit, alpha, ..., and any PNG the fast path is not sure
of) goes through Pillow as before, so errors and refusals are unchanged.

Both paths release the GIL while they work (the kernels are ``nogil``, libdeflate and
Pillow release it), so a thread pool decodes a batch on every core, and
:meth:`BytesDecoder.stream` decodes batch k + 1 while the caller runs the model on batch k.
Candidates rejected: ``draft`` (JPEG only, and it changes pixels), ``reduce`` (integer
factors only: 160x60 -> 128x32 is not), ``cv2.imdecode`` (another dependency, and OpenCV's
gray weights and resize give other pixels than training saw).

Pixels are those of :func:`crnn.data.images.to_gray` for every mode
(:func:`crnn.data.images.gray_from_bytes`, which reading files shares).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import torch
from torch import Tensor

from crnn.data.images import gray_from_bytes


class BytesDecoder:
    """Decodes batches of encoded images on a thread pool; use as a context manager."""

    def __init__(self, height: int, width: int, threads: int | None = None) -> None:
        self.height, self.width = height, width
        self.pool = ThreadPoolExecutor(max_workers=threads or os.cpu_count() or 1)

    def __enter__(self) -> BytesDecoder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)

    def decode(self, blobs: Sequence[bytes]) -> Tensor:
        """Encoded images -> (N, H, W) uint8, decoded in parallel."""
        return self._submit(blobs).result()

    def stream(self, batches: Iterable[Sequence[bytes]]) -> Iterator[Tensor]:
        """Each batch decoded, one batch ahead: the next is decoding while the caller works."""
        ahead: Future | None = None
        for blobs in batches:
            current, ahead = ahead, self._submit(blobs)
            if current is not None:
                yield current.result()
        if ahead is not None:
            yield ahead.result()

    def _submit(self, blobs: Sequence[bytes]) -> Future:
        parts = [self.pool.submit(gray_from_bytes, b, self.height, self.width) for b in blobs]
        return self.pool.submit(_stack, parts) if parts else _done(
            torch.zeros(0, self.height, self.width, dtype=torch.uint8))


def _stack(parts: list[Future]) -> Tensor:
    return torch.from_numpy(np.stack([p.result() for p in parts]))


def _done(value: Tensor) -> Future:
    f: Future = Future()
    f.set_result(value)
    return f
