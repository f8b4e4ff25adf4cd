"""A trained model ready to read images: preprocessing, forward pass and decoding."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from crnn import decode
from crnn.checkpoint import load_model
from crnn.data.images import normalize
from crnn.labels import decode_fixed
from crnn.models import ModelConfig


def pick_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        from captchagen.errors import UsageError

        raise UsageError("--device cuda asked for, but torch sees no CUDA device")
    return torch.device(device)


@dataclass
class Reader:
    """``read(images)`` -> texts and confidences, for (N, H, W) uint8 images."""

    model: nn.Module
    config: ModelConfig
    device: torch.device
    amp: bool = False  # bf16/fp16 autocast, on CUDA
    channels_last: bool = False

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "auto", amp: bool = False) -> Reader:
        dev = pick_device(device)
        model, config, _ = load_model(path, dev)
        return cls(model, config, dev, amp=amp and dev.type == "cuda",
                   channels_last=dev.type == "cuda")

    @torch.inference_mode()
    def forward(self, images: Tensor) -> Tensor:
        """(N, H, W) uint8 -> (T, N, C) for CTC models, (N, L, C) for cnn-fixed; float32."""
        self.model.eval()
        x = normalize(images, self.device, self.channels_last)
        with torch.autocast(self.device.type, dtype=_amp_dtype(self.device), enabled=self.amp):
            out = self.model(x)
        return out.float()

    def decode(self, out: Tensor, beam: int | None = None, allowed: str | None = None,
               length_range: tuple[int, int] | None = None) -> tuple[list[str], Tensor]:
        if not self.config.is_ctc:
            return decode_fixed(out, self.config.charset)
        kw = {"allowed": allowed, "length_range": length_range}
        if beam and beam > 1:
            d = decode.beam_decode(out, self.config.charset, width=beam, **kw)
        else:
            d = decode.greedy_decode(out, self.config.charset, **kw)
        return d.texts, d.confidence.float().cpu()

    def read(self, images: Tensor, batch_size: int = 256, beam: int | None = None,
             allowed: str | None = None, length_range: tuple[int, int] | None = None,
             ) -> tuple[list[str], Tensor]:
        texts: list[str] = []
        confs: list[Tensor] = []
        for i in range(0, len(images), batch_size):
            t, c = self.decode(self.forward(images[i : i + batch_size]), beam, allowed,
                               length_range)
            texts += t
            confs.append(c)
        return texts, torch.cat(confs) if confs else torch.zeros(0)


def _amp_dtype(device: torch.device) -> torch.dtype:
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16

