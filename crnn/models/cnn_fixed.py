"""The pure-CNN baseline: one softmax head per character position, fixed input size."""

from __future__ import annotations

from torch import Tensor, nn

from crnn.models.config import ModelConfig
from crnn.models.heads import Fixed
from crnn.models.registry import register
from crnn.models.trunk import VGGTrunk, frames_for_width, init_weights


class CNNFixed(nn.Module):
    """``(N, 1, H, W) -> (N, L, C)`` log-probabilities for L = max_len positions.

    Class 0 of every head is "no character", so texts shorter than L are padded with it;
    texts longer than L cannot be read at all, and the input width is fixed (flattened).
    """

    def __init__(self, config: ModelConfig, features: int = 512) -> None:
        super().__init__()
        self.config = config
        self.trunk = VGGTrunk(config.channels, config.height)
        flat = self.trunk.out_channels * frames_for_width(config.width)
        # Batch norm after the wide dense layer: without it this model sat at chance level
        # for our whole 2-minute CPU budget; with it, it starts reading within the budget.
        self.embed = nn.Sequential(nn.Flatten(), nn.Linear(flat, features),
                                   nn.BatchNorm1d(features), nn.ReLU(inplace=True),
                                   nn.Dropout(0.1))
        self.heads = nn.Linear(features, config.max_len * config.num_classes)
        init_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        z = self.heads(self.embed(self.trunk(x)))
        return z.view(x.shape[0], self.config.max_len, self.config.num_classes).log_softmax(-1)


@register("cnn-fixed", Fixed())
def cnn_fixed(config: ModelConfig) -> CNNFixed:
    return CNNFixed(config)
