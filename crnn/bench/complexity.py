"""Model cost: parameters, multiply-accumulates per image, and size on disk."""

from __future__ import annotations

import torch
from torch import nn


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, height: int, width: int) -> int:
    """Multiply-accumulates of one forward pass on one ``(1, 1, H, W)`` image.

    Counts the layers that matter (convolutions, linear layers, LSTMs) with forward hooks;
    normalisation, activations and pooling are left out, as is usual.
    """
    total = 0

    def conv(m: nn.Conv2d, _inp, out) -> None:
        nonlocal total
        kh, kw = m.kernel_size
        total += out.numel() * (m.in_channels // m.groups) * kh * kw

    def linear(m: nn.Linear, inp, _out) -> None:
        nonlocal total
        total += inp[0].numel() // m.in_features * m.in_features * m.out_features

    def lstm(m: nn.LSTM, inp, _out) -> None:
        nonlocal total
        steps = inp[0].shape[0]  # (T, N, C), N = 1
        dirs = 2 if m.bidirectional else 1
        size_in = m.input_size
        for _ in range(m.num_layers):
            total += steps * dirs * 4 * m.hidden_size * (size_in + m.hidden_size)
            size_in = m.hidden_size * dirs

    hooks = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(linear))
        elif isinstance(m, nn.LSTM):
            hooks.append(m.register_forward_hook(lstm))
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 1, height, width))
    model.train(was_training)
    for h in hooks:
        h.remove()
    return total


def size_mb(model: nn.Module) -> float:
    """float32 weights and buffers, in MB (10^6 bytes)."""
    tensors = list(model.parameters()) + list(model.buffers())
    return sum(t.numel() * t.element_size() for t in tensors) / 1e6
