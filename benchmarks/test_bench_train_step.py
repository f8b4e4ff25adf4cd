"""One crnn-small training step at batch 64 on the CPU, the same function three ways, side by
side: the trunk as built (max-pool, then ReLU; the first layer's batch norm folded into its
conv), with the first layer unfolded (conv, BN and pool one after the other), and in the
paper's order (ReLU, then max-pool; unfolded).

    pytest benchmarks/test_bench_train_step.py --benchmark-only --benchmark-group-by=func

The ratios of the rows are the speed-ups that crnn/models/trunk.py's ``conv_bn_pool`` and
``ConvBNPool`` claim.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from crnn.models import ModelConfig, create_model

CHARSET = "0123456789abcdefghijklmnopqrstuvwxyz"
BATCH = 64


def _unfolded(model: nn.Module) -> nn.Module:
    """The first layer as plain (conv, bn, pool): BN computed over its output."""
    model.trunk.features[0] = nn.Sequential(*model.trunk.features[0])
    return model


def _relu_before_pool(model: nn.Module) -> nn.Module:
    """The same modules in the paper's order: (conv, bn, pool), relu -> (conv, bn, relu), pool."""
    layers = list(_unfolded(model).trunk.features)
    for i, layer in enumerate(layers):
        if isinstance(layer, nn.Sequential) and isinstance(layer[-1], nn.MaxPool2d):
            conv, bn, pool = layer
            layers[i], layers[i + 1] = nn.Sequential(conv, bn, layers[i + 1]), pool
    model.trunk.features = nn.Sequential(*layers)
    return model


@pytest.mark.parametrize("order", ["built", "first layer unfolded", "relu then pool (paper)"])
def test_train_step(benchmark, order):
    torch.manual_seed(0)
    model = create_model(ModelConfig(name="crnn", charset=CHARSET, size="small"))
    if order.startswith("relu"):
        model = _relu_before_pool(model)
    elif order.startswith("first"):
        model = _unfolded(model)
    model = model.to(memory_format=torch.channels_last).train()
    optimizer = torch.optim.AdamW(model.parameters(), 3e-3)
    x = torch.randn(BATCH, 1, 32, 128).contiguous(memory_format=torch.channels_last)
    targets = torch.randint(1, len(CHARSET) + 1, (BATCH * 5,))
    frames, lengths = torch.full((BATCH,), 32), torch.full((BATCH,), 5)
    ctc = nn.CTCLoss(zero_infinity=True)

    def step() -> None:
        loss = ctc(model(x), targets, frames, lengths)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    benchmark.pedantic(step, warmup_rounds=3, rounds=15)
