"""Greedy (best path) CTC decoding of a batch: compiled on the CPU, tensor operations else."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from crnn.decode._common import (
    Decoded,
    Problem,
    best_classes,
    collapse,
    compiled,
    kernel_texts,
    labels_to_texts,
    plain_host_array,
    prepare,
)
from crnn.decode._constrained import best_constrained_path


def greedy(
    log_probs: Tensor | np.ndarray,
    charset: str,
    *,
    lengths: Tensor | None = None,
    allowed: str | None = None,
    length_range: int | tuple[int, int] | None = None,
) -> list[str]:
    """Best-path decoding: ``(T, N, C) -> list[str]`` of N texts. See :func:`greedy_decode`."""
    if lengths is None and allowed is None and length_range is None:
        host = plain_host_array(log_probs, charset)
        if host is not None:
            return host_greedy(host, charset)
    return _decode(prepare(log_probs, charset, lengths, allowed, length_range), False).texts


def host_greedy(host: np.ndarray, charset: str) -> list[str]:
    """(T, N, C) float numpy -> N texts, by the compiled best path: one call per batch.

    At batch 1 the tensor path's dozen operator dispatches cost several times the 32 x 37
    comparisons; compiled, the call costs about what its arithmetic does at every size.
    """
    t, n, _ = host.shape
    return kernel_texts(charset, n, t, compiled().greedy_rows, host)


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
