"""The first layer's batch norm folded into its conv in training (trunk.ConvBNPool): the
same outputs, gradients and running statistics as conv -> BN -> max-pool one by one."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from crnn.models import ModelConfig, create_model
from crnn.models.trunk import ConvBNPool


def _pair(bias: bool, momentum: float | None, dtype: torch.dtype, cin: int = 1):
    torch.manual_seed(0)
    layer = ConvBNPool(nn.Conv2d(cin, 8, 3, padding=1, bias=bias),
                       nn.BatchNorm2d(8, momentum=momentum), nn.MaxPool2d(2, 2)).to(dtype)
    with torch.no_grad():
        layer[1].weight.uniform_(0.5, 1.5)
        layer[1].bias.uniform_(-0.5, 0.5)
    plain = nn.Sequential(*copy.deepcopy(list(layer)))  # the unfolded reference
    return layer, plain


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-9), (torch.float32, 2e-4)])
@pytest.mark.parametrize("bias,momentum", [(False, 0.1), (True, 0.1), (False, None)])
def test_folded_training_matches_conv_bn_pool(dtype, tol, bias, momentum):
    layer, plain = _pair(bias, momentum, dtype)
    for step in range(3):
        x = torch.rand(4, 1, 12, 20, dtype=dtype) * 2 - 1 + 0.3 * step
        out, ref = layer(x), plain(x)
        torch.testing.assert_close(out, ref, rtol=tol, atol=tol)
        g = torch.randn_like(ref)
        grads = torch.autograd.grad((out * g).sum(), list(layer.parameters()))
        refs = torch.autograd.grad((ref * g).sum(), list(plain.parameters()))
        for a, b in zip(grads, refs):
            torch.testing.assert_close(a, b, rtol=tol * 10, atol=tol * 10)
        for name in ("running_mean", "running_var", "num_batches_tracked"):
            torch.testing.assert_close(getattr(layer[1], name), getattr(plain[1], name),
                                       rtol=tol, atol=tol)


def test_folded_path_is_taken_only_where_it_is_exact():
    """A folded forward never calls BN; an input that needs gradients, a wide patch and
    evaluation take the plain layers (BN is called)."""
    calls = []
    layer, _ = _pair(False, 0.1, torch.float32)
    layer[1].register_forward_hook(lambda *a: calls.append(1))
    layer(torch.rand(2, 1, 8, 8))
    assert calls == []
    layer(torch.rand(2, 1, 8, 8, requires_grad=True))
    assert calls == [1]
    layer.eval()
    layer(torch.rand(2, 1, 8, 8))
    assert calls == [1, 1]
    wide, _ = _pair(False, 0.1, torch.float32, cin=4)  # 4 x 3 x 3 values a patch
    wide[1].register_forward_hook(lambda *a: calls.append(2))
    wide(torch.rand(2, 4, 8, 8))
    assert calls == [1, 1, 2]


def test_eval_mode_is_bit_identical_and_state_dict_names_are_kept():
    layer, plain = _pair(False, 0.1, torch.float32)
    layer(torch.rand(4, 1, 8, 8))
    plain(torch.rand(4, 1, 8, 8))
    plain.load_state_dict(layer.state_dict())  # the same names: 0.weight, 1.running_mean...
    layer.eval(), plain.eval()
    x = torch.rand(3, 1, 8, 8)
    assert torch.equal(layer(x), plain(x))


def test_crnn_training_step_in_channels_last_and_cpu_autocast():
    """The model as trained: channels-last, and under CPU bf16 autocast the statistics stay
    float32 (the running ones too)."""
    model = create_model(ModelConfig(name="crnn", charset="abc", size="tiny"))
    model = model.to(memory_format=torch.channels_last).train()
    x = torch.rand(4, 1, 32, 128).contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x)
    out.float().sum().backward()
    first = model.trunk.features[0]
    assert isinstance(first, ConvBNPool)
    assert first[0].weight.grad is not None and torch.isfinite(first[0].weight.grad).all()
    assert first[1].running_var.dtype == torch.float32
    assert int(first[1].num_batches_tracked) == 1
