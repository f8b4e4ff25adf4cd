"""Training batches whose order is a function of (seed, epoch, step) alone.

That makes a resumed run see exactly the batches it would have seen, and lets each
distributed rank take its own share of every step without talking to the others.
"""

from __future__ import annotations

import collections
import multiprocessing as mp
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from captchagen.sampling import image_for, label_for
from captchagen.spec import CaptchaSpec
from crnn.data.images import load_gray, to_gray

Batch = tuple[Tensor, list[str]]  # (B, H, W) uint8 images and their labels


def epoch_order(n: int, seed: int, epoch: int) -> Tensor:
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))


class LazyImages:
    """Images decoded when a batch asks for them (for sets too large to cache)."""

    def __init__(self, paths: list[Path], height: int, width: int, threads: int = 4) -> None:
        self.paths, self.height, self.width = paths, height, width
        self.pool = ThreadPoolExecutor(threads)  # PIL decodes with the GIL released

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, idx: Tensor) -> Tensor:
        arrays = self.pool.map(lambda i: load_gray(self.paths[i], self.height, self.width),
                               idx.tolist())
        return torch.from_numpy(np.stack(list(arrays)))


class EpochBatches:
    """Shuffled batches of a fixed set; rank ``r`` of ``w`` takes every w-th slice."""

    def __init__(self, images: Tensor | LazyImages, labels: list[str], batch_size: int,
                 seed: int, rank: int = 0, world: int = 1) -> None:
        self.images, self.labels = images, labels
        self.batch_size, self.seed, self.rank, self.world = batch_size, seed, rank, world
        self.steps_per_epoch = max(1, len(labels) // (batch_size * world))

    def epoch(self, epoch: int, start: int = 0) -> Iterator[Batch]:
        order = epoch_order(len(self.labels), self.seed, epoch)
        b = self.batch_size
        for step in range(start, self.steps_per_epoch):
            k = step * self.world + self.rank
            idx = order[k * b : (k + 1) * b]
            if len(idx) == 0:  # fewer samples than one batch per rank: wrap around
                idx = order[:b]
            yield self.images[idx], [self.labels[i] for i in idx.tolist()]

    def close(self) -> None:
        if isinstance(self.images, LazyImages):
            self.images.pool.shutdown()


# On-the-fly data -----------------------------------------------------------------------

_render_args: tuple | None = None


def _render_batch(indices: list[int]) -> tuple[np.ndarray, list[str]]:
    assert _render_args is not None
    spec, seed, height, width = _render_args
    labels = [label_for(spec, seed, i) for i in indices]
    images = [to_gray(image_for(spec, seed, i, s), height, width) for i, s in zip(indices, labels)]
    return np.stack(images), labels


def _init_render(args: tuple) -> None:
    global _render_args
    _render_args = args


class GeneratedBatches:
    """Fresh captchas every step, drawn from a generator spec in worker processes.

    Sample ``i`` of the stream is captchagen image ``i`` of ``seed``: nominal epochs of
    ``epoch_size`` images follow each other without repeats.
    """

    def __init__(self, spec: CaptchaSpec, seed: int, batch_size: int, height: int, width: int,
                 epoch_size: int = 20_000, workers: int | None = None, rank: int = 0,
                 world: int = 1) -> None:
        self.spec, self.seed, self.batch_size = spec, seed, batch_size
        self.rank, self.world = rank, world
        self.steps_per_epoch = max(1, epoch_size // (batch_size * world))
        self.args = (spec, seed, height, width)
        self.workers = workers if workers is not None else max(1, (os.cpu_count() or 2) - 1)
        self.pool = None

    def _indices(self, epoch: int, step: int) -> list[int]:
        k = (epoch * self.steps_per_epoch + step) * self.world + self.rank
        return list(range(k * self.batch_size, (k + 1) * self.batch_size))

    def epoch(self, epoch: int, start: int = 0) -> Iterator[Batch]:
        todo = (self._indices(epoch, s) for s in range(start, self.steps_per_epoch))
        if self.workers == 0:
            _init_render(self.args)
            results: Iterator = map(_render_batch, todo)
        else:
            results = self._prefetch(todo)
        for images, labels in results:
            yield torch.from_numpy(images), labels

    def _prefetch(self, todo: Iterator[list[int]]) -> Iterator:
        """Render a few batches ahead, no more: on 2 cores, rendering that training never
        uses would slow the training down."""
        if self.pool is None:
            ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp
            self.pool = ctx.Pool(self.workers, _init_render, (self.args,))
        pending: collections.deque = collections.deque()
        for indices in todo:
            pending.append(self.pool.apply_async(_render_batch, (indices,)))
            if len(pending) > 2 * self.workers:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.terminate()
            self.pool = None
