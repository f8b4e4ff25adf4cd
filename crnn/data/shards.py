"""Reading WebDataset tar shards: patterns, several datasets, streaming split across readers.

``--data`` names one source or several separated by commas (commas inside ``{..}`` belong
to brace patterns). Each is a directory or a shard pattern: ``data/shard-{000000..000009}.tar``
(brace ranges and lists, as webdataset and bash expand them), a glob ``data/*.tar``, or a
directory written by ``captchagen make --format wds`` (its ``dataset.json`` lists the shards).

Shards are streamed, never loaded whole. Every reader (rank x DataLoader worker, see
``split_slot``) reads its own shards, or, with fewer shards than readers, every
``slots``-th sample of each, so no sample is read by two readers.
"""

from __future__ import annotations

import glob
import io
import json
import os
import re
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from captchagen.manifest import INFO
from captchagen.spec import CaptchaSpec
from crnn.data.images import to_gray
from crnn.data.several import merged_charset, split_sources
from crnn.data.torchsets import split_slot
from plumbing.errors import EnvError, UsageError

IMAGE_KEYS = ("png", "jpg", "jpeg", "webp", "bmp")
LABEL_KEYS = ("txt", "label")


def is_shard_pattern(source: str) -> bool:
    p = Path(source)
    if p.is_dir():
        return _wds_info(p) is not None
    return re.search(r"\.(tar|tgz)(\.gz)?($|[}*?\]])", source) is not None


def _wds_info(directory: Path) -> dict | None:
    path = directory / INFO
    if not path.is_file():
        return None
    try:
        info = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise EnvError(f"{path} is not valid JSON: {e}") from None
    return info if isinstance(info, dict) and info.get("layout") == "wds" else None


def expand(source: str) -> list[Path]:
    """The shard files one source names, in order; missing ones are an error."""
    from braceexpand import braceexpand

    directory = Path(source)
    if directory.is_dir():
        info = _wds_info(directory)
        if info is None:
            raise UsageError(f"{source} is not a shard directory (made by captchagen make "
                             "--format wds): --data cannot mix shards and image folders")
        files = [directory / s["file"] for s in info.get("shards", [])
                 if isinstance(s, dict) and Path(str(s.get("file", ""))).name == s.get("file")]
    else:
        files = []
        for pattern in braceexpand(source):
            matches = sorted(glob.glob(pattern)) if any(c in pattern for c in "*?[") else [pattern]
            files += [Path(m) for m in matches]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise UsageError(f"shard {missing[0]}{more} named by --data {source!r} does not exist: "
                         "has every machine finished writing its shards?")
    if not files:
        raise UsageError(f"--data {source!r} names no shard files")
    return files


@dataclass(frozen=True)
class ShardSet:
    """Shard files with what their ``dataset.json`` files declare (if they have one)."""

    files: tuple[Path, ...]
    charset: str  # union of the declared charsets ('' if a shard declares none)
    specs: tuple[CaptchaSpec, ...]
    counts: tuple[int | None, ...]  # samples per shard, when declared

    def part(self, keep: slice) -> ShardSet:
        return ShardSet(self.files[keep], self.charset, self.specs, self.counts[keep])

    def size(self) -> int:
        """Samples in all shards (declared counts, else counted from the tar headers)."""
        return sum(c if c is not None else count_samples(f)
                   for f, c in zip(self.files, self.counts))


def open_shards(data: str) -> ShardSet:
    files: list[Path] = []
    for source in split_sources(data):
        files += expand(source)
    counts: list[int | None] = []
    infos: dict[Path, dict | None] = {}
    for f in files:
        if f.parent not in infos:
            infos[f.parent] = _wds_info(f.parent)
        info = infos[f.parent]
        entry = next((s for s in (info or {}).get("shards", []) if s.get("file") == f.name), None)
        counts.append(entry["stop"] - entry["start"] if entry else None)
    specs = [CaptchaSpec.from_dict(i["spec"]) for i in infos.values() if i and "spec" in i]
    charset = merged_charset([(i or {}).get("charset", "") for i in infos.values()])
    return ShardSet(tuple(files), charset, tuple(specs), tuple(counts))


def count_samples(path: Path) -> int:
    """Distinct keys in a tar shard, from its headers alone."""
    try:
        with tarfile.open(path, "r:*") as tar:
            return len({m.name.split(".", 1)[0] for m in tar if m.isfile()})
    except tarfile.TarError as e:
        raise EnvError(f"{path} is not a readable tar shard: {e}") from None


def iter_samples(path: Path) -> Iterator[dict[str, bytes]]:
    """The samples of one shard, streamed: ``{"__key__": ..., "png": ..., "txt": ...}``."""
    sample: dict = {}
    try:
        with tarfile.open(path, "r|*") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                key, _, ext = Path(member.name).name.partition(".")
                key = str(Path(member.name).parent / key)
                if sample and sample["__key__"] != key:
                    yield sample
                    sample = {}
                sample["__key__"] = key
                f = tar.extractfile(member)
                sample[ext.lower()] = f.read() if f is not None else b""
    except tarfile.TarError as e:
        raise EnvError(f"{path} is not a readable tar shard: {e}") from None
    if sample:
        yield sample


def decode_sample(sample: dict[str, bytes], height: int, width: int, where: Path
                  ) -> tuple[torch.Tensor, str]:
    """A shard sample -> ``(H, W)`` uint8 image and its label."""
    image = next((sample[k] for k in IMAGE_KEYS if k in sample), None)
    label = next((sample[k] for k in LABEL_KEYS if k in sample), None)
    if image is None or label is None:
        raise EnvError(f"sample {sample['__key__']} of {where} lacks an image "
                       f"({'/'.join(IMAGE_KEYS)}) or a label ({'/'.join(LABEL_KEYS)})")
    try:
        with Image.open(io.BytesIO(image)) as im:
            gray = to_gray(im, height, width)
    except (OSError, SyntaxError, ValueError) as e:
        raise EnvError(f"cannot decode sample {sample['__key__']} of {where}: {e}") from None
    return torch.from_numpy(gray.copy()), label.decode("utf-8").strip()


def shard_order(n: int, seed: int, epoch: int, rnd: int) -> list[int]:
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch * 1_009 + rnd)
    return torch.randperm(n, generator=g).tolist()


class ShardStream(IterableDataset):
    """Decoded ``(image, label)`` samples of shards, split between ranks and workers.

    The shard order is a seeded permutation per ``(epoch, round)``, identical on every
    reader; reader ``slot`` of ``slots`` then takes shards ``slot, slot+slots, ...`` (or, with
    fewer shards than readers, samples ``slot, slot+slots, ...`` of the whole sequence).
    ``rounds=None`` repeats endlessly (each round reshuffled), so readers with fewer
    samples never run dry while others still train. ``skip_batches`` resumes mid-epoch:
    reader ``w`` of a DataLoader skips the samples of its batches before that point.
    """

    def __init__(self, files: tuple[Path, ...], height: int, width: int, seed: int = 0,
                 epoch: int = 0, rounds: int | None = 1, shuffle: bool = True,
                 rank: int | None = None, world: int | None = None, batch_size: int = 1,
                 skip_batches: int = 0, with_key: bool = False) -> None:
        self.files, self.height, self.width = files, height, width
        self.seed, self.epoch, self.rounds, self.shuffle = seed, epoch, rounds, shuffle
        self.rank, self.world = rank, world
        self.batch_size, self.skip_batches, self.with_key = batch_size, skip_batches, with_key

    def _raw(self, slot: int, slots: int) -> Iterator[tuple[Path, dict]]:
        rnd = 0
        while self.rounds is None or rnd < self.rounds:
            order = (shard_order(len(self.files), self.seed, self.epoch, rnd) if self.shuffle
                     else list(range(len(self.files))))
            files = [self.files[i] for i in order]
            if len(files) >= slots:
                for f in files[slot::slots]:
                    yield from ((f, s) for s in iter_samples(f))
            else:
                j = 0
                for f in files:
                    for s in iter_samples(f):
                        if j % slots == slot:
                            yield f, s
                        j += 1
            rnd += 1

    def __iter__(self) -> Iterator[tuple]:
        """``(image, label)``, or ``(image, label, key)`` with ``with_key``."""
        slot, slots = split_slot(self.rank, self.world, rotate=self.skip_batches)
        info = get_worker_info()
        workers = info.num_workers if info is not None else 1
        role = slot % workers  # the worker whose batches this one continues
        skip = len(range(role, self.skip_batches, workers)) * self.batch_size
        for k, (f, sample) in enumerate(self._raw(slot, slots)):
            if k >= skip:
                x, label = decode_sample(sample, self.height, self.width, f)
                yield (x, label, sample["__key__"]) if self.with_key else (x, label)


def read_all(files: tuple[Path, ...], height: int, width: int) -> tuple[torch.Tensor, list[str]]:
    """Every sample of ``files`` in order, decoded (for validation sets, which are cached)."""
    pairs = list(ShardStream(files, height, width, shuffle=False, rank=0, world=1))
    if not pairs:
        raise UsageError(f"shards {files[0]} .. hold no samples")
    return torch.stack([x for x, _ in pairs]), [t for _, t in pairs]


def _collate(batch: list[tuple[torch.Tensor, str]]) -> tuple[torch.Tensor, list[str]]:
    return torch.stack([x for x, _ in batch]), [t for _, t in batch]


class ShardBatches:
    """Training batches streamed from shards, with the interface of ``EpochBatches``.

    A nominal epoch is ``size // (batch_size x world)`` steps, the same on every rank; each
    rank's stream repeats (reshuffled) rather than end early, so no rank waits on another.
    Batch ``k`` of an epoch is a function of (seed, epoch, k, rank, workers): a resumed
    run skips, without decoding, the samples it had already used.
    """

    def __init__(self, shards: ShardSet, batch_size: int, height: int, width: int, seed: int,
                 workers: int | None = None, rank: int = 0, world: int = 1) -> None:
        self.shards, self.batch_size = shards, batch_size
        self.height, self.width, self.seed, self.rank, self.world = height, width, seed, rank, world
        self.workers = workers if workers is not None else min(
            4, max(0, (os.cpu_count() or 1) // world - 1))
        self.steps_per_epoch = max(1, shards.size() // (batch_size * world))

    def epoch(self, epoch: int, start: int = 0) -> Iterator[tuple[torch.Tensor, list[str]]]:
        stream = ShardStream(self.shards.files, self.height, self.width, self.seed, epoch,
                             rounds=None, rank=self.rank, world=self.world,
                             batch_size=self.batch_size, skip_batches=start)
        loader = DataLoader(stream, batch_size=self.batch_size, num_workers=self.workers,
                            collate_fn=_collate)
        it = iter(loader)
        try:
            for _ in range(start, self.steps_per_epoch):
                yield next(it)
        finally:
            del it  # stops this epoch's worker processes

    def close(self) -> None:
        """Nothing outlives an epoch."""
