"""The per-frame loop of the tutorials: the correctness oracle and the benchmark's baseline."""

from __future__ import annotations

import numpy as np
from torch import Tensor


def reference(log_probs: Tensor | np.ndarray, charset: str) -> list[str]:
    """Greedy decoding one frame at a time: ``(T, N, C) -> list[str]``, blank = 0.

    Slow on purpose: it is the loop most code still runs, kept to check and time the others.
    """
    if isinstance(log_probs, Tensor):
        log_probs = log_probs.detach().float().cpu().numpy()
    scores = np.asarray(log_probs)
    texts = []
    for n in range(scores.shape[1]):
        chars = []
        previous = 0
        for t in range(scores.shape[0]):
            best = int(np.argmax(scores[t, n]))
            if best != 0 and best != previous:
                chars.append(charset[best - 1])
            previous = best
        texts.append("".join(chars))
    return texts
