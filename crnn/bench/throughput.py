"""Inference throughput and latency, with preprocessing, forward pass and decoding apart.

Every timed call reads encoded image files (bytes) to texts: decode the files and resize
to the model's input (preprocessing), run the model (forward), turn its output into strings
(decoding). On CUDA the forward and decoding are timed with CUDA events.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch
from PIL import Image

from crnn.data.images import to_gray
from crnn.inference import Reader


def preprocess(blobs: Sequence[bytes], height: int, width: int) -> torch.Tensor:
    """Encoded images -> ``(N, H, W)`` uint8 (PNG/JPEG decoding, grayscale, resize)."""
    arrays = []
    for b in blobs:
        with Image.open(io.BytesIO(b)) as im:
            arrays.append(to_gray(im, height, width))
    return torch.from_numpy(np.stack(arrays))


class _Timer:
    """Wall-clock on the CPU; CUDA events (with a sync at the end) on the GPU."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"

    def __call__(self, fn: Callable):
        if not self.cuda:
            t = time.perf_counter()
            out = fn()
            return out, (time.perf_counter() - t) * 1e3
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        out = fn()
        end.record()
        end.synchronize()
        return out, start.elapsed_time(end)


def measure_reader(reader: Reader, blobs: Sequence[bytes], batch_size: int, warmup: int,
                   repeats: int) -> dict:
    """One row of the throughput table: medians per stage, p50/p95 of the whole call."""
    cfg = reader.config
    batch = [blobs[i % len(blobs)] for i in range(batch_size)]
    timer = _Timer(reader.device)
    stages: dict[str, list[float]] = {"preprocess": [], "forward": [], "decode": [], "total": []}
    for i in range(warmup + repeats):
        t0 = time.perf_counter()
        images = preprocess(batch, cfg.height, cfg.width)
        pre_ms = (time.perf_counter() - t0) * 1e3
        out, fwd_ms = timer(lambda images=images: reader.forward(images))
        _, dec_ms = timer(lambda out=out: reader.decode(out))
        if i >= warmup:
            stages["preprocess"].append(pre_ms)
            stages["forward"].append(fwd_ms)
            stages["decode"].append(dec_ms)
            stages["total"].append(pre_ms + fwd_ms + dec_ms)
    med = {k: float(np.median(v)) for k, v in stages.items()}
    model_ms = med["forward"] + med["decode"]
    return {
        "batch_size": batch_size,
        "images_per_s": batch_size / med["total"] * 1e3,
        "model_images_per_s": batch_size / model_ms * 1e3,
        "p50_ms": med["total"],
        "p95_ms": float(np.percentile(stages["total"], 95)),
        "preprocess_ms": med["preprocess"],
        "forward_ms": med["forward"],
        "decode_ms": med["decode"],
        "warmup": warmup,
        "repeats": repeats,
    }


def repeats_for(batch_size: int, repeats: int) -> int:
    """Fewer repeats (timed or warm-up) for big batches, so every row takes about as long."""
    return max(3, min(repeats, repeats * 32 // max(batch_size, 1)))
