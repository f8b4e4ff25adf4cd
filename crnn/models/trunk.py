"""The CRNN paper's VGG-style convolutional trunk."""

from __future__ import annotations

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
    return [nn.Sequential(conv, bn, nn.MaxPool2d(pool, pool)), relu]


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
