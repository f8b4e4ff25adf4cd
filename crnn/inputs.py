"""What ``Reader.read`` accepts, turned into the model's input: ``(N, H, W)`` uint8 grayscale.

One image is a path (``str`` or ``Path``), encoded bytes (PNG, JPEG, ...), a PIL image, a
numpy array ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` (RGB) or ``(H, W, 4)`` (RGBA; transparent
reads as white), or a 2-D torch tensor ``(H, W)``. A batch is a list or tuple of these (mixed
kinds are fine) or a torch tensor ``(N, H, W)`` or ``(N, C, H, W)`` with C in 1, 3, 4. Arrays
and tensors are uint8 (0-255) or float in [0, 1]. Every image goes through the training
preprocessing (``crnn.data.images.to_gray``: grayscale, transparent as white, bilinear
stretch to the model's height and width), so a reading matches what training saw.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from crnn.data.decode_bytes import gray_from_bytes
from crnn.data.images import decode_images, to_gray
from plumbing.errors import UsageError

ImageLike = str | Path | bytes | bytearray | memoryview | Image.Image | np.ndarray | Tensor


def is_batch(x: Any) -> bool:
    """Whether ``x`` holds several images (a list/tuple, or a 3-D/4-D torch tensor)."""
    return isinstance(x, list | tuple) or (isinstance(x, Tensor) and x.dim() in (3, 4))


def to_batch(x: ImageLike | Sequence[ImageLike], height: int, width: int) -> Tensor:
    """One image or a batch (see the module's docstring) -> ``(N, H, W)`` uint8."""
    if isinstance(x, Tensor) and x.dim() in (3, 4):
        if x.dtype == torch.uint8 and x.dim() == 3 and tuple(x.shape[1:]) == (height, width):
            return x.cpu()  # already the model's input: to_gray would change nothing
        if x.dim() == 4:
            x = x.permute(0, 2, 3, 1)  # (N, C, H, W) -> (N, H, W, C), numpy's layout
        items: Sequence[Any] = list(x.cpu().numpy())
    elif is_batch(x):
        items = x
    else:
        items = [x]
    if not items:
        return torch.zeros(0, height, width, dtype=torch.uint8)
    if all(isinstance(i, str | Path) for i in items):
        return decode_images([Path(i) for i in items], height, width)[0]
    return torch.from_numpy(np.stack([_gray(i, k, height, width) for k, i in enumerate(items)]))


def _gray(item: Any, k: int, height: int, width: int) -> np.ndarray:
    if isinstance(item, Image.Image):
        return to_gray(item, height, width)
    if isinstance(item, str | Path):
        return decode_images([Path(item)], height, width)[0][0].numpy()
    if isinstance(item, bytes | bytearray | memoryview):
        try:
            return gray_from_bytes(bytes(item), height, width)
        except (OSError, SyntaxError, ValueError) as e:
            raise UsageError(f"image {k}: cannot decode {len(item)} bytes as an image ({e})"
                             ) from None
    if isinstance(item, Tensor):
        item = item.cpu().numpy()
    if isinstance(item, np.ndarray):
        return to_gray(_array_image(item, k), height, width)
    raise UsageError(f"image {k}: cannot read a {type(item).__name__}; give a path, bytes, "
                     "a PIL image, a numpy array or a torch tensor")


def _array_image(a: np.ndarray, k: int) -> Image.Image:
    """(H, W) / (H, W, C) uint8, or float in [0, 1] -> a PIL image (L, RGB or RGBA)."""
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (3, 4))):
        raise UsageError(f"image {k}: array of shape {a.shape} is not (H, W), (H, W, 1), "
                         "(H, W, 3) or (H, W, 4); give a list for several images")
    if a.dtype.kind == "f":
        if a.size and (np.nanmin(a) < 0 or np.nanmax(a) > 1 or np.isnan(a).any()):
            raise UsageError(f"image {k}: float pixels must lie in [0, 1]; "
                             "pass uint8 for 0-255 values")
        a = np.rint(a * 255).astype(np.uint8)
    elif a.dtype != np.uint8:
        raise UsageError(f"image {k}: pixels of type {a.dtype} are not uint8 or float in [0, 1]")
    return Image.fromarray(np.ascontiguousarray(a))  # L, RGB or RGBA from the shape
