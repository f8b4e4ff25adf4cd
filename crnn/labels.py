"""Texts to class indices and back: class 0 is the CTC blank (or "no character")."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from plumbing.errors import UsageError


def charset_from_labels(labels: Sequence[str]) -> str:
    """The sorted set of symbols that the labels use."""
    return "".join(sorted(set("".join(labels))))


def check_labels(labels: Sequence[str], charset: str, where: str) -> None:
    """Refuse labels that are empty or use symbols outside ``charset`` (naming a few)."""
    allowed = set(charset)
    bad = [s for s in labels if not s or not set(s) <= allowed]
    if bad:
        symbols = sorted({c for s in bad for c in s} - allowed)
        examples = ", ".join(repr(s) for s in bad[:3])
        what = f"symbols {''.join(symbols)!r} outside the charset" if symbols else "empty labels"
        raise UsageError(f"{where}: {len(bad)} labels have {what} (e.g. {examples})")


def encode_ctc(texts: Sequence[str], charset: str) -> tuple[Tensor, Tensor]:
    """Texts -> (targets concatenated (sum L,), lengths (N,)), as ``CTCLoss`` takes them."""
    index = {c: i + 1 for i, c in enumerate(charset)}
    flat = [index[c] for s in texts for c in s]
    return torch.tensor(flat, dtype=torch.long), torch.tensor([len(s) for s in texts])


def encode_fixed(texts: Sequence[str], charset: str, max_len: int) -> Tensor:
    """Texts -> (N, max_len) class indices, padded with 0 = "no character"."""
    index = {c: i + 1 for i, c in enumerate(charset)}
    out = torch.zeros(len(texts), max_len, dtype=torch.long)
    for row, s in enumerate(texts):
        out[row, : len(s)] = torch.tensor([index[c] for c in s[:max_len]], dtype=torch.long)
    return out


def decode_fixed(log_probs: Tensor, charset: str) -> tuple[list[str], Tensor]:
    """cnn-fixed output ``(N, L, C) -> (texts, confidence (N,))``; "no character" is dropped."""
    probs, idx = log_probs.float().max(-1)
    table = ["", *charset]
    rows = idx.cpu().tolist()
    texts = ["".join(table[i] for i in row) for row in rows]
    return texts, probs.sum(-1).exp().cpu()
