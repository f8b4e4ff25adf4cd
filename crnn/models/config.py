"""Model configuration: what a checkpoint needs to rebuild a model exactly."""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from plumbing.config import check_fields, knob
from plumbing.errors import UsageError

if TYPE_CHECKING:
    from crnn.models.heads import Head

# Trunk widths per size: six 3x3 convs in the CRNN paper's VGG layout, then the LSTM width.
SIZES: dict[str, dict] = {
    "tiny": {"channels": (16, 32, 64, 64, 96, 96), "hidden": 64},
    "small": {"channels": (32, 64, 96, 96, 160, 160), "hidden": 128},
    "base": {"channels": (64, 128, 256, 256, 512, 512), "hidden": 256},  # the paper's widths
}
MODEL_NAMES = ("crnn", "cnn-ctc", "cnn-fixed")  # the registry's names (a test keeps them equal)
MAX_CHARSET = 4096  # symbols; the output layer grows with it


@dataclass(frozen=True)
class ModelConfig:
    """``name``: crnn | cnn-ctc | cnn-fixed; ``charset``: symbols of classes 1..C-1 (0 = blank,
    or "no character" for cnn-fixed); ``height``/``width``: the input size in pixels;
    ``max_len``: the longest text cnn-fixed can emit (its number of heads)."""

    name: str = knob(help="Model kind.", choices=MODEL_NAMES, cli=False)
    charset: str = knob(help="Symbols the model reads.", cli=False)
    size: str = knob("small", "Trunk width.", choices=tuple(SIZES), cli=False)
    height: int = knob(32, "Input height in pixels.", lo=16, hi=256, cli=False)
    width: int = knob(128, "Input width in pixels.", lo=16, hi=2048, cli=False)
    max_len: int = knob(6, "Longest text (cnn-fixed heads).", lo=1, hi=256, cli=False)
    # crnn only: a linear path around the BiLSTM (False = the paper)
    rnn_skip: bool = knob(True, "Skip path around the BiLSTM.", cli=False)

    def __post_init__(self) -> None:
        check_fields(self)
        if self.height % 16:
            raise UsageError(f"input height must be a multiple of 16 within 16..256, "
                             f"got {self.height}")
        if self.width % 4:
            raise UsageError(f"input width must be a multiple of 4 within 16..2048, "
                             f"got {self.width}")
        if not self.charset:
            raise UsageError("the model's charset is empty")
        if len(self.charset) > MAX_CHARSET:
            raise UsageError(f"the model's charset has {len(self.charset)} symbols, "
                             f"more than {MAX_CHARSET}")
        if len(set(self.charset)) != len(self.charset):
            twice = sorted({c for c in self.charset if self.charset.count(c) > 1})
            raise UsageError(f"the model's charset repeats {''.join(twice)!r}")
        if any(not c.isprintable() for c in self.charset):
            raise UsageError("the model's charset holds control characters")

    @property
    def num_classes(self) -> int:
        return len(self.charset) + 1

    @property
    def head(self) -> Head:
        """What this kind of model owns: loss, decoding, capacity (``crnn.models.heads``)."""
        from crnn.models.registry import head_of  # the registry imports this module

        return head_of(self.name)

    @property
    def channels(self) -> tuple[int, ...]:
        return SIZES[self.size]["channels"]

    @property
    def hidden(self) -> int:
        return SIZES[self.size]["hidden"]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Any) -> ModelConfig:
        """Rebuild from ``to_dict``'s output, every field checked (it comes from a file)."""
        if not isinstance(d, dict):
            raise UsageError(f"model config is {type(d).__name__}, not a table of fields")
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(map(str, set(d) - set(names)))
        missing = [n for n in ("name", "charset") if n not in d]
        if unknown or missing:
            raise UsageError("model config " + "; ".join(
                ([f"has unknown fields {', '.join(unknown)}"] if unknown else [])
                + ([f"lacks {', '.join(missing)}"] if missing else [])))
        return cls(**d)
