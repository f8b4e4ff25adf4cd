"""Model configuration: what a checkpoint needs to rebuild a model exactly."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from plumbing.errors import UsageError

# Trunk widths per size: six 3x3 convs in the CRNN paper's VGG layout, then the LSTM width.
SIZES: dict[str, dict] = {
    "tiny": {"channels": (16, 32, 64, 64, 96, 96), "hidden": 64},
    "small": {"channels": (32, 64, 96, 96, 160, 160), "hidden": 128},
    "base": {"channels": (64, 128, 256, 256, 512, 512), "hidden": 256},  # the paper's widths
}
CTC_MODELS = ("crnn", "cnn-ctc")


@dataclass(frozen=True)
class ModelConfig:
    """``name``: crnn | cnn-ctc | cnn-fixed; ``charset``: symbols of classes 1..C-1 (0 = blank,
    or "no character" for cnn-fixed); ``height``/``width``: the input size in pixels;
    ``max_len``: the longest text cnn-fixed can emit (its number of heads)."""

    name: str
    charset: str
    size: str = "small"
    height: int = 32
    width: int = 128
    max_len: int = 6
    rnn_skip: bool = True  # crnn only: a linear path around the BiLSTM (False = the paper)

    def __post_init__(self) -> None:
        if self.size not in SIZES:
            raise UsageError(f"unknown model size {self.size!r}; choose from {', '.join(SIZES)}")
        if self.height % 16 or not 16 <= self.height <= 256:
            raise UsageError(f"input height must be a multiple of 16 within 16..256, "
                             f"got {self.height}")
        if self.width % 4 or not 16 <= self.width <= 2048:
            raise UsageError(f"input width must be a multiple of 4 within 16..2048, "
                             f"got {self.width}")
        if not self.charset:
            raise UsageError("the model's charset is empty")
        if self.max_len < 1:
            raise UsageError(f"max_len must be >= 1, got {self.max_len}")

    @property
    def num_classes(self) -> int:
        return len(self.charset) + 1

    @property
    def is_ctc(self) -> bool:
        return self.name in CTC_MODELS

    @property
    def channels(self) -> tuple[int, ...]:
        return SIZES[self.size]["channels"]

    @property
    def hidden(self) -> int:
        return SIZES[self.size]["hidden"]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        return cls(**d)
