"""CNN+CTC: the CRNN without its recurrent layers (the ablation the paper calls optional)."""

from __future__ import annotations

from torch import Tensor, nn

from crnn.models.config import ModelConfig
from crnn.models.heads import CTC
from crnn.models.registry import register
from crnn.models.trunk import VGGTrunk, init_weights


class CNNCTC(nn.Module):
    """``(N, 1, H, W) -> (T, N, C)``: each frame is classified from its conv features alone."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.trunk = VGGTrunk(config.channels, config.height)
        self.classifier = nn.Linear(self.trunk.out_channels, config.num_classes)
        init_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        seq = self.trunk(x).squeeze(2).permute(2, 0, 1)  # (T, N, C)
        return self.classifier(seq).log_softmax(-1)


@register("cnn-ctc", CTC())
def cnn_ctc(config: ModelConfig) -> CNNCTC:
    return CNNCTC(config)
