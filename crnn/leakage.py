"""Leakage checks: do validation or test images also appear in the training set?

Images are compared by a hash of their decoded pixels (size, mode and pixel bytes), not of
their files, so a PNG re-saved with another compression level, or copied under another name,
still counts as the same image. Two ``captchagen make`` runs with the same spec and seed give
the same images by design: this is the check that catches it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from plumbing.errors import UsageError


def pixel_hash(path: str | Path) -> int:
    """A 64-bit hash of an image's decoded RGB pixels (of the file's bytes if unreadable)."""
    h = hashlib.blake2b(digest_size=8)
    try:
        with Image.open(path) as im:
            rgb = im.convert("RGB")
            h.update(f"{rgb.width}x{rgb.height}".encode())
            h.update(rgb.tobytes())
    except (OSError, ValueError, Image.DecompressionBombError):
        h.update(b"raw\0" + Path(path).read_bytes())
    return int.from_bytes(h.digest(), "little")


def pixel_hashes(paths: Sequence[str | Path], workers: int = 4) -> np.ndarray:
    """``pixel_hash`` of every path, as a uint64 array in the order given."""
    with ThreadPoolExecutor(max(1, workers)) as pool:  # PIL decodes without the GIL
        return np.fromiter(pool.map(pixel_hash, paths, chunksize=256), dtype=np.uint64,
                           count=len(paths))


def overlap(hashes: np.ndarray, train: np.ndarray) -> int:
    """How many of ``hashes`` are images of the training set."""
    return int(np.isin(hashes, train).sum()) if len(hashes) and len(train) else 0


def guard(what: str, hashes: np.ndarray, train: np.ndarray, allow: bool) -> int:
    """The overlap count; refuse (UsageError) when there is any and ``allow`` is off."""
    n = overlap(hashes, train)
    if n and not allow:
        raise UsageError(
            f"{n} of the {len(hashes)} images of {what} are also training images (same "
            "decoded pixels): its accuracy would be inflated. Use a set made with another "
            "seed (captchagen make --seed), or --allow-overlap to go on (the overlap is "
            "counted in the results)")
    return n


def to_tensor(hashes: np.ndarray) -> torch.Tensor:
    """The sorted, unique hashes as a uint64 tensor (loads with ``weights_only=True``)."""
    return torch.from_numpy(np.unique(hashes).astype(np.uint64))


def from_checkpoint(state: dict, path: str | Path) -> np.ndarray | None:
    """The training images' hashes a checkpoint carries, validated; None if it has none."""
    t = state.get("train_hashes")
    if t is None:
        return None
    if not isinstance(t, torch.Tensor) or t.dtype != torch.uint64 or t.ndim != 1:
        raise UsageError(f"checkpoint {path}: train_hashes is not a 1-D uint64 tensor")
    return t.numpy()
