"""``torch.utils.data`` datasets for one's own training loop.

* ``LabelledImages``: map-style, over a captchagen dataset or any folder of images named by
  label (``load_samples``): ``ds[i] -> (image, label)``.
* ``GeneratedCaptchas``: iterable, draws captchas on the fly from a ``CaptchaSpec`` and a
  seed. Sample ``i`` is image ``i`` of ``captchagen make`` with that spec and seed (the
  same pixels), and the indices are split between DataLoader workers and distributed
  ranks without overlap or gaps: slot ``s`` of ``S = world x workers`` takes ``start+s,
  start+s+S, ...``.

Images come as ``(C, H, W)`` float tensors in [0, 1] (C = 1 with ``gray``, else 3), resized
to ``size=(H, W)`` when given; a ``transform`` on the PIL image replaces that conversion.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from captchagen.sampling import image_for, label_for
from captchagen.spec import CaptchaSpec
from crnn.data.images import to_gray
from crnn.data.sources import Samples, load_samples
from plumbing.errors import UsageError

Transform = Callable[[Image.Image], Any]


def to_tensor(image: Image.Image, size: tuple[int, int] | None = None,
              gray: bool = True) -> torch.Tensor:
    """A PIL image as a ``(C, H, W)`` float tensor in [0, 1], optionally resized to (H, W)."""
    if gray:
        h, w = size or (image.height, image.width)
        return torch.from_numpy(to_gray(image, h, w).copy()).unsqueeze(0).float().div_(255)
    rgb = image.convert("RGB")
    if size is not None and rgb.size != (size[1], size[0]):
        rgb = rgb.resize((size[1], size[0]), Image.Resampling.BILINEAR)
    return torch.from_numpy(np.asarray(rgb).copy()).permute(2, 0, 1).float().div_(255)


def _convert(image: Image.Image, transform: Transform | None, size, gray: bool) -> Any:
    return transform(image) if transform is not None else to_tensor(image, size, gray)


class LabelledImages(Dataset):
    """A captchagen dataset or a folder of images named by label, indexable.

    >>> ds = LabelledImages("data/train", size=(32, 128))
    >>> x, label = ds[0]          # x: (1, 32, 128) float in [0, 1]
    """

    def __init__(self, source: str | Path | Samples, size: tuple[int, int] | None = None,
                 gray: bool = True, transform: Transform | None = None,
                 target_transform: Callable[[str], Any] | None = None) -> None:
        self.samples = source if isinstance(source, Samples) else load_samples(source)
        self.size, self.gray = size, gray
        self.transform, self.target_transform = transform, target_transform

    @property
    def charset(self) -> str:
        return self.samples.charset

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[Any, Any]:
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} images")
        with Image.open(self.samples.paths[i]) as im:
            im.load()
            x = _convert(im, self.transform, self.size, self.gray)
        label = self.samples.labels[i]
        return x, self.target_transform(label) if self.target_transform else label


def split_slot(rank: int | None = None, world: int | None = None, rotate: int = 0
               ) -> tuple[int, int]:
    """This reader's ``(slot, slots)``: its place among all ranks x DataLoader workers.

    ``rank``/``world`` default to the initialised process group (one process: 0 of 1).
    ``rotate`` shifts the workers' roles: a DataLoader asks worker 0 first, so a stream
    resumed at batch ``b`` gives worker 0 the role of worker ``b mod workers``.
    """
    if rank is None or world is None:
        dist = torch.distributed
        on = dist.is_available() and dist.is_initialized()
        rank = rank if rank is not None else (dist.get_rank() if on else 0)
        world = world if world is not None else (dist.get_world_size() if on else 1)
    if not 0 <= rank < world:
        raise UsageError(f"rank {rank} is not within 0..{world - 1}")
    info = get_worker_info()
    workers, worker = (info.num_workers, info.id) if info is not None else (1, 0)
    return rank * workers + (worker + rotate) % workers, world * workers


class GeneratedCaptchas(IterableDataset):
    """Captchas drawn on the fly: indices ``start .. stop-1`` (endless when ``stop`` is None).

    Yields ``(image, label)``, or ``(image, label, index)`` with ``with_index``. Every
    DataLoader worker of every rank draws its own share (see the module docstring); the
    union over all of them is exactly the index range, each index once.
    """

    def __init__(self, spec: CaptchaSpec, seed: int = 0, start: int = 0,
                 stop: int | None = None, size: tuple[int, int] | None = None,
                 gray: bool = True, transform: Transform | None = None,
                 rank: int | None = None, world: int | None = None,
                 with_index: bool = False) -> None:
        if start < 0 or (stop is not None and stop < start):
            raise UsageError(f"index range {start}..{stop} is empty or negative")
        self.spec, self.seed, self.start, self.stop = spec, seed, start, stop
        self.size, self.gray, self.transform = size, gray, transform
        self.rank, self.world, self.with_index = rank, world, with_index

    def indices(self) -> Iterator[int]:
        """The indices this reader (rank and DataLoader worker) draws, in order."""
        slot, slots = split_slot(self.rank, self.world)
        i = self.start + slot
        while self.stop is None or i < self.stop:
            yield i
            i += slots

    def __iter__(self) -> Iterator[tuple]:
        for i in self.indices():
            label = label_for(self.spec, self.seed, i)
            x = _convert(image_for(self.spec, self.seed, i, label), self.transform, self.size,
                         self.gray)
            yield (x, label, i) if self.with_index else (x, label)
