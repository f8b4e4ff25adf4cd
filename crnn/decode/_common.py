"""What every decoder shares: input checks, the result type and the labels -> strings step."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, lru_cache

import numpy as np
import torch
from torch import Tensor


@dataclass(frozen=True)
class Decoded:
    """Decoded texts of a batch of N rows, with their scores.

    ``log_prob`` (N,) is the natural log-probability of what was decoded: of the best
    alignment (path) for the greedy decoders, of the text summed over the alignments the beam
    kept for beam search. ``confidence`` is its exponential.
    """

    texts: list[str]
    log_prob: Tensor
    # Greedy with details=True: per row, the probability of each character at the first
    # frame that emitted it, and that frame's index.
    char_probs: list[Tensor] | None = None
    positions: list[Tensor] | None = None
    # Beam with nbest > 1: per row, up to nbest (text, log-probability) pairs, best first.
    nbest: list[list[tuple[str, float]]] | None = None

    @property
    def confidence(self) -> Tensor:
        """(N,) probability of what was decoded, in [0, 1]."""
        return self.log_prob.exp()


@dataclass(frozen=True)
class Problem:
    """Checked decoder inputs, with ``allowed`` already applied by dropping columns."""

    log_probs: Tensor  # (T, N, C'), C' = 1 + number of allowed symbols
    charset: str  # symbols of classes 1..C'-1
    lengths: Tensor | None  # (N,) long on log_probs' device, or None for "all T frames"
    length_range: tuple[int, int] | None


def prepare(
    log_probs: Tensor | np.ndarray,
    charset: str,
    lengths: Tensor | np.ndarray | None = None,
    allowed: str | None = None,
    length_range: int | tuple[int, int] | None = None,
) -> Problem:
    """Validate the common arguments of the decoders; raise ValueError on anything malformed."""
    if isinstance(log_probs, np.ndarray):
        log_probs = torch.from_numpy(log_probs)
    if not isinstance(log_probs, Tensor):
        raise ValueError(f"log_probs must be a tensor or numpy array, not {type(log_probs)}")
    log_probs = log_probs.detach()
    if log_probs.dim() != 3:
        raise ValueError(f"log_probs must be (T, N, C), got shape {tuple(log_probs.shape)}")
    if not log_probs.is_floating_point():
        raise ValueError(f"log_probs must be floating point, got {log_probs.dtype}")
    t, n, c = log_probs.shape
    if len(charset) != c - 1:
        raise ValueError(
            f"charset has {len(charset)} symbols but log_probs has {c} classes; "
            "expected C - 1 symbols (class 0 is the blank)"
        )
    if "\0" in charset:
        raise ValueError("charset must not contain NUL ('\\0')")
    if lengths is not None:
        lengths = torch.as_tensor(lengths, device=log_probs.device).long()
        if lengths.shape != (n,):
            raise ValueError(f"lengths must have shape ({n},), got {tuple(lengths.shape)}")
        # One device->host sync for the whole batch, so bad lengths fail loudly.
        if n and bool(((lengths < 0) | (lengths > t)).any()):
            raise ValueError(f"lengths must lie in [0, {t}]")
    if allowed is not None:
        unknown = sorted(set(allowed) - set(charset))
        if unknown:
            raise ValueError(f"allowed symbols not in charset: {''.join(unknown)!r}")
        # Dropping the other columns decodes exactly as if they had probability 0.
        keep = [0] + [i + 1 for i, ch in enumerate(charset) if ch in set(allowed)]
        log_probs = log_probs[..., keep]
        charset = "".join(charset[i - 1] for i in keep[1:])
    span = None if length_range is None else _check_range(length_range, t)
    if span is not None:
        _check_feasible(span[0], len(charset), t, lengths)
    return Problem(log_probs, charset, lengths, span)


def _check_range(length_range: int | tuple[int, int], t: int) -> tuple[int, int]:
    lo, hi = (length_range, length_range) if isinstance(length_range, int) else length_range
    if not 0 <= lo <= hi:
        raise ValueError(f"length_range must satisfy 0 <= lo <= hi, got {length_range!r}")
    return lo, min(hi, t)


def _check_feasible(lo: int, symbols: int, t: int, lengths: Tensor | None) -> None:
    """Raise unless every row has enough frames to emit ``lo`` symbols."""
    if lo == 0:
        return
    if symbols == 0:
        raise ValueError(f"cannot emit {lo} symbols with no allowed symbol")
    # With a single symbol, repeats need a blank frame between them.
    need = lo if symbols > 1 else 2 * lo - 1
    frames = t if lengths is None or not len(lengths) else int(lengths.min())
    if frames < need:
        raise ValueError(
            f"a row with {frames} frames cannot emit {lo} symbols (needs {need} frames)"
        )


def force_blank_after(log_probs: Tensor, lengths: Tensor | None) -> Tensor:
    """(T, N, C) -> (T, N, C): frames at or past a row's length become a certain blank.

    A certain blank (log p = 0 for the blank, -inf for the rest) leaves every text's score
    unchanged, which lets the batched decoders treat all rows as T frames long.
    """
    if lengths is None:
        return log_probs
    past = torch.arange(log_probs.shape[0], device=log_probs.device)[:, None] >= lengths
    blank = torch.full_like(log_probs[0, 0], float("-inf"))
    blank[0] = 0.0
    return torch.where(past[..., None], blank, log_probs)


def best_classes(lp: Tensor) -> tuple[Tensor, Tensor]:
    """(..., C) -> the best value and its class along the last dimension, (...) each.

    On the CPU, when every value is negative (log-probabilities almost always are), the
    int32 bit patterns of the floats sort in the reverse order of their values, and torch's
    integer argmin is ~1.5x faster than its float max. Ties resolve to the first class
    either way. Otherwise (zeros, positive logits, NaN) it is a plain max.
    """
    if (
        lp.device.type == "cpu"
        and lp.dtype == torch.float32
        and lp.numel()
        and float(lp.amax()) < 0
    ):
        path = lp.view(torch.int32).argmin(-1)
        return lp.gather(-1, path[..., None])[..., 0], path
    return lp.max(-1)  # max also returns the values, and beats argmax


def plain_host_array(log_probs: Tensor | np.ndarray, charset: str) -> np.ndarray | None:
    """``log_probs`` as a contiguous numpy array when the compiled decoders can take it as is
    (a float32/float64 (T, N, C) CPU tensor or array matching ``charset``), else None.

    The cheapest check there is, for batch 1: ``Tensor.numpy`` itself refuses CUDA tensors,
    tensors that require grad and dtypes numpy lacks. Anything refused here goes through
    :func:`prepare`, which explains what is wrong.
    """
    try:
        host = log_probs if isinstance(log_probs, np.ndarray) else log_probs.numpy()
    except (AttributeError, RuntimeError, TypeError):
        return None
    if (host.ndim == 3 and host.shape[2] == len(charset) + 1 and host.dtype.char in "fd"
            and "\0" not in charset):
        return host if host.flags.c_contiguous else np.ascontiguousarray(host)
    return None


def kernel_texts(charset: str, n: int, t: int, kernel: Callable[..., object], *args: object
                 ) -> list[str]:
    """The N texts that the compiled ``kernel(*args, out)`` writes into ``out`` (N, T + 1):
    per row the classes of its text, then zeros, then :data:`SEPARATOR_ID`.

    With a byte table the classes come back as bytes, a row per line: one ``translate`` maps
    them to characters (dropping the zeros) and one ``split`` cuts the rows apart.
    """
    table = byte_table(charset)
    out = np.empty((n, t + 1), dtype=np.int32 if table is None else np.uint8)
    kernel(*args, out)
    if table is None:
        return wide_texts(out[:, :t], charset)
    if n == 1:  # batch 1, where every call's overhead shows: no separator to split on
        return [out.tobytes().translate(table[0], _NONE_AND_SEPARATOR).decode("latin-1")]
    return out.tobytes().translate(table[0], b"\0").decode("latin-1").split(table[1])[:-1]


@cache
def compiled():
    """:mod:`crnn.decode._compiled`, imported on first use: numba takes ~0.5 s to import."""
    from crnn.decode import _compiled

    return _compiled


def collapse(path: Tensor) -> Tensor:
    """(T, N) class per frame -> (T, N) class emitted at each frame, 0 where none.

    A frame emits its class when it is not the blank and differs from the previous frame's.
    """
    emit = path.clone()
    emit[1:].masked_fill_(path[1:] == path[:-1], 0)
    return emit


def labels_to_texts(labels: Tensor, charset: str, *, merge_repeats: bool) -> list[str]:
    """(T, R) class per frame -> R strings, dropping blanks (0) and, if asked, repeats.

    The labels cross to the host once, as bytes. For charsets of at most 254 Latin-1 symbols
    (the usual case) the strings come from C-level bytes and str methods, with no work per
    row in Python: one ``translate`` drops the blanks and maps classes to characters, and one
    ``split`` on a separator appended to each row cuts the rows apart.
    """
    t, r = labels.shape
    if t == 0 or r == 0:
        return [""] * r
    dtype = torch.uint8 if byte_table(charset) is not None else torch.int32
    return rows_to_texts(labels.t().to(dtype).cpu().numpy(), charset, merge_repeats)


def rows_to_texts(rows: np.ndarray, charset: str, merge_repeats: bool) -> list[str]:
    """(R, T) numpy class ids per row -> R strings, as :func:`labels_to_texts` (host side).

    Few numpy calls whatever R: at batch 1 their fixed cost (about a microsecond each) is
    most of the decoding time.
    """
    r, t = rows.shape
    if t == 0 or r == 0:
        return [""] * r
    table = byte_table(charset)
    if table is None:
        rows = np.array(rows, dtype=np.int32)  # a copy: the merge below writes into it
        if merge_repeats:
            rows[:, 1:] *= rows[:, 1:] != rows[:, :-1]
        return wide_texts(rows, charset)
    buffer = np.empty((r, t + 1), dtype=np.uint8)
    body = buffer[:, :t]
    body[...] = rows
    if merge_repeats:
        body[:, 1:] *= body[:, 1:] != body[:, :-1]
    buffer[:, t] = SEPARATOR_ID
    text = buffer.tobytes().translate(table[0], b"\0").decode("latin-1")
    return text.split(table[1])[:-1]


SEPARATOR_ID = 255
_NONE_AND_SEPARATOR = bytes([0, SEPARATOR_ID])


@lru_cache(maxsize=32)
def byte_table(charset: str) -> tuple[bytes, str] | None:
    """The translate table (class id -> Latin-1 byte) and row separator, or None."""
    if len(charset) >= SEPARATOR_ID or any(ord(ch) > 255 for ch in charset):
        return None
    separator = next(chr(i) for i in range(1, 256) if chr(i) not in charset)
    table = bytearray(256)
    table[1 : len(charset) + 1] = charset.encode("latin-1")
    table[SEPARATOR_ID] = ord(separator)
    return bytes(table), separator


def wide_texts(rows: np.ndarray, charset: str) -> list[str]:
    """(R, T) class ids, 0 = none -> R strings, for any charset.

    The kept classes are packed to the front of each row as code points, and numpy reads
    each row as a fixed-width unicode string, whose trailing NULs it drops.
    """
    r, t = rows.shape
    points = np.array([0, *map(ord, charset)], dtype=np.uint32)
    keep = rows != 0
    row, frame = np.nonzero(keep)
    packed = np.zeros((r, t), dtype=np.uint32)
    packed[row, keep.cumsum(1)[row, frame] - 1] = points[rows[row, frame]]
    return packed.view(np.dtype(("U", t))).ravel().tolist()
