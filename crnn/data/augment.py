"""Light augmentation on whole batches (affine, blur, noise), for small real sets."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def augment(x: Tensor, gen: torch.Generator, strength: float = 1.0) -> Tensor:
    """Randomly transform a normalised batch ``(N, 1, H, W) -> (N, 1, H, W)``.

    Per image: rotation up to 4 degrees, shear up to 0.15, scale 0.92-1.08, shift up to 4%
    of the size; Gaussian blur on a third of the images; pixel noise on half. ``gen`` (on the
    CPU) makes it repeatable and resumable.
    """
    n = x.shape[0]

    def u(lo: float, hi: float) -> Tensor:
        return (torch.rand(n, generator=gen) * (hi - lo) + lo) * strength

    angle = u(-4, 4) * math.pi / 180
    shear, scale = u(-0.15, 0.15), 1 + u(-0.08, 0.08)
    tx, ty = u(-0.04, 0.04) * 2, u(-0.04, 0.04) * 2
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.stack([
        torch.stack([cos / scale, (-sin + shear) / scale, tx], 1),
        torch.stack([sin / scale, cos / scale, ty], 1),
    ], 1).to(x.device, x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    # Pixels moved in from outside read as background: the max of each image is paper-white.
    x = F.grid_sample(x - 1, grid, padding_mode="zeros", align_corners=False) + 1

    blur = (torch.rand(n, generator=gen) < 1 / 3).to(x.device)
    if blur.any():
        k = torch.tensor([1.0, 2.0, 1.0], device=x.device, dtype=x.dtype)
        kernel = (k[:, None] * k[None, :] / 16).view(1, 1, 3, 3)
        blurred = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), kernel)
        x = torch.where(blur.view(n, 1, 1, 1), blurred, x)

    noisy = (torch.rand(n, generator=gen) < 0.5).view(n, 1, 1, 1).to(x.device, x.dtype)
    noise = torch.randn(x.shape, generator=gen).to(x.device, x.dtype) * 0.08 * strength
    return x + noise * noisy
