"""What each kind of model owns: the layout of its output, its loss, how its output is read,
and which texts it can emit. A registry entry names its head (``register("crnn", CTC)``), so
training, inference, export and the benchmark ask the head instead of testing model names.

- ``CTC``: per-frame classes ``(T, N, C)``, class 0 the blank; CTC loss; greedy or beam
  decoding with constraints; reads texts of up to ``(T - 1) // 2`` symbols (a repeated symbol
  needs a blank between its two frames).
- ``Fixed``: one softmax per position ``(N, L, C)``, class 0 "no character"; a summed per-head
  cross entropy; an argmax per head; reads at most ``L`` symbols, at a fixed input width.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor

from crnn import decode
from crnn.labels import decode_fixed, encode_ctc, encode_fixed
from crnn.models.trunk import frames_for_width
from plumbing.errors import UsageError

if TYPE_CHECKING:
    from crnn.models.config import ModelConfig


class CTC:
    """Per-frame classes with a blank: the CRNN and its CNN+CTC ablation."""

    kind = "ctc"
    batch_dim = 1  # (T, N, C)
    layout = "log_probs (T, N, C), blank=0"
    output_layer = "classifier"  # the nn.Linear whose rows are the classes
    width_is_free = True  # any input width works (T = W / 4)

    def loss(self, out: Tensor, texts: list[str], config: ModelConfig) -> Tensor:
        targets, lengths = encode_ctc(texts, config.charset)
        frames = torch.full((out.shape[1],), out.shape[0], dtype=torch.long)
        return F.ctc_loss(out.float(), targets.to(out.device), frames, lengths, blank=0,
                          reduction="mean", zero_infinity=True)

    def read(self, out: Tensor, charset: str, beam: int | None = None,
             allowed: str | None = None, length_range: tuple[int, int] | None = None,
             ) -> tuple[list[str], Tensor]:
        """Texts and confidences; greedy unless ``beam`` > 1."""
        kw = {"allowed": allowed, "length_range": length_range}
        if beam and beam > 1:
            d = decode.beam_decode(out, charset, width=beam, **kw)
        else:
            d = decode.greedy_decode(out, charset, **kw)
        return d.texts, d.confidence.float().cpu()

    def decoder_name(self, beam: int | None) -> str:
        return f"beam{beam}" if beam and beam > 1 else "greedy"

    def longest(self, config: ModelConfig, symbols: int | None = None) -> int:
        """The longest text it can emit; with one symbol only, every repeat needs a blank."""
        frames = frames_for_width(config.width)
        return (frames + 1) // 2 if symbols == 1 else frames

    def check_capacity(self, config: ModelConfig, longest: int) -> None:
        frames, need = frames_for_width(config.width), 2 * longest + 1
        if frames < need:
            raise UsageError(
                f"{config.name} at input width {config.width} has {frames} output frames, but "
                f"labels of {longest} characters need at least {need} (2 x {longest} + 1): "
                f"use --width {4 * need} or more")

    def output_blocks(self, config: ModelConfig) -> int:
        """How many times the class rows repeat in the output layer."""
        return 1


class Fixed:
    """One softmax head per character position, with a "no character" class."""

    kind = "fixed"
    batch_dim = 0  # (N, L, C)
    layout = "log_probs (N, L, C), no-character=0"
    output_layer = "heads"
    width_is_free = False  # the trunk's features are flattened: one input width

    def loss(self, out: Tensor, texts: list[str], config: ModelConfig) -> Tensor:
        targets = encode_fixed(texts, config.charset, config.max_len).to(out.device)
        return F.nll_loss(out.float().reshape(-1, out.shape[-1]), targets.reshape(-1))

    def read(self, out: Tensor, charset: str, beam: int | None = None,
             allowed: str | None = None, length_range: tuple[int, int] | None = None,
             ) -> tuple[list[str], Tensor]:
        """An argmax per head; ``allowed`` masks the other symbols (beam and length do not
        apply: each head decides alone)."""
        if allowed is not None:
            keep = torch.tensor([True] + [c in allowed for c in charset], device=out.device)
            out = out.masked_fill(~keep, float("-inf"))
        return decode_fixed(out, charset)

    def decoder_name(self, beam: int | None) -> str:
        return "argmax per head"

    def longest(self, config: ModelConfig, symbols: int | None = None) -> int:
        return config.max_len

    def check_capacity(self, config: ModelConfig, longest: int) -> None:
        if config.max_len < longest:
            raise UsageError(f"{config.name} with {config.max_len} heads cannot read labels of "
                             f"{longest} characters: use --max-len {longest}")

    def output_blocks(self, config: ModelConfig) -> int:
        return config.max_len


Head = CTC | Fixed
