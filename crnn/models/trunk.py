"""The CRNN paper's VGG-style convolutional trunk."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def conv_bn(cin: int, cout: int, kernel=3, padding=1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, padding=padding, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


def conv_bn_pool(cin: int, cout: int, pool: tuple[int, int]) -> list[nn.Module]:
    """Conv, BN, max-pool, then ReLU: the same function as ReLU before the pool (max and
    ReLU commute, ties and gradients included), with the ReLU on a half or a quarter of the
    pixels; at the first layer's full resolution that is ~5% of a crnn-small training step
    on the CPU. The parameters keep conv_bn's names."""
    conv, bn, relu = conv_bn(cin, cout)
    return [ConvBNPool(conv, bn, nn.MaxPool2d(pool, pool)), relu]


# Patches of at most this many values (input channels x kernel area) have their batch
# statistics folded into the conv in training (the first layer: 1 x 3 x 3).
FOLD_MAX_PATCH = 16


class ConvBNPool(nn.Sequential):
    """``conv -> BN -> max-pool``, computed in training as one conv with folded weights.

    In training, BN normalises the conv's output y = w . p (p: the input patch under each
    output pixel) with its batch mean w . E[p] and variance w^T Cov(p) w. For a small patch
    (the first layer's 3 x 3 of one channel) those come from a 9 x 9 covariance of the
    input's patches, so BN's passes over the network's largest activation (forward and
    backward) become a conv with folded weights and a bias, and autograd differentiates the
    folded weights through the statistics: the same function and gradients, and the same
    running statistics. A crnn-small training step on the CPU is ~6-9% faster
    (``benchmarks/test_bench_train_step.py``). It applies when the input
    needs no gradient (the statistics treat it as a constant), as the model's input does;
    otherwise, and in evaluation, the layers run one after the other.
    """

    def forward(self, x: Tensor) -> Tensor:
        conv, bn, pool = self
        patch = conv.in_channels * conv.kernel_size[0] * conv.kernel_size[1]
        if not (bn.training and not x.requires_grad and patch <= FOLD_MAX_PATCH
                and conv.groups == 1 and isinstance(conv.padding, tuple)):
            return super().forward(x)
        weight, bias = _folded(conv, bn, x)
        return pool(F.conv2d(x, weight.to(x.dtype), bias.to(x.dtype), conv.stride,
                             conv.padding, conv.dilation))


def _folded(conv: nn.Conv2d, bn: nn.BatchNorm2d, x: Tensor) -> tuple[Tensor, Tensor]:
    """The conv's weight and bias with ``bn``'s batch normalisation folded in; updates
    ``bn``'s running statistics as its training forward would."""
    dt = torch.promote_types(x.dtype, torch.float32)  # float32 even under autocast
    with torch.no_grad():
        # (N, K, L) patches, K = C_in * kh * kw, exactly what the conv multiplies (padding
        # zeros included), as (N * L, K) rows.
        p = F.unfold(x.to(dt), conv.kernel_size, conv.dilation, conv.padding, conv.stride)
        p = p.transpose(1, 2).reshape(-1, p.shape[1])
        n = p.shape[0]
        mu = p.mean(0)
        p = p - mu  # centred first: no cancellation in E[pp] - E[p]E[p]
        cov = (p.T @ p) / n
    w = conv.weight.to(dt).reshape(conv.out_channels, -1)  # (C_out, K)
    mean = w @ mu
    if conv.bias is not None:
        mean = mean + conv.bias.to(dt)
    var = ((w @ cov) * w).sum(1)  # biased, as BN normalises with
    if bn.track_running_stats and bn.running_mean is not None:
        _update_running(bn, mean.detach(), var.detach(), n)
    scale = torch.rsqrt(var + bn.eps)
    if bn.affine:
        scale = scale * bn.weight.to(dt)
    shift = -mean * scale
    if bn.affine:
        shift = shift + bn.bias.to(dt)
    weight = conv.weight.to(dt) * scale.view(-1, 1, 1, 1)
    if conv.bias is not None:
        shift = shift + conv.bias.to(dt) * scale
    return weight.contiguous(memory_format=_memory_format(conv.weight)), shift


def _update_running(bn: nn.BatchNorm2d, mean: Tensor, var: Tensor, n: int) -> None:
    """BN's running-statistics update (``F.batch_norm`` in training): momentum, or the
    cumulative average when momentum is None; the running variance is the unbiased one."""
    assert bn.num_batches_tracked is not None
    with torch.no_grad():
        bn.num_batches_tracked.add_(1)
        factor = (1.0 / float(bn.num_batches_tracked) if bn.momentum is None
                  else bn.momentum)
        bn.running_mean.mul_(1 - factor).add_(mean.to(bn.running_mean.dtype), alpha=factor)
        unbiased = var * (n / max(1, n - 1))
        bn.running_var.mul_(1 - factor).add_(unbiased.to(bn.running_var.dtype), alpha=factor)


def _memory_format(t: Tensor) -> torch.memory_format:
    return (torch.channels_last if t.dim() == 4 and not t.is_contiguous()
            and t.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format)


class VGGTrunk(nn.Module):
    """Six 3x3 conv+BN+ReLU layers and four max-pools, then a conv that collapses the height.

    The first two pools halve both sides; the later two are the paper's asymmetric (2, 1)
    pools, which halve the height only, so the width stays long enough for CTC.
    ``(N, 1, H, W) -> (N, C, 1, W / 4)``, for H a multiple of 16.
    """

    def __init__(self, channels: tuple[int, ...], height: int) -> None:
        super().__init__()
        c1, c2, c3, c4, c5, c6 = channels
        self.features = nn.Sequential(
            *conv_bn_pool(1, c1, (2, 2)),
            *conv_bn_pool(c1, c2, (2, 2)),
            conv_bn(c2, c3), *conv_bn_pool(c3, c4, (2, 1)),
            conv_bn(c4, c5), *conv_bn_pool(c5, c6, (2, 1)),
            # The paper's last 2x2 conv, generalised: it spans what is left of the height.
            conv_bn(c6, c6, kernel=(height // 16, 3), padding=(0, 1)),
        )
        self.out_channels = c6

    def forward(self, x: Tensor) -> Tensor:
        return self.features(x)


def frames_for_width(width: int) -> int:
    """Output frames of the trunk for an input width (two halvings of the width)."""
    return width // 4


def init_weights(module: nn.Module) -> None:
    """He init for convs (ReLU nets), unit BN, small linear layers: leaves the CTC plateau
    sooner than PyTorch's defaults in our runs."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.Conv1d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
