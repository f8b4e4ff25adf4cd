"""Inference throughput and latency, with preprocessing, forward pass and decoding apart.

Every timed call reads encoded image files (bytes) to texts: decode the files and resize
to the model's input (preprocessing), run the model (forward), turn its output into strings
(decoding). On CUDA the forward and decoding are timed with CUDA events.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np
import torch

from crnn.data.decode_bytes import BytesDecoder
from crnn.inference import Reader


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
                   repeats: int, min_seconds: float = 1.0) -> dict:
    """One row of the throughput table: medians per stage, p50/p95 of the whole call.

    Timed calls repeat until there are at least ``repeats`` of them and they took at least
    ``min_seconds`` (``repeats`` says how many ran). Preprocessing decodes the batch on a
    thread pool (:class:`BytesDecoder`). ``pipelined_images_per_s`` streams batches as a
    server would: batch k + 1 decodes on the pool while the model reads batch k;
    ``pipelined_vs_model`` divides it by the model-only rate (forward + decoding).
    """
    cfg = reader.config
    batch = [blobs[i % len(blobs)] for i in range(batch_size)]
    with BytesDecoder(cfg.height, cfg.width) as decoder:
        row = measure_stages(reader, decoder, batch, warmup, repeats, min_seconds)
        pipelined = _pipelined(reader, decoder, batch, row["repeats"])
    model_rate = batch_size / (row["forward_ms"] + row["decode_ms"]) * 1e3
    return with_rates(row, model_rate, pipelined)


def measure_stages(reader: Reader, decoder: BytesDecoder, batch: Sequence[bytes], warmup: int,
                   repeats: int, min_seconds: float = 1.0) -> dict:
    """:func:`measure_reader`'s row without its model-only and pipelined rates: ``batch``
    read serially from bytes to texts, ``decoder`` preprocessing it, the stages timed apart."""
    timer = _Timer(reader.device)
    stages: dict[str, list[float]] = {"preprocess": [], "forward": [], "decode": [], "total": []}
    start, i = time.perf_counter(), 0
    while i < warmup + repeats or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        images = decoder.decode(batch)
        pre_ms = (time.perf_counter() - t0) * 1e3
        out, fwd_ms = timer(lambda images=images: reader.forward(images))
        _, dec_ms = timer(lambda out=out: reader.decode(out))
        if i == warmup:
            start = time.perf_counter()  # min_seconds counts timed calls only
        if i >= warmup:
            stages["preprocess"].append(pre_ms)
            stages["forward"].append(fwd_ms)
            stages["decode"].append(dec_ms)
            stages["total"].append(pre_ms + fwd_ms + dec_ms)
        i += 1
    med = {k: float(np.median(v)) for k, v in stages.items()}
    return {
        "batch_size": len(batch),
        "images_per_s": len(batch) / med["total"] * 1e3,
        "p50_ms": med["total"],
        "p95_ms": float(np.percentile(stages["total"], 95)),
        "preprocess_ms": med["preprocess"],
        "forward_ms": med["forward"],
        "decode_ms": med["decode"],
        "warmup": warmup,
        "repeats": len(stages["total"]),
    }


def with_rates(row: dict, model_rate: float, pipelined: float) -> dict:
    """A :func:`measure_stages` row with the model-only and pipelined rates (images/s) and
    their ratio, placed after its ``images_per_s`` as the throughput table's rows have them."""
    return {"batch_size": row["batch_size"], "images_per_s": row["images_per_s"],
            "model_images_per_s": model_rate, "pipelined_images_per_s": pipelined,
            "pipelined_vs_model": pipelined / model_rate, **row}


def _pipelined(reader: Reader, decoder: BytesDecoder, batch: list[bytes], calls: int) -> float:
    """Images/s from bytes to texts over ``calls`` batches, decoding one batch ahead."""
    start = time.perf_counter()
    for images in decoder.stream([batch] * calls):
        reader.decode(reader.forward(images))
    if reader.device.type == "cuda":
        torch.cuda.synchronize()
    return len(batch) * calls / (time.perf_counter() - start)


def repeats_for(batch_size: int, repeats: int) -> int:
    """Fewer repeats (timed or warm-up) for big batches, so every row takes about as long."""
    return max(3, min(repeats, repeats * 32 // max(batch_size, 1)))
