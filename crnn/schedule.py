"""Learning-rate schedules as plain functions of training progress in [0, 1].

Progress is steps done / steps planned, or time spent / time budget under ``--minutes``,
so the same schedule serves epoch and time budgets, and a resumed run picks up its place.
"""

from __future__ import annotations

import math


def lr_factor(progress: float, kind: str = "onecycle", warmup: float = 0.05) -> float:
    """Multiplier of the peak learning rate at ``progress``.

    ``cosine``: linear warm-up from 0, then cosine decay to 1% of the peak.
    ``onecycle``: cosine warm-up from 1/25 of the peak, then cosine decay to 1/10^4 of it
    (the shape of ``torch.optim.lr_scheduler.OneCycleLR``).
    """
    p = min(max(progress, 0.0), 1.0)
    warmup = min(max(warmup, 0.0), 0.99)
    if kind == "cosine":
        if p < warmup:
            return max(p / warmup, 1e-3)
        q = (p - warmup) / (1 - warmup)
        return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * q))
    if kind == "onecycle":
        start, end = 1 / 25, 1e-4
        if p < warmup:
            return _cos_between(start, 1.0, p / warmup)
        return _cos_between(1.0, end, (p - warmup) / (1 - warmup))
    if kind == "constant":
        return 1.0
    raise ValueError(f"unknown schedule {kind!r}")


def _cos_between(a: float, b: float, t: float) -> float:
    return b + (a - b) * 0.5 * (1 + math.cos(math.pi * t))
