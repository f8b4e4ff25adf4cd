"""CRNN (Shi, Bai, Yao 2015): conv trunk, map-to-sequence, 2-layer BiLSTM, per-frame classes."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from crnn.models.config import ModelConfig
from crnn.models.heads import CTC
from crnn.models.registry import register
from crnn.models.trunk import VGGTrunk, init_weights


class CRNN(nn.Module):
    """``(N, 1, H, W) -> (T, N, C)`` log-probabilities, T = W / 4, C = len(charset) + 1.

    With ``config.rnn_skip`` (the default) a linear projection of the conv features is added
    to the BiLSTM's output. The paper has no such path; we add it because, with it, CTC
    training leaves the all-blank plateau in a fraction of the steps (the LSTM starts as a
    refinement of a CNN+CTC reader instead of a barrier in front of the classifier).
    ``rnn_skip=False`` is the paper's design.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.trunk = VGGTrunk(config.channels, config.height)
        width = 2 * config.hidden
        self.rnn = nn.LSTM(self.trunk.out_channels, config.hidden, num_layers=2,
                           bidirectional=True)
        self.skip = nn.Linear(self.trunk.out_channels, width) if config.rnn_skip else None
        self.classifier = nn.Linear(width, config.num_classes)
        init_weights(self)
        init_lstm(self.rnn)

    def forward(self, x: Tensor) -> Tensor:
        f = self.trunk(x)  # (N, C, 1, T)
        seq = f.squeeze(2).permute(2, 0, 1)  # map-to-sequence: (T, N, C)
        # The LSTM runs in float32 even inside autocast: under bf16 autocast PyTorch's cuDNN
        # RNN wrapper casts to fp16 with no loss scaling, and recurrences over T steps are
        # what low precision hurts most. The convolutions keep their autocast speed.
        with torch.autocast(seq.device.type, enabled=False):
            out, _ = self.rnn(seq.float())  # (T, N, 2 * hidden), float32
        if self.skip is not None:
            out = out + self.skip(seq)
        return self.classifier(out).log_softmax(-1)


def init_lstm(lstm: nn.LSTM) -> None:
    """Orthogonal recurrent weights per gate and a positive forget-gate bias: gradients
    survive the 2 x T steps from the start."""
    for name, p in lstm.named_parameters():
        if name.startswith("weight_hh"):
            for gate in p.data.chunk(4, 0):
                nn.init.orthogonal_(gate)
        elif name.startswith("weight_ih"):
            nn.init.xavier_uniform_(p.data)
        else:  # biases, gate order i, f, g, o; the two bias vectors add up
            p.data.zero_()
            p.data.chunk(4, 0)[1].fill_(0.5)


@register("crnn", CTC())
def crnn(config: ModelConfig) -> CRNN:
    return CRNN(config)
