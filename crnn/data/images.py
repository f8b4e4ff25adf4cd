"""Decoding images to the model's input size, in parallel, once."""

from __future__ import annotations

import io
import multiprocessing as mp
import os
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from plumbing.errors import UsageError

MEAN, STD = 0.5, 0.5  # grayscale in [0, 1] -> about [-1, 1]


# Captchas are small: a header announcing more than this is refused before decoding.
MAX_PIXELS = 50_000_000
MAX_SIDE = 65_535


class OversizedImage(ValueError):
    """An image whose header announces more pixels than ``MAX_PIXELS``."""


# Nominal full scales of the wide modes, the narrowest first: an "I" image made from an
# 8-bit one holds 0..255, a 16-bit PNG 0..65535; float images hold 0..1 or 0..255.
_FULL_SCALES = {"I;16": (65535.0,), "I": (255.0, 65535.0), "F": (1.0, 255.0)}


def _scaled(values: np.ndarray, full_scales: tuple[float, ...]) -> np.ndarray:
    """Wide samples -> uint8, keeping their contrast: the first nominal range that holds
    them, else their own min..max."""
    v = values.astype(np.float64)
    finite = v[np.isfinite(v)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    full = next((f for f in full_scales if lo >= 0 and hi <= f), None)
    offset, scale = (0.0, 255.0 / full) if full else (lo, 255.0 / (hi - lo) if hi > lo else 1.0)
    out = np.nan_to_num((v - offset) * scale, nan=255.0, posinf=255.0, neginf=0.0)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def as_gray(image: Image.Image) -> Image.Image:
    """Any Pillow mode -> "L" with its real contrast (Pillow's own ``convert("L")`` clips
    16- and 32-bit samples to 255, reading a 16-bit PNG as all white)."""
    mode = image.mode
    wide = "I;16" if mode.startswith("I;16") else mode
    if wide in _FULL_SCALES:
        return Image.fromarray(_scaled(np.asarray(image), _FULL_SCALES[wide]), "L")
    if "A" in mode or "a" in mode or (mode == "P" and "transparency" in image.info):
        # Transparent pixels (the Kaggle set is RGBA) should read as white paper, not black.
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("L")
    if mode in ("L", "1", "P", "RGB"):
        return image.convert("L")
    return image.convert("RGB").convert("L")  # CMYK, YCbCr, LAB, HSV: through RGB


def to_gray(image: Image.Image, height: int, width: int) -> np.ndarray:
    """Any PIL image -> (H, W) uint8, grayscale, resized (stretched) to the model's input."""
    gray = as_gray(image)
    if gray.size != (width, height):
        gray = gray.resize((width, height), Image.Resampling.BILINEAR)
    return np.asarray(gray, dtype=np.uint8)


def check_size(image: Image.Image) -> None:
    """Refuse, from its header alone, an image too large to be a captcha."""
    w, h = image.size
    if w * h > MAX_PIXELS or max(w, h) > MAX_SIDE:
        raise OversizedImage(f"{w}x{h} pixels is more than the {MAX_PIXELS:,} a captcha "
                             "may have")


@contextmanager
def _opened(source: str | Path | io.BytesIO) -> Iterator[Image.Image]:
    """A file or bytes opened by Pillow, once :func:`check_size` has passed its header."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # check_size decides
        im = Image.open(source)
    with im:
        check_size(im)  # before load(): the header is read, the pixels are not
        yield im


def gray_from_bytes(blob: bytes, height: int, width: int) -> np.ndarray:
    """An encoded image -> (H, W) uint8, the pixels :func:`to_gray` gives.

    The common PNGs take the fast path of :mod:`crnn.data.png` (the same pixels); the rest
    Pillow, which also refuses the corrupt, after :func:`check_size` has refused the
    oversized from the header.
    """
    from crnn.data.png import png_gray

    fast = png_gray(blob, height, width)
    if fast is not None:
        return fast
    with _opened(io.BytesIO(blob)) as im:
        return to_gray(im, height, width)


def gray_batch(blobs: Sequence[bytes], height: int, width: int) -> np.ndarray:
    """Encoded images -> (N, H, W) uint8, :func:`gray_from_bytes` of each, serially."""
    return np.stack([gray_from_bytes(b, height, width) for b in blobs])


# A file up to this size is read whole and decoded from its bytes (the PNG fast path needs
# them); a larger one is left to Pillow, which reads no more than its header to refuse it.
READ_WHOLE_BYTES = 16 << 20


def load_gray(path: str | Path, height: int, width: int) -> np.ndarray:
    """An image file -> (H, W) uint8: :func:`gray_from_bytes` of its bytes, read once."""
    with open(path, "rb") as f:
        blob = f.read(READ_WHOLE_BYTES + 1)
    if len(blob) <= READ_WHOLE_BYTES:
        return gray_from_bytes(blob, height, width)
    with _opened(path) as im:
        im.load()
        return to_gray(im, height, width)


def _load_or_none(args: tuple[str, int, int]) -> np.ndarray | str:
    path, height, width = args
    try:
        return load_gray(path, height, width)
    # PIL's ways of saying "corrupt" or "too big"; a DecompressionBombError is neither.
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
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

    jobs = [(str(p), height, width) for p in paths]
    # Never more processes than chunks of work (--workers 1000 on 10 images forks none).
    workers = min(os.cpu_count() or 1 if workers is None else max(1, workers),
                  -(-len(jobs) // 64))
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
