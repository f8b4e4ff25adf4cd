"""Decoding images to the model's input size, in parallel, once."""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from plumbing.errors import UsageError

MEAN, STD = 0.5, 0.5  # grayscale in [0, 1] -> about [-1, 1]


def to_gray(image: Image.Image, height: int, width: int) -> np.ndarray:
    """Any PIL image -> (H, W) uint8, grayscale, resized (stretched) to the model's input."""
    if image.mode in ("RGBA", "LA", "P"):
        # Transparent pixels (the Kaggle set is RGBA) should read as white paper, not black.
        image = image.convert("RGBA")
        white = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, image)
    gray = image.convert("L")
    if gray.size != (width, height):
        gray = gray.resize((width, height), Image.Resampling.BILINEAR)
    return np.asarray(gray, dtype=np.uint8)


def load_gray(path: str | Path, height: int, width: int) -> np.ndarray:
    with Image.open(path) as im:
        im.load()
        return to_gray(im, height, width)


def _load_or_none(args: tuple[str, int, int]) -> np.ndarray | str:
    path, height, width = args
    try:
        return load_gray(path, height, width)
    except (OSError, SyntaxError, ValueError) as e:  # PIL's ways of saying "corrupt"
        return f"{type(e).__name__}: {e}"


def decode_images(
    paths: Sequence[Path], height: int, width: int, workers: int | None = None,
    skip_bad: bool = False, progress: bool = False,
) -> tuple[Tensor, list[int]]:
    """All images as one ``(N, H, W)`` uint8 tensor, plus the indices of unreadable ones.

    An unreadable image is an error naming it, unless ``skip_bad`` (then it is left out).
    ``progress``: a bar on stderr (when it is a terminal).
    """
    from crnn.progress import progress_bar

    workers = workers or os.cpu_count() or 1
    jobs = [(str(p), height, width) for p in paths]
    if workers > 1 and len(jobs) >= 512 and "fork" in mp.get_all_start_methods():
        with mp.get_context("fork").Pool(workers) as pool:
            results = list(progress_bar(len(jobs), "decoding images", "img", progress,
                                        pool.imap(_load_or_none, jobs, chunksize=64)))
    else:
        results = list(progress_bar(len(jobs), "decoding images", "img", progress,
                                    map(_load_or_none, jobs)))
    bad = [i for i, r in enumerate(results) if isinstance(r, str)]
    if bad and not skip_bad:
        i = bad[0]
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise UsageError(f"cannot read image {paths[i]}: {results[i]}{more}; "
                         "add --skip-bad to leave unreadable images out")
    good = [r for r in results if not isinstance(r, str)]
    if not good:
        raise UsageError("no readable images")
    return torch.from_numpy(np.stack(good)), bad


def fits_in_memory(n: int, height: int, width: int, share: float = 0.5) -> bool:
    """Whether ``n`` decoded images take at most ``share`` of the memory available now."""
    try:
        avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return True
    return n * height * width <= share * avail


def normalize(images: Tensor, device: torch.device | str = "cpu",
              channels_last: bool = False) -> Tensor:
    """``(N, H, W)`` uint8 -> ``(N, 1, H, W)`` float on ``device``, about [-1, 1]."""
    x = images.to(device, non_blocking=True).unsqueeze(1).float().div_(255).sub_(MEAN).div_(STD)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x
