"""Evaluation: accuracy metrics over a labelled set, and a grid of the worst mistakes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image
from torch import Tensor

from captchagen.preview import contact_sheet
from crnn import leakage
from crnn.checkpoint import read_checkpoint
from crnn.data.images import as_gray, decode_images
from crnn.data.sources import load_samples
from crnn.inference import Reader
from crnn.labels import check_labels
from crnn.metrics import score


@dataclass(frozen=True)
class Evaluation:
    metrics: dict  # n, sequence_accuracy, char_accuracy, ned, by_length, confusions, ...
    predictions: list[str]
    confidence: Tensor  # (N,)


def evaluate(reader: Reader, images: Tensor, labels: list[str], batch_size: int = 256,
             beam: int | None = None, allowed: str | None = None,
             length_range: tuple[int, int] | None = None, progress: bool = False
             ) -> Evaluation:
    """Read ``(N, H, W)`` uint8 images and score the texts against ``labels``."""
    preds, conf = reader.read_batch(images, batch_size, beam, allowed, length_range, progress)
    return Evaluation(score(labels, preds), preds, conf)


def worst_examples(ev: Evaluation, labels: list[str], k: int = 16) -> list[int]:
    """Indices of the wrong readings, the most confident first (confidently wrong is worst)."""
    wrong = [i for i, (t, p) in enumerate(zip(labels, ev.predictions)) if t != p]
    return sorted(wrong, key=lambda i: -float(ev.confidence[i]))[:k]


def worst_grid(paths: list[Path], labels: list[str], ev: Evaluation, k: int = 16
               ) -> Image.Image | None:
    return mistakes_sheet([(paths[i], f"{labels[i]} -> {ev.predictions[i] or '(empty)'} "
                                      f"{ev.confidence[i]:.2f}")
                           for i in worst_examples(ev, labels, k)])


def mistakes_sheet(items: list[tuple[Path, str]], columns: int = 4) -> Image.Image | None:
    """The images with their captions (``label -> reading``) on one sheet; None if none."""
    tiles = []
    for path, caption in items:
        with Image.open(path) as im:
            tile = as_gray(im).convert("RGB")  # any mode, its contrast
        tile.thumbnail((320, 160))  # a large scan stays a legible tile, the sheet bounded
        tiles.append((tile, caption))
    return contact_sheet(tiles, columns=min(columns, len(tiles))) if tiles else None


def evaluate_path(ckpt: str | Path, data: str | Path, device: str = "auto",
                  batch_size: int = 256, beam: int | None = None, skip_bad: bool = False,
                  allowed: str | None = None, length_range: tuple[int, int] | None = None,
                  grid: str | Path | None = None, allow_overlap: bool = False,
                  progress: bool = False) -> dict:
    """``crnn eval``: the checkpoint's metrics on a dataset or labelled folder."""
    reader = Reader.from_checkpoint(ckpt, device)
    cfg = reader.config
    samples = load_samples(data)
    overlap = check_leakage(ckpt, samples.paths, data, allow_overlap)
    check_labels(samples.labels, cfg.charset, f"labels of {data} (model charset {cfg.charset!r})")
    images, bad = decode_images(samples.paths, cfg.height, cfg.width, skip_bad=skip_bad,
                                progress=progress)
    skipped = set(bad)
    keep = [i for i in range(len(samples)) if i not in skipped]
    labels = [samples.labels[i] for i in keep]
    with torch.inference_mode():
        ev = evaluate(reader, images, labels, batch_size, beam, allowed, length_range,
                      progress)
    metrics = {**ev.metrics, "skipped_bad": len(bad), "model": cfg.name, "size": cfg.size,
               "decoder": cfg.head.decoder_name(beam),
               "train_overlap": overlap}
    if grid is not None:
        sheet = worst_grid([samples.paths[i] for i in keep], labels, ev)
        if sheet is not None:
            from captchagen.preview import save_image

            save_image(sheet, grid)
            metrics["worst_grid"] = str(grid)
    return metrics


def check_leakage(ckpt: str | Path, paths: list[Path], data: str | Path, allow: bool
                  ) -> int | None:
    """Images of ``data`` that the checkpoint was trained on (refused unless ``allow``);
    None when the checkpoint carries no training hashes (--generate, older checkpoints)."""
    train = leakage.from_checkpoint(read_checkpoint(ckpt), ckpt)
    if train is None:
        return None
    return leakage.guard(f"{data}", leakage.pixel_hashes(paths), train, allow)
