"""The most probable single path whose text length lies in [lo, hi] (constrained Viterbi)."""

from __future__ import annotations

import torch
from torch import Tensor

from crnn.decode._common import force_blank_after

# Real log-probabilities below this are clamped to it, so that every path the constraint
# allows keeps a finite score and always beats the impossible ones (-inf).
_FLOOR = -1e4


def best_constrained_path(
    log_probs: Tensor, lo: int, hi: int, lengths: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """``(T, N, C) -> (path (T, N), log_prob (N,))``: best path emitting lo..hi symbols.

    A Viterbi pass over states (symbols emitted so far, class of the current frame), batched
    over rows and laid out (hi + 1, C, N) so that each operation runs over the rows as its
    inner loop. The caller guarantees that every row has enough frames for ``lo`` symbols.
    """
    t_max, n, c = log_probs.shape
    if t_max == 0:
        return log_probs.new_zeros(0, n, dtype=torch.long), log_probs.new_zeros(n)
    lp = force_blank_after(log_probs.float().clamp(min=_FLOOR), lengths)
    frames = lp.permute(0, 2, 1).contiguous()  # (T, C, N)
    dev = lp.device
    neg_inf = float("-inf")

    score = torch.full((hi + 1, c, n), neg_inf, device=dev)
    score[0, 0] = frames[0, 0]
    if hi > 0:
        score[1, 1:] = frames[0, 1:]
    shorter = torch.full((hi + 1, c, n), neg_inf, device=dev)
    # Backpointers: per frame and state, whether it kept the previous frame's class; per
    # frame and length, the best previous class and the best one other than it.
    stayed = torch.zeros(t_max, hi + 1, c, n, dtype=torch.bool, device=dev)
    ranked = torch.zeros(t_max, 2, hi + 1, n, dtype=torch.long, device=dev)

    for t in range(1, t_max):
        best, best_arg = score.max(1)  # (hi + 1, N)
        hidden = score.scatter(1, best_arg[:, None], neg_inf)
        second, second_arg = hidden.max(1)
        # A new symbol c follows the best previous class other than c, one symbol shorter.
        shorter[1:] = best[:-1, None]
        shorter[1:].scatter_(1, best_arg[:-1, None], second[:-1, None])
        # Or the frame continues the previous frame's class, with no new symbol.
        torch.ge(score, shorter, out=stayed[t])
        new = torch.maximum(score, shorter)
        new[:, 0] = best  # a blank frame follows the best class at the same length
        score = new.add_(frames[t])
        ranked[t, 0], ranked[t, 1] = best_arg, second_arg

    log_prob, flat = score[lo:].transpose(0, 1).reshape(c * (hi + 1 - lo), n).max(0)
    cls, length = flat // (hi + 1 - lo), flat % (hi + 1 - lo) + lo
    path = torch.empty(t_max, n, dtype=torch.long, device=dev)
    rows = torch.arange(n, device=dev)
    for t in range(t_max - 1, 0, -1):
        path[t] = cls
        blank = cls == 0
        stay = stayed[t, length, cls, rows] & ~blank
        before = torch.where(blank, length, length - 1).clamp(min=0)
        best_prev = ranked[t, 0, before, rows]
        other = torch.where(blank | (best_prev != cls), best_prev, ranked[t, 1, before, rows])
        cls = torch.where(stay, cls, other)
        length = length - (~stay & ~blank).long()
    path[0] = cls
    return path, log_prob
