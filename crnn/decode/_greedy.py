"""Greedy (best path) CTC decoding of a batch: tensor operations, or numpy for small ones."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from crnn.decode._common import (
    Decoded,
    Problem,
    best_classes,
    collapse,
    host_array,
    labels_to_texts,
    prepare,
    rows_to_texts,
)
from crnn.decode._constrained import best_constrained_path

# Up to this many rows, greedy() decodes with numpy on the host: a numpy call on a small
# array costs ~1 µs, a torch operator's dispatch several, and at batch 1 that overhead is all
# there is. Beyond it torch's two-thread argmin (best_classes) wins. Both paths side by side
# (2 cores, T = 32, C = 37, min of repeats): 1 row 11 vs 31 µs, 32 rows 55 vs 109 µs, 64 rows
# 110 vs 90 µs; the crossover sits near 64 rows.
NUMPY_MAX_ROWS = 64


def greedy(
    log_probs: Tensor | np.ndarray,
    charset: str,
    *,
    lengths: Tensor | None = None,
    allowed: str | None = None,
    length_range: int | tuple[int, int] | None = None,
) -> list[str]:
    """Best-path decoding: ``(T, N, C) -> list[str]`` of N texts. See :func:`greedy_decode`."""
    problem = prepare(log_probs, charset, lengths, allowed, length_range)
    if problem.lengths is None and problem.length_range is None:
        host = host_array(problem.log_probs)
        if host is not None and host.shape[1] <= NUMPY_MAX_ROWS:
            # argmax returns the first of tied classes, like best_classes and the loop.
            return rows_to_texts(host.argmax(-1).T, problem.charset, merge_repeats=True)
    return _decode(problem, details=False).texts


def greedy_decode(
    log_probs: Tensor | np.ndarray,
    charset: str,
    *,
    lengths: Tensor | None = None,
    allowed: str | None = None,
    length_range: int | tuple[int, int] | None = None,
    details: bool = False,
) -> Decoded:
    """Best-path decoding: ``(T, N, C) -> Decoded`` with N texts and their path log-probability.

    ``log_probs`` are log-softmax outputs in ``CTCLoss``'s layout, blank = 0; ``charset``
    names classes 1..C-1. ``lengths`` (N,) counts each row's valid frames. ``allowed``
    restricts the symbols that may be emitted. ``length_range`` (an int or ``(lo, hi)``) asks
    for the most probable single path whose text has a length in [lo, hi]; ValueError if a
    row has too few frames for ``lo`` symbols. ``details`` adds per-character probabilities
    and frame positions. ``log_prob`` is the log-probability of the chosen path, a lower
    bound on that of its text.
    """
    return _decode(prepare(log_probs, charset, lengths, allowed, length_range), details)


def _decode(problem: Problem, details: bool) -> Decoded:
    lp = problem.log_probs
    if problem.length_range is not None:
        path, score = best_constrained_path(lp, *problem.length_range, problem.lengths)
    else:
        best, path = best_classes(lp)
        if problem.lengths is not None:
            past = torch.arange(lp.shape[0], device=lp.device)[:, None] >= problem.lengths
            path = path.masked_fill(past, 0)
            best = best.masked_fill(past, 0.0)
        score = best.sum(0)
    texts = labels_to_texts(path, problem.charset, merge_repeats=True)
    if not details:
        return Decoded(texts, score)
    char_probs, positions = _details(lp, path, collapse(path))
    return Decoded(texts, score, char_probs=char_probs, positions=positions)


def _details(lp: Tensor, path: Tensor, emit: Tensor) -> tuple[list[Tensor], list[Tensor]]:
    """Per row, the probability of each emitted character and the frame that emitted it."""
    rows, frames = (emit.t() != 0).nonzero(as_tuple=True)  # row-major: row by row, in order
    probs = lp[frames, rows, path[frames, rows]].exp()
    counts = (emit != 0).sum(0).tolist()
    return list(probs.split(counts)), list(frames.split(counts))
