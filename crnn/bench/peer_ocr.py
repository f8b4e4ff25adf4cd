"""The ready-made solver people use today, on our test set: ddddocr (optional dependency)."""

from __future__ import annotations

import contextlib
import io
import time
from collections.abc import Sequence
from importlib import metadata

import numpy as np


def ddddocr_version() -> str | None:
    try:
        return metadata.version("ddddocr")
    except metadata.PackageNotFoundError:
        return None


def run_ddddocr(blobs: Sequence[bytes], labels: Sequence[str], warmup: int = 5) -> dict:
    """Exact-match accuracy (as read, and case-folded) and per-image latency from bytes."""
    import ddddocr

    with contextlib.redirect_stdout(io.StringIO()):  # it prints a banner
        ocr = ddddocr.DdddOcr(show_ad=False)
    for b in blobs[:warmup]:
        ocr.classification(b)
    reads, times = [], []
    for b in blobs:
        t = time.perf_counter()
        reads.append(ocr.classification(b))
        times.append((time.perf_counter() - t) * 1e3)
    n = len(labels)
    return {
        "n": n,
        "sequence_accuracy": sum(r == s for r, s in zip(reads, labels)) / n,
        "sequence_accuracy_casefold": sum(r.casefold() == s.casefold()
                                          for r, s in zip(reads, labels)) / n,
        "p50_ms": float(np.median(times)),
        "p95_ms": float(np.percentile(times, 95)),
        "version": ddddocr_version(),
    }
