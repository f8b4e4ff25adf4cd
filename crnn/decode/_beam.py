"""Prefix beam search in log space: compiled row by row on the CPU (:mod:`._compiled`), batched
over rows and beams with tensor operations elsewhere."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from crnn.decode._common import (
    Decoded,
    best_classes,
    collapse,
    compiled,
    force_blank_after,
    kernel_texts,
    labels_to_texts,
    plain_host_array,
    prepare,
    rows_to_texts,
)
from crnn.decode._constrained import best_constrained_path

_LOG_HALF = math.log(0.5)
_FLOAT32 = np.dtype(np.float32)


def beam(
    log_probs: Tensor | np.ndarray,
    charset: str,
    width: int = 10,
    *,
    lengths: Tensor | None = None,
    allowed: str | None = None,
    length_range: int | tuple[int, int] | None = None,
    cutoff: float = 1e-3,
    top_k: int | None = 2,
) -> list[str]:
    """Prefix beam search: ``(T, N, C) -> list[str]`` of N texts. See :func:`beam_decode`.

    Texts only, so on the CPU rows that the compiled bound decides skip the search, and
    nothing else runs (no ``ctc_loss``, no torch operations): what batch 1 costs is the work.
    """
    if lengths is None and allowed is None and length_range is None:
        host = plain_host_array(log_probs, charset)
        if host is not None:
            t, n, c = host.shape
            if t and c > 1:
                # At batch 1 each Python step is a visible share of the call: the settings
                # are checked once per distinct value (cached), the kernel called directly.
                log_cutoff = _kernel_settings(width, cutoff, top_k)
                if host.dtype != _FLOAT32:
                    host = host.astype(np.float32)
                return kernel_texts(charset, n, t, compiled().beam_texts, host, width,
                                    log_cutoff, top_k or c - 1)
    _check_settings(width, 1, cutoff, top_k)
    return beam_decode(
        log_probs,
        charset,
        width,
        lengths=lengths,
        allowed=allowed,
        length_range=length_range,
        cutoff=cutoff,
        top_k=top_k,
        _texts_only=True,
    ).texts


def beam_decode(
    log_probs: Tensor | np.ndarray,
    charset: str,
    width: int = 10,
    *,
    lengths: Tensor | None = None,
    allowed: str | None = None,
    length_range: int | tuple[int, int] | None = None,
    cutoff: float = 1e-3,
    top_k: int | None = 2,
    nbest: int = 1,
    _texts_only: bool = False,
) -> Decoded:
    """Prefix beam search: ``(T, N, C) -> Decoded`` with N texts and their log-probabilities.

    Keeps the ``width`` most probable prefixes per row, each with separate blank and
    non-blank scores, and merges the alignments of prefixes that collapse to the same text.
    Pruning: at each frame only symbols with probability >= ``cutoff`` and among the
    ``top_k`` most probable may start a new character; ``cutoff=0, top_k=None`` and a width
    no smaller than the number of possible prefixes make the search exact. ``lengths``,
    ``allowed`` and ``length_range`` as in :func:`crnn.decode.greedy_decode`; with a range,
    longer prefixes are dropped, as are those that can no longer reach ``lo`` in the frames
    left, and a row whose beam ends empty gets the best constrained single path instead.
    ``nbest > 1`` also returns up to that many (text, log-probability) pairs per row.

    ``log_prob`` sums the alignments of the text that the search kept: a lower bound on the
    text's log-probability. A row whose best path's text holds more than half of the
    probability skips the search: that text is more probable than all others together,
    which is what an exact search returns, and its ``log_prob`` is the text's, exactly.
    """
    _check_settings(width, nbest, cutoff, top_k)
    problem = prepare(log_probs, charset, lengths, allowed, length_range)
    lp = force_blank_after(problem.log_probs.float(), problem.lengths)
    t_max, n, c = lp.shape
    if c == 1 or t_max == 0:  # every text is empty
        return Decoded([""] * n, lp[..., 0].sum(0))
    span, k = problem.length_range, min(nbest, width)
    on_host = _on_host(lp)
    if on_host and _texts_only and k == 1 and span is None:
        texts, top = _host_search(lp, problem.lengths, None, problem.charset,
                                  Pruning(width, cutoff, top_k, 1), bound=True)
        return Decoded(texts, top[:, 0])

    texts = np.empty(n * k, dtype=object)
    top = torch.full((n, k), float("-inf"), device=lp.device)
    searched = torch.arange(n, device=lp.device)
    if k == 1 and len(searched):
        sub = lp if len(searched) == n else lp.index_select(1, searched)
        decided, path, path_score = _decided_rows(sub, span)  # indices into ``searched``
        if len(decided):
            rows = searched[decided]
            texts[rows.cpu().numpy()] = labels_to_texts(
                path.index_select(1, decided), problem.charset, merge_repeats=True
            )
            top[rows, 0] = path_score[decided]
            left = torch.ones(len(searched), dtype=torch.bool, device=lp.device)
            left[decided] = False
            searched = searched[left]
    if len(searched):
        sub = lp if len(searched) == n else lp.index_select(1, searched)
        sub_lengths = None if problem.lengths is None else problem.lengths[searched]
        search = _host_search if on_host else _search_texts
        found, top[searched] = search(
            sub, sub_lengths, span, problem.charset, Pruning(width, cutoff, top_k, k)
        )
        slots = (searched[:, None] * k + torch.arange(k, device=lp.device)).view(-1)
        texts[slots.cpu().numpy()] = found
    texts = texts.tolist()

    if k == 1:
        return Decoded(texts, top[:, 0])
    scores = top.tolist()
    lists = [
        [(texts[r * k + j], s) for j, s in enumerate(scores[r]) if s > float("-inf")]
        for r in range(n)
    ]
    return Decoded(texts[::k], top[:, 0], nbest=lists)


def _decided_rows(lp: Tensor, span: tuple[int, int] | None) -> tuple[Tensor, Tensor, Tensor]:
    """(T, N, C) -> rows decided without search; best paths; their texts' log-probabilities.

    With total probability Z, a text of probability above Z / 2 is more probable than all
    other texts together: exact search returns it. The candidate is the best path's text; its
    probability, summed over all its alignments, comes from ``ctc_loss`` in one batched call.
    On a trained model's outputs this decides nearly every row (a path alone rarely holds half
    the mass: the same text has many alignments).
    """
    best, path = best_classes(lp)
    emit = collapse(path)  # (T, N), the class each frame adds to the text, 0 for none
    count = (emit != 0).sum(0)
    rows_first = emit.t()
    targets = rows_first[rows_first != 0]  # the texts, concatenated row after row
    frames = torch.full_like(count, lp.shape[0])
    # zero_infinity stays off: an impossible text must score -inf, not log 1.
    text = -F.ctc_loss(lp, targets, frames, count, blank=0, reduction="none")
    text = torch.maximum(text, best.sum(0))  # never below the path it contains (rounding)
    mass = torch.logsumexp(lp, 2).sum(0)  # log Z: 0 unless ``allowed`` dropped columns
    decided = text - mass > _LOG_HALF
    if span is not None:
        decided &= (count >= span[0]) & (count <= span[1])
    return decided.nonzero()[:, 0], path, text


@dataclass(frozen=True)
class Pruning:
    """How a search prunes: beam width, symbol cutoff and top-k, texts kept per row (k)."""

    width: int
    cutoff: float
    top_k: int | None
    k: int


def _search_texts(lp: Tensor, lengths: Tensor | None, span: tuple[int, int] | None,
                  charset: str, p: Pruning) -> tuple[list[str], Tensor]:
    """Beam-search (T, R, C) -> the k best texts of each row, row-major, and (R, k) scores."""
    t_max, r, _ = lp.shape
    k = p.k
    with _flush_denormals(lp.device):
        src, emitted, score, length = _search(lp, p.width, lengths, span, p.cutoff, p.top_k)
    if span is not None:
        score = score.masked_fill(length < span[0], float("-inf"))
    top, pick = score.t().topk(k, dim=1)  # (R, k), best first
    pick = pick.t()
    emit = torch.zeros(t_max, k, r, dtype=torch.long, device=lp.device)
    for t in range(t_max - 1, -1, -1):  # follow the backpointers to the first frame
        emit[t] = emitted[t].gather(0, pick)
        pick = src[t].gather(0, pick)
    texts = labels_to_texts(
        emit.transpose(1, 2).reshape(t_max, r * k), charset, merge_repeats=False
    )
    if span is not None:
        _fill_lost(lp, lengths, span, charset, k, texts, top)
    return texts, top


def _fill_lost(lp: Tensor, lengths: Tensor | None, span: tuple[int, int], charset: str,
               k: int, texts: list[str], top: Tensor) -> None:
    """Rows whose every prefix was pruned get the exact constrained best path, in place."""
    lost = torch.isinf(top[:, 0]).nonzero()[:, 0]
    if len(lost):
        sub_lengths = None if lengths is None else lengths[lost]
        path, path_score = best_constrained_path(lp[:, lost], *span, sub_lengths)
        top[lost, 0] = path_score
        fallback = labels_to_texts(path, charset, merge_repeats=True)
        for row, text in zip(lost.tolist(), fallback):
            texts[row * k] = text


def _on_host(lp: Tensor) -> bool:
    """Whether the compiled search runs these rows (the CPU), rather than the tensor one."""
    return lp.device.type == "cpu"


def _host_search(lp: Tensor | np.ndarray, lengths: Tensor | None,
                 span: tuple[int, int] | None, charset: str, p: Pruning,
                 bound: bool = False) -> tuple[list[str], Tensor]:
    """:func:`_search_texts` by the compiled search, row by row on the CPU.

    Per row its cost is the arithmetic of the beams it keeps, where the tensor search pays
    ~35 operator dispatches per frame for the whole batch: the compiled one is faster at
    every batch size on the CPU. ``bound``: rows decided by the compiled bound (see
    :func:`crnn.decode._compiled.bound_row`) skip the search, scored by the bound.
    """
    host = np.ascontiguousarray(lp.numpy() if isinstance(lp, Tensor) else lp, dtype=np.float32)
    t_max, r, c = host.shape
    frames = (np.full(r, t_max, dtype=np.int64) if lengths is None
              else lengths.cpu().numpy().astype(np.int64))
    lo, hi = span if span is not None else (0, t_max)
    k = p.k
    ids = np.zeros((r, k, t_max), dtype=np.int32)
    scores = np.full((r, k), -np.inf)
    compiled().beam_rows(host, frames, p.width, _log_cutoff(p.cutoff), p.top_k or c - 1, lo, hi,
                         k, bound, ids, scores)
    texts = rows_to_texts(ids.reshape(r * k, t_max), charset, merge_repeats=False)
    top = torch.from_numpy(scores.astype(np.float32))
    if span is not None:
        _fill_lost(torch.as_tensor(host), lengths, span, charset, k, texts, top)
    return texts, top


def _log_cutoff(cutoff: float) -> float:
    return math.log(cutoff) if cutoff > 0 else -math.inf


@lru_cache(maxsize=64)
def _kernel_settings(width: int, cutoff: float, top_k: int | None) -> float:
    """Check the settings of :func:`beam`, and return the log of ``cutoff``."""
    _check_settings(width, 1, cutoff, top_k)
    return _log_cutoff(cutoff)


def _check_settings(width: int, nbest: int, cutoff: float, top_k: int | None) -> None:
    if width < 1 or nbest < 1:
        raise ValueError(f"width and nbest must be >= 1, got width={width}, nbest={nbest}")
    if not 0.0 <= cutoff < 1.0:
        raise ValueError(f"cutoff must lie in [0, 1), got {cutoff}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be >= 1 or None, got {top_k}")


def _search(
    lp: Tensor,
    width: int,
    lengths: Tensor | None,
    span: tuple[int, int] | None,
    cutoff: float,
    top_k: int | None,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The beam search proper over ``lp`` (T, N, C).

    Everything is laid out beams-first, (W, N), so that each operation runs over the rows as
    its contiguous inner loop. Returns per frame and beam the source beam and the class it
    emitted (0 = none), (T, W, N) each, then each beam's final log-probability and text
    length, (W, N) each.
    """
    t_max, n, c = lp.shape
    dev = lp.device
    w = width
    neg_inf = float("-inf")
    # (T, K + 1, N) each; the extra last row is "no symbol": score -inf, class 0.
    sym_scores, sym_classes = _candidate_symbols(lp, cutoff, top_k)
    k = sym_scores.shape[1] - 1

    # Beam state, (W, N) each: log-probabilities of the paths that end in a blank and of those
    # that end in the last symbol; that last symbol; the slot of the parent prefix (the text
    # minus its last symbol) while that is in the beam too, else W; the text length.
    # (A parent that leaves the beam and comes back later is not linked again: two beams may
    # then hold one text. Without pruning, nothing leaves the beam.)
    p_blank = torch.full((w, n), neg_inf, device=dev)
    p_blank[0] = 0.0  # the empty prefix, certain before the first frame
    p_symbol = torch.full((w, n), neg_inf, device=dev)
    last = torch.zeros(w, n, dtype=torch.long, device=dev)
    parent = torch.full((w, n), w, dtype=torch.long, device=dev)
    length = torch.zeros(w, n, dtype=torch.long, device=dev)
    src = torch.empty(t_max, w, n, dtype=torch.long, device=dev)
    emitted = torch.empty(t_max, w, n, dtype=torch.long, device=dev)

    # Candidates, (W * (K + 1), N): per beam, its K extensions, then staying on its text. An
    # extra all -inf block stands for "no parent", so that lookups need no masking.
    slots = k + 1
    grid = torch.full((w + 1, slots, n), neg_inf, device=dev)
    flat = grid.view(-1, n)
    beam_idx = torch.arange(w, device=dev)[:, None]
    slot_beam = torch.arange(w * slots, device=dev) // slots
    slot_col = torch.arange(w * slots, device=dev) % slots
    rank = torch.arange(k, device=dev)[:, None].expand(k, n)
    moved_to = torch.empty(w + 1, n, dtype=torch.long, device=dev)
    parent_scores = torch.full((2, w + 1, n), neg_inf, device=dev)  # total, blank-ending
    frames_left = None if lengths is None else lengths - 1

    for t in range(t_max):
        frame, scores, classes = lp[t], sym_scores[t], sym_classes[t]  # (N, C), (K + 1, N) x2
        total = torch.logaddexp(p_blank, p_symbol)
        stay_blank = total + frame[:, 0]
        p_last = frame.t().gather(0, last)
        stay_symbol = p_symbol + p_last

        # Extending by a candidate symbol; by the last one again only after a blank.
        torch.add(total[:, None, :], scores[None, :, :], out=grid[:w])  # stays: -inf for now
        col_of = torch.full((c, n), k, dtype=torch.long, device=dev)
        last_col = col_of.scatter_(0, classes[:k], rank).gather(0, last)  # k: not a candidate
        flat.scatter_(0, beam_idx * slots + last_col, p_blank + scores.gather(0, last_col))
        # A beam whose parent is in the beam too is also the parent's extension by the beam's
        # last symbol: add those paths, then drop that candidate. (Index w is the -inf row of
        # "no parent"; a doubled last symbol extends only the parent's blank-ending paths.)
        parent_scores[0, :w], parent_scores[1, :w] = total, p_blank
        doubled = last.gather(0, parent.clamp(max=w - 1)) == last
        via_parent = parent_scores.view(-1, n).gather(0, doubled * (w + 1) + parent)
        stay_symbol = torch.logaddexp(stay_symbol, via_parent + p_last)
        flat.scatter_(0, parent * slots + last_col, neg_inf)  # -inf rows absorb no-ops
        grid[:w, k] = torch.logaddexp(stay_blank, stay_symbol)
        cand = flat[: w * slots]

        if span is not None:
            lo, hi = span
            left = t_max - 1 - t if frames_left is None else (frames_left - t).clamp(min=0)
            too_long = (length >= hi) | (length + 1 + left < lo)
            grid[:w, :k].masked_fill_(too_long[:, None], neg_inf)
            grid[:w, k].masked_fill_(length + left < lo, neg_inf)

        pick = _top(cand.t(), w).t().contiguous()  # (W, N) candidate slots
        source = slot_beam.index_select(0, pick.view(-1)).view(w, n)
        col = slot_col.index_select(0, pick.view(-1)).view(w, n)
        from_stay = col == k
        symbol = classes.gather(0, col)  # 0 for stays
        score = cand.gather(0, pick)
        p_blank = torch.where(from_stay, stay_blank.gather(0, source), neg_inf)
        p_symbol = torch.where(from_stay, stay_symbol.gather(0, source), score)
        # A kept text's parent is the slot its old parent's text moved to; an extension's
        # parent is the slot its source moved to (W when it left the beam).
        moved_to.fill_(w).scatter_(0, torch.where(from_stay, source, w), beam_idx.expand(w, n))
        moved_to[w] = w
        parent = moved_to.gather(0, torch.where(from_stay, parent.gather(0, source), source))
        parent.masked_fill_(score == neg_inf, w)  # a dead beam is nobody's parent or child
        last = torch.where(from_stay, last.gather(0, source), symbol)
        if span is not None:
            length = length.gather(0, source) + ~from_stay
        src[t] = source
        emitted[t] = symbol
    return src, emitted, torch.logaddexp(p_blank, p_symbol), length


@contextmanager
def _flush_denormals(device: torch.device) -> Iterator[None]:
    """Flush denormal floats to zero on this CPU thread while inside, then restore the mode.

    Beam scores often differ by 87-104 nats, where logaddexp's exp() gives denormal floats,
    which x86 CPUs process about ten times slower; as zeros they change no float32 result.
    """
    if device.type != "cpu":
        yield
        return
    was_on = torch.tensor([1e-39]).mul(1.0).item() == 0.0
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(was_on)


def _top(scores: Tensor, k: int) -> Tensor:
    """(R, M) -> (R, k) column indices of the k largest scores of each row, in no order.

    On the CPU numpy's introselect is about twice as fast as torch.topk for these shapes.
    """
    if scores.device.type == "cpu":
        rows = np.ascontiguousarray(scores.numpy())
        return torch.from_numpy(np.argpartition(rows, -k, axis=1)[:, -k:])
    return scores.topk(k, dim=1, sorted=False).indices


def _candidate_symbols(lp: Tensor, cutoff: float, top_k: int | None) -> tuple[Tensor, Tensor]:
    """(T, N, C) -> the symbols that may start a character at each frame, (T, K + 1, N) each.

    Their log-probabilities, best first (-inf below the cutoff), and classes (1..C-1), plus
    a last row for "no symbol" (-inf, class 0).
    """
    t_max, n, c = lp.shape
    symbols = lp[..., 1:]
    if top_k is None or top_k >= c - 1:
        scores = symbols.transpose(1, 2)
        classes = torch.arange(1, c, device=lp.device)[:, None].expand(t_max, c - 1, n)
    else:
        # A few passes of max over a contiguous copy beat topk for the small k used here.
        symbols = symbols.clone(memory_format=torch.contiguous_format)
        best, best_class = [], []
        for i in range(top_k):
            value, index = best_classes(symbols)
            best.append(value)
            best_class.append(index + 1)
            if i + 1 < top_k:
                symbols.scatter_(2, index[..., None], float("-inf"))
        scores, classes = torch.stack(best, 1), torch.stack(best_class, 1)
    if cutoff > 0:
        scores = scores.masked_fill(scores < math.log(cutoff), float("-inf"))
        if top_k is not None:
            # Keep only as many rows as the cutoff leaves anywhere (one host sync).
            kept = int((scores > float("-inf")).sum(1).max()) if scores.numel() else 0
            scores, classes = scores[:, :kept], classes[:, :kept]
    none_score = torch.full((t_max, 1, n), float("-inf"), device=lp.device)
    none_class = torch.zeros(t_max, 1, n, dtype=torch.long, device=lp.device)
    return torch.cat([scores, none_score], 1), torch.cat([classes, none_class], 1)
