"""``crnn predict``: texts and confidences for image files, batched."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path

from crnn.data.images import decode_images
from crnn.data.sources import IMAGE_SUFFIXES
from crnn.inference import Reader
from plumbing.errors import UsageError


def image_paths(inputs: Iterable[str | Path]) -> list[Path]:
    """Files as given, and the images inside given folders (sorted)."""
    paths: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            paths += sorted(p for p in item.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        elif item.is_file():
            paths.append(item)
        else:
            raise UsageError(f"no such image or folder: {item}")
    if not paths:
        raise UsageError("no images to read")
    return paths


def predict_bytes(reader: Reader, data: bytes, beam: int | None = None,
                  allowed: str | None = None, length_range: tuple[int, int] | None = None,
                  name: str = "-") -> dict:
    """``crnn predict -``: one image's encoded bytes (read from stdin) -> its reading."""
    if not data:
        raise UsageError("no image bytes on stdin; pipe one image in: crnn predict - < x.png")
    r = reader.read(data, beam=beam, allowed=allowed, length_range=length_range)
    return {"path": name, "text": r.text, "confidence": round(r.confidence, 6)}


def predict(reader: Reader, inputs: Iterable[str | Path], batch_size: int = 256,
            beam: int | None = None, allowed: str | None = None,
            length_range: tuple[int, int] | None = None, skip_bad: bool = False,
            progress: bool = False) -> list[dict]:
    """One ``{"path", "text", "confidence"}`` per readable image, in input order."""
    paths = image_paths(inputs)
    cfg = reader.config
    images, bad = decode_images(paths, cfg.height, cfg.width, skip_bad=skip_bad,
                                progress=progress)
    if bad:
        print(f"crnn: skipped {len(bad)} unreadable images", file=sys.stderr)
    skipped = set(bad)
    kept = [p for i, p in enumerate(paths) if i not in skipped]
    texts, conf = reader.read_batch(images, batch_size, beam, allowed, length_range, progress)
    return [{"path": str(p), "text": t, "confidence": round(float(c), 6)}
            for p, t, c in zip(kept, texts, conf)]
