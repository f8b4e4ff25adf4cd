"""Compiled (numba) row-by-row decoders for the CPU.

At small batches a decoder built from tensor or numpy operations pays a fixed dispatch cost
per operation (~1 µs for numpy, several for torch) that dwarfs the arithmetic: greedy at
batch 1 is 32 x 37 comparisons, and the batched beam search runs ~35 torch operations per
frame whatever the batch. These kernels do the same work in one compiled call per batch,
row by row, so their cost is the arithmetic itself. They are imported lazily (numba costs
~0.5 s to import) and cached on disk after the first compilation.

Each kernel mirrors a reference in this package, and the tests hold them to it:
:func:`greedy_rows` the best path of :mod:`crnn.decode._greedy`, :func:`bound_row` the
best-path share test of :func:`crnn.decode._beam._decided_rows` (``ctc_loss``'s forward sum,
bounded), and :func:`search_row`
the prefix beam search of :func:`crnn.decode._beam._search` (with texts merged by content,
where the tensor search links prefixes by their slot).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from crnn.decode._common import SEPARATOR_ID

_LOG_HALF = math.log(0.5)
_DECIDED = _LOG_HALF + 1e-4  # a share above decides a row; the margin covers rounding
_HASH_MUL = np.uint64(0x9E3779B97F4A7C15)  # a text's hash: h * M + class, wrapping
_EXP_MINUS_12 = math.exp(-12.0)
_LOG_2_UP = 0.7  # log(2) and then some: above any rounding of a logaddexp's term
_NEGLIGIBLE = -37.0  # log of a relative term below float64 resolution (see _logaddexp)


@numba.njit(cache=True, nogil=True)
def greedy_rows(lp, out):
    """(T, N, C) -> ``out`` (N, T + 1): per row, the classes the best path emits (merged
    repeats, no blanks), then zeros, then the separator id in the last column."""
    t_max, n, c = lp.shape
    for r in range(n):
        previous = 0
        j = 0
        for t in range(t_max):
            cls = _best_class(lp, t, r, c)  # the first of tied classes, like argmax
            if cls != 0 and cls != previous:
                out[r, j] = cls
                j += 1
            previous = cls
        for i in range(j, t_max):
            out[r, i] = 0
        out[r, t_max] = SEPARATOR_ID


@numba.njit(cache=True, nogil=True)
def _logaddexp(a, b):
    if a < b:
        a, b = b, a
    # exp() and log1p() are the search's costliest operations, and many of its sums add a
    # term many nats below the other (a text's paths that end in its last symbol fade within
    # a few blank frames): below e^-37 = 8.5e-17 the term moves the float64 result by an ulp
    # at most, so it is dropped without computing it.
    if b == -np.inf or b - a < _NEGLIGIBLE:
        return a
    return a + math.log1p(math.exp(b - a))


@numba.njit(cache=True, nogil=True)
def _best_class(lp, t, r, c):
    """The first class of frame ``t`` of row ``r`` with the largest value (argmax; 0 if the
    blank is NaN, and NaN never wins).

    The running max of one chain waits for each comparison before the next; four
    independent chains let the CPU overlap them (the argmax was half of the bound's cost),
    and a second scan finds the max's first class, most often the blank.
    """
    best = lp[t, r, 0]
    if best != best:
        return 0
    m0 = m1 = m2 = m3 = best
    q = 1
    while q + 4 <= c:
        v0, v1, v2, v3 = lp[t, r, q], lp[t, r, q + 1], lp[t, r, q + 2], lp[t, r, q + 3]
        m0 = v0 if v0 > m0 else m0
        m1 = v1 if v1 > m1 else m1
        m2 = v2 if v2 > m2 else m2
        m3 = v3 if v3 > m3 else m3
        q += 4
    while q < c:
        v0 = lp[t, r, q]
        m0 = v0 if v0 > m0 else m0
        q += 1
    m0 = m1 if m1 > m0 else m0
    m2 = m3 if m3 > m2 else m2
    best = m2 if m2 > m0 else m0
    cls = 0
    while lp[t, r, cls] != best:
        cls += 1
    return cls


@numba.njit(cache=True, nogil=True)
def bound_row(lp, r, frames, path, labels, near, alpha, need_score):
    """A lower bound on the probability of row ``r``'s best-path text (first ``frames``).

    Fills ``path`` (>= ``frames``) with the best path and ``labels`` (>= ``frames``) with
    its text's classes, uses ``near`` (>= C) and ``alpha`` (>= 2 * ``frames`` + 1) as
    scratch, and returns
    (share, bound, length): the log of the text's share of the row's probability (a lower
    bound), the text's log-probability (a lower bound) and its length. A share above
    log(1/2) decides the row: its best path's text is then more probable than all other
    texts together, which is what an exact search returns; the caller's small margin keeps
    rounding from deciding a row at the border. Without ``need_score``, a row that its best
    path alone decides returns the path's share and log-probability instead.

    The text's probability is CTC's forward sum over its alignments, as ``ctc_loss``
    computes it, in the linear domain relative to each frame's best class, except that a
    class more than 12 nats below its frame's best counts as 0 for the text (fewer
    alignments: a lower bound) and as e^-12 for the row's total (an upper bound). On a
    trained crnn-small's outputs this decides nearly every row (every row whose text holds
    more than half of the probability there), where a bound from alignments that factor
    over frames decided fewer; the rest need a search, several times a row's bound.
    """
    c = lp.shape[2]
    n = 0
    previous = 0
    for t in range(frames):
        cls = _best_class(lp, t, r, c)
        path[t] = cls
        if cls != 0 and cls != previous:
            labels[n] = cls
            n += 1
        previous = cls
    mass_all = 1.0
    best_sum = 0.0
    for t in range(frames):
        best = lp[t, r, path[t]]
        # exp() is costly: a class more than 12 nats below the best adds at most e^-12,
        # counted as that much, so the mass stays an upper bound (the share a lower). The
        # near classes (one or two a frame) are gathered without a branch, then summed:
        # which classes are near is data, so a branch per class mispredicts.
        k = 0
        floor = best - np.float32(12.0)
        for q in range(c):
            near[k] = q
            k += lp[t, r, q] >= floor
        mass = (c - k) * _EXP_MINUS_12
        for i in range(k):
            mass += math.exp(lp[t, r, near[i]] - best)
        mass_all *= mass
        best_sum += best
    if not need_score and -math.log(mass_all) > _DECIDED:
        # The best path alone holds more than half of the probability, so its text does
        # (on most of a trained model's rows): a caller that wants only the text skips the sum.
        return -math.log(mass_all), best_sum, n
    # alpha[s]: the forward variable of state s (even: a blank, odd: labels[s // 2]), divided
    # by the product of the frames' best probabilities. Only the band [lo, hi] of states
    # with nonzero alpha is updated, a few states a frame. No rescaling: an alpha is at most
    # the product of the frames' masses, which stays finite unless ~200 frames spread their
    # probability evenly; a row past that gets a NaN or -inf share and is searched.
    states = 2 * n + 1
    for s in range(states):
        alpha[s] = 0.0
    alpha[0] = 1.0  # before the first frame, every alignment is in the first blank state
    lo = 0
    hi = 0
    for t in range(frames):
        cls = path[t]
        best = lp[t, r, cls]
        blank = 1.0
        if cls != 0:
            gap = lp[t, r, 0] - best
            blank = math.exp(gap) if gap >= -12.0 else 0.0
        new_hi = -1
        for s in range(min(hi + 2, states - 1), lo - 1, -1):  # downwards: in place
            if s & 1:
                j = s >> 1
                a = alpha[s] + alpha[s - 1]
                if j > 0 and labels[j - 1] != labels[j]:  # skipping the blank between
                    a += alpha[s - 2]
                q = labels[j]
                if q != cls and a != 0.0:  # the frame's best class has factor 1
                    gap = lp[t, r, q] - best
                    a = a * math.exp(gap) if gap >= -12.0 else 0.0
            else:
                a = alpha[s] + alpha[s - 1] if s > 0 else alpha[s]
                a *= blank
            alpha[s] = a
            if new_hi < 0 and a != 0.0:
                new_hi = s
        if new_hi < 0:  # only with NaN or infinite inputs: the best path keeps its alpha
            return -np.inf, -np.inf, n
        hi = new_hi
        while alpha[lo] == 0.0:
            lo += 1
    total = alpha[states - 1] + (alpha[states - 2] if states >= 2 else 0.0)
    return math.log(total) - math.log(mass_all), best_sum + math.log(total), n


@numba.njit(cache=True, nogil=True)
def beam_rows(lp, lengths, width, log_cutoff, top_k, lo, hi, k, use_bound, ids, scores):
    """Prefix beam search of every row of ``lp`` (T, N, C) -> ``ids`` (N, k, T), ``scores``
    (N, k).

    ``ids`` receives each of the k best texts' classes (zero-padded), ``scores`` their
    log-probabilities (-inf where fewer than k texts survive). ``use_bound``: a row whose
    bound decides it (see :func:`bound_row`) takes its best path's text without a search,
    scored by the bound.
    """
    t_max, n, c = lp.shape
    path = np.empty(2 * t_max + c, dtype=np.int64)  # the best path, its text, near classes
    alpha = np.empty(2 * t_max + 1)
    for r in range(n):
        _beam_row(lp, r, lengths[r], width, log_cutoff, top_k, lo, hi, k, use_bound, path,
                  alpha, ids[r], scores[r])


@numba.njit(cache=True, nogil=True)
def beam_texts(lp, width, log_cutoff, top_k, out):
    """The best text of every row of ``lp`` (T, N, C), rows decided by the bound unsearched,
    into ``out`` (N, T + 1) as :func:`greedy_rows` writes it: texts only, one call."""
    t_max, n, c = lp.shape
    path = np.empty(2 * t_max + c, dtype=np.int64)  # the best path, its text, near classes
    alpha = np.empty(2 * t_max + 1)
    for r in range(n):
        share, _, length = bound_row(lp, r, t_max, path[:t_max], path[t_max : 2 * t_max],
                                     path[2 * t_max :], alpha, False)
        if share > _DECIDED:
            for j in range(length):
                out[r, j] = path[t_max + j]
            for j in range(length, t_max):
                out[r, j] = 0
        else:
            # The search's output arrays only for the rows it runs on (few of a trained
            # model's): at batch 1 each allocation is a visible share of a decided row.
            ids = np.zeros((1, t_max), dtype=np.int64)
            scores = np.full(1, -np.inf)
            search_row(lp, r, t_max, width, log_cutoff, top_k, 0, t_max, 1, ids, scores)
            for t in range(t_max):
                out[r, t] = ids[0, t]
        out[r, t_max] = SEPARATOR_ID


@numba.njit(cache=True, nogil=True)
def _beam_row(lp, r, frames, width, log_cutoff, top_k, lo, hi, k, use_bound, path, alpha,
              ids, scores):
    """One row of :func:`beam_rows`: decided by the bound, or searched."""
    if use_bound:
        t_max = lp.shape[0]
        share, bound, n = bound_row(lp, r, frames, path[:t_max], path[t_max : 2 * t_max],
                                    path[2 * t_max :], alpha, True)
        if share > _DECIDED:
            for j in range(n):
                ids[0, j] = path[t_max + j]
            scores[0] = bound
            return
    search_row(lp, r, frames, width, log_cutoff, top_k, lo, hi, k, ids, scores)


@numba.njit(cache=True, nogil=True)
def search_row(lp, r, frames, width, log_cutoff, top_k, lo, hi, k, ids, scores):
    """Prefix beam search of one row (see :func:`beam_rows`); fills ``ids`` (k, T) and
    ``scores`` (k,).

    Prefixes are nodes of a tree (parent, last class, length, hash of the text). Each frame
    builds the candidates (every beam staying on its text, and extended by each candidate
    symbol), merges candidates of one text through a small hash table keyed by the text's
    hash and length, and keeps the ``width`` most probable.
    """
    c = lp.shape[2]
    w = width
    kk = min(top_k, c - 1)
    nodes = 1 + frames * w
    parent = np.empty(nodes, dtype=np.int64)
    last = np.empty(nodes, dtype=np.int64)
    length = np.empty(nodes, dtype=np.int64)
    key = np.empty(nodes, dtype=np.uint64)
    # Where each node sits in the beam, -1 if it is not there: finding a beam's parent is
    # then one lookup, not a scan of the beam.
    position = np.full(nodes, -1, dtype=np.int64)
    parent[0], last[0], length[0], key[0] = -1, 0, 0, np.uint64(0)
    used = 1
    beam = np.empty(w, dtype=np.int64)
    p_blank = np.empty(w)
    p_symbol = np.empty(w)
    # Per beam, logaddexp(p_blank, p_symbol): kept from the selection, which computed it.
    p_total = np.empty(w)
    beam[0], p_blank[0], p_symbol[0], p_total[0], position[0] = 0, 0.0, -np.inf, 0.0, 0
    live = 1
    # Candidates of a frame: a node (or -1 for a new text: its parent and class), the text's
    # hash and length, and the two scores.
    m_max = w * (kk + 1)
    cand_node = np.empty(m_max, dtype=np.int64)
    cand_parent = np.empty(m_max, dtype=np.int64)
    cand_last = np.empty(m_max, dtype=np.int64)
    cand_len = np.empty(m_max, dtype=np.int64)
    cand_key = np.empty(m_max, dtype=np.uint64)
    cand_blank = np.empty(m_max)
    cand_symbol = np.empty(m_max)
    kept = np.empty(w, dtype=np.int64)  # the selection: candidate indices, best first
    kept_total = np.empty(w)
    size = 1
    while size < 2 * m_max:
        size *= 2
    table = np.zeros(size, dtype=np.int64)  # candidate index + 1, 0 = empty
    stamp = np.zeros(size, dtype=np.int64)  # the frame that filled the slot
    sym = np.empty(max(kk, 1), dtype=np.int64)
    extra = np.empty(w)
    sym_score = np.empty(max(kk, 1))

    for t in range(frames):
        # The symbols that may start a character here: the top_k most probable, >= cutoff.
        ns = 0
        for q in range(1, c):
            v = lp[t, r, q]
            if v < log_cutoff or v == -np.inf:
                continue
            ns = _insert_ranked(sym_score, sym, ns, kk, v, q)  # ties: the lower class first
        left = frames - 1 - t
        blank_lp = lp[t, r, 0]
        _parent_paths(lp, r, t, beam, p_blank, p_total, live, parent, last, length, position,
                      sym, ns, extra)
        if ns == 0 and lo == 0:
            # No symbol can start here: every beam stays on its text, no two texts merge and
            # none is dropped, so the beam is updated in place (most frames of a trained
            # model's outputs are such confident blanks).
            for b in range(live):
                node = beam[b]
                if length[node] > 0:
                    p_symbol[b] = _logaddexp(p_symbol[b] + lp[t, r, last[node]], extra[b])
                p_blank[b] = p_total[b] + blank_lp
                p_total[b] = _logaddexp(p_blank[b], p_symbol[b])
            continue
        m = 0
        for b in range(live):
            node = beam[b]
            total = p_total[b]
            n_len = length[node]
            # Staying on the text (a blank, or the last symbol again).
            if n_len + left >= lo:
                stay_symbol = -np.inf
                if n_len > 0:
                    stay_symbol = _logaddexp(p_symbol[b] + lp[t, r, last[node]], extra[b])
                slot = _find(table, stamp, t + 1, cand_key, cand_len, key[node], n_len)
                if slot < 0:
                    i = m
                    m += 1
                    _put(table, stamp, t + 1, key[node], n_len, i)
                    cand_node[i], cand_parent[i], cand_last[i] = node, parent[node], last[node]
                    cand_len[i], cand_key[i] = n_len, key[node]
                    # A new candidate takes its scores as they are: no sums with -inf.
                    cand_blank[i], cand_symbol[i] = total + blank_lp, stay_symbol
                else:
                    i = slot
                    cand_node[i] = node  # the text is in the beam: keep its node
                    cand_blank[i] = _logaddexp(cand_blank[i], total + blank_lp)
                    cand_symbol[i] = _logaddexp(cand_symbol[i], stay_symbol)
            if n_len >= hi or n_len + 1 + left < lo:
                continue
            for s in range(ns):
                q = sym[s]
                # The last symbol again starts a new character only after a blank.
                score = (p_blank[b] if q == last[node] and n_len > 0 else total) + sym_score[s]
                h = key[node] * _HASH_MUL + np.uint64(q)
                slot = _find(table, stamp, t + 1, cand_key, cand_len, h, n_len + 1)
                if slot < 0:
                    i = m
                    m += 1
                    _put(table, stamp, t + 1, h, n_len + 1, i)
                    cand_node[i], cand_parent[i], cand_last[i] = -1, node, q
                    cand_len[i], cand_key[i] = n_len + 1, h
                    cand_blank[i], cand_symbol[i] = -np.inf, score
                else:
                    cand_symbol[slot] = _logaddexp(cand_symbol[slot], score)
        # Keep the ``width`` best candidates, best first, the lower index first among equals.
        # One pass inserting into a sorted list of ``width``: most candidates fall below its
        # last entry at one comparison, where picking the best ``width`` times would rescan
        # them all. NaN totals rank as an argmax scan from the first candidate ranks them:
        # the first candidate's first, any other's never.
        n_kept = 0
        for i in range(m):
            blank, symbol = cand_blank[i], cand_symbol[i]
            # A sum of two terms is at most the larger plus log(2): a candidate that falls
            # below the full list even so is dropped without computing its sum.
            if n_kept == w and max(blank, symbol) + _LOG_2_UP <= kept_total[w - 1]:
                continue
            v = _logaddexp(blank, symbol)
            if v == -np.inf or (v != v and i > 0):
                continue
            n_kept = _insert_ranked(kept_total, kept, n_kept, w, v, i)
        for b in range(live):
            position[beam[b]] = -1
        live = 0
        for j in range(n_kept):
            i = kept[j]
            node = cand_node[i]
            if node < 0:  # a new text: a new node of the tree
                node = used
                used += 1
                parent[node], last[node] = cand_parent[i], cand_last[i]
                length[node], key[node] = cand_len[i], cand_key[i]
            beam[live], p_blank[live], p_symbol[live] = node, cand_blank[i], cand_symbol[i]
            p_total[live] = kept_total[j]
            position[node] = live
            live += 1
        if live == 0:
            break

    # The k best texts of at least ``lo`` symbols.
    finals = np.empty(live)
    for b in range(live):
        finals[b] = p_total[b]
        if length[beam[b]] < lo:
            finals[b] = -np.inf
    order = np.argsort(-finals, kind="mergesort")
    for j in range(min(k, live)):
        b = order[j]
        if finals[b] == -np.inf:
            break
        scores[j] = finals[b]
        node = beam[b]
        while node > 0:
            ids[j, length[node] - 1] = last[node]
            node = parent[node]


@numba.njit(cache=True, nogil=True, inline="always")
def _insert_ranked(scores, items, n, cap, v, item):
    """Insert ``item`` of score ``v`` into the first ``n`` entries of ``scores`` / ``items``,
    kept best first and at most ``cap`` long; returns the new count. A full list drops its
    last entry, or the item if it scores no higher; an item goes after those scoring the
    same, so that among equals the first inserted ranks first."""
    if n < cap:
        j = n
        n += 1
    elif v > scores[cap - 1]:
        j = cap - 1
    else:
        return n
    while j > 0 and scores[j - 1] < v:
        scores[j], items[j] = scores[j - 1], items[j - 1]
        j -= 1
    scores[j], items[j] = v, item
    return n


@numba.njit(cache=True, nogil=True)
def _parent_paths(lp, r, t, beam, p_blank, p_total, live, parent, last, length, position,
                  sym, ns, extra):
    """Per beam, the paths that reach its text from its parent's in this frame by its last
    symbol when that symbol is no candidate here (candidates reach it through the table),
    the parent being in the beam: -inf where none. As the tensor search does, so that
    pruning candidates never drops a kept text's own paths."""
    for b in range(live):
        extra[b] = -np.inf
        node = beam[b]
        if length[node] == 0:
            continue
        q = last[node]
        candidate = False
        for s in range(ns):
            candidate |= sym[s] == q
        if candidate:
            continue
        p = position[parent[node]]
        if p >= 0:
            # After the same symbol, only the parent's paths that end in a blank.
            source = p_blank[p] if last[parent[node]] == q else p_total[p]
            extra[b] = source + lp[t, r, q]


@numba.njit(cache=True, nogil=True)
def _find(table, stamp, frame, cand_key, cand_len, h, n):
    """The candidate index of the text (hash ``h``, length ``n``) this frame, or -1."""
    mask = table.shape[0] - 1
    slot = (h ^ (h >> np.uint64(29)) ^ np.uint64(n)) & np.uint64(mask)
    s = np.int64(slot)
    while stamp[s] == frame:
        i = table[s] - 1
        if cand_key[i] == h and cand_len[i] == n:
            return i
        s = (s + 1) & mask
    return -1


@numba.njit(cache=True, nogil=True)
def _put(table, stamp, frame, h, n, index):
    mask = table.shape[0] - 1
    slot = (h ^ (h >> np.uint64(29)) ^ np.uint64(n)) & np.uint64(mask)
    s = np.int64(slot)
    while stamp[s] == frame:
        s = (s + 1) & mask
    stamp[s] = frame
    table[s] = index + 1
