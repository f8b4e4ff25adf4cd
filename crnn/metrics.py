"""Recognition metrics: edit distance, sequence/character accuracy, NED, confusions."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence


def edit_ops(truth: str, pred: str) -> tuple[int, list[tuple[str, str]]]:
    """Levenshtein distance and the substitutions ``(true, predicted)`` of one best alignment."""
    n, m = len(truth), len(pred)
    d = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n + 1):
        d[i][0] = i
    for j in range(m + 1):
        d[0][j] = j
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1,
                          d[i - 1][j - 1] + (truth[i - 1] != pred[j - 1]))
    subs, i, j = [], n, m
    while i > 0 and j > 0:
        if d[i][j] == d[i - 1][j - 1] + (truth[i - 1] != pred[j - 1]):
            if truth[i - 1] != pred[j - 1]:
                subs.append((truth[i - 1], pred[j - 1]))
            i, j = i - 1, j - 1
        elif d[i][j] == d[i - 1][j] + 1:
            i -= 1
        else:
            j -= 1
    return d[n][m], subs


def score(truths: Sequence[str], preds: Sequence[str]) -> dict:
    """Sequence accuracy, character accuracy (1 - edits / true characters), mean normalised
    edit distance (edits / max length), accuracy by true length, top confusions."""
    n = len(truths)
    exact, edits, chars, ned = 0, 0, 0, 0.0
    by_len: dict[int, list[int]] = {}
    confusions: Counter[tuple[str, str]] = Counter()
    for t, p in zip(truths, preds, strict=True):
        dist, subs = edit_ops(t, p)
        exact += t == p
        edits += dist
        chars += len(t)
        ned += dist / max(len(t), len(p), 1)
        confusions.update(subs)
        bucket = by_len.setdefault(len(t), [0, 0])
        bucket[0] += 1
        bucket[1] += t == p
    return {
        "n": n,
        "sequence_accuracy": exact / n if n else 0.0,
        "char_accuracy": max(0.0, 1 - edits / chars) if chars else 0.0,
        "ned": ned / n if n else 0.0,
        "by_length": {str(k): {"n": v[0], "sequence_accuracy": v[1] / v[0]}
                      for k, v in sorted(by_len.items())},
        "confusions": [{"true": a, "predicted": b, "count": c}
                       for (a, b), c in confusions.most_common(10)],
    }
