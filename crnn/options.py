"""Options of ``crnn eval``, ``predict`` and ``export`` as validated frozen dataclasses (the
CLI's options are generated from them), and the checks that tie them to a model and to the
command's inputs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from captchagen.spec import parse_length
from crnn.models import ModelConfig
from plumbing.config import check_fields, knob
from plumbing.errors import UsageError

DEVICES = ("auto", "cpu", "cuda")
EXPORT_FORMATS = ("onnx", "torchscript", "ddddocr")


@dataclass(frozen=True)
class DecodeOptions:
    """How ``crnn eval`` and ``crnn predict`` read images."""

    beam: int | None = knob(None, "Beam width (default: greedy).", lo=1, hi=1024)
    allowed: str | None = knob(None, "Only these symbols may be read.")
    length: str | None = knob(None, "Read texts of length N or A-B only.")
    device: str = knob("auto", "Where to run the model.", choices=DEVICES)
    batch_size: int = knob(256, "Images per forward pass.", lo=1, hi=65536)
    skip_bad: bool = knob(False, "Leave unreadable images out (and count them).")

    def __post_init__(self) -> None:
        check_fields(self)
        if self.allowed is not None and not self.allowed:
            raise UsageError("--allowed is empty: give the symbols that may be read")
        self.length_range  # noqa: B018 -- parsed once here, so a bad range fails at the edge

    @property
    def length_range(self) -> tuple[int, int] | None:
        return parse_length(self.length) if self.length else None

    def check_model(self, config: ModelConfig, ckpt: str | Path) -> None:
        """Refuse options that the model of ``ckpt`` cannot honour."""
        if self.allowed is not None:
            outside = "".join(sorted(set(self.allowed) - set(config.charset)))
            if outside:
                raise UsageError(f"--allowed has symbols outside the charset of {ckpt}: "
                                 f"{outside!r} (its charset is {config.charset!r})")
        span = self.length_range
        if span is None:
            return
        longest = config.head.longest(config, len(set(self.allowed or config.charset)))
        if span[0] > longest:
            raise UsageError(f"--length {self.length}: the model of {ckpt} reads at most "
                             f"{longest} symbols")


@dataclass(frozen=True)
class ExportOptions:
    """What ``crnn export`` writes."""

    fmt: str = knob("onnx", "Output format (ddddocr: an ONNX graph taking ddddocr's input, "
                    "plus OUT.charsets.json).", choices=EXPORT_FORMATS, flag="--format")
    out: str | None = knob(None, "Output file (default: next to the checkpoint).", short="-o")
    ddddocr_height: int = knob(64, "With --format ddddocr: the height ddddocr resizes images "
                               "to first; the captchas' own height makes ddddocr read exactly "
                               "what crnn reads.", lo=8, hi=4096)

    def __post_init__(self) -> None:
        check_fields(self)
