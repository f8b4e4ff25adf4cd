"""WebDataset tar shards: the layout for datasets too large for one folder or one machine.

Shard ``s`` (``shard-{s:06d}.tar``) holds images ``s*S .. (s+1)*S-1`` (``S`` = shard size),
one sample each: ``__key__`` = the zero-padded index, the image (``png``/``jpg``), its label
(``txt``) and ``json`` (index, label, font, font sizes). With ``--shard K/N`` a machine
writes only shards ``(K-1)*T//N .. K*T//N - 1`` of the ``T``: the names are global, so N
machines together write exactly the files one machine would, byte for byte (tar headers carry
a fixed mtime, owner and mode), and nothing needs merging. Each shard is written to a
temporary name and renamed when complete, so a killed run leaves only whole shards and
``--resume`` skips them. ``dataset.json`` describes the whole dataset (identical on every
machine) and lists every shard with its index range.
"""

from __future__ import annotations

import contextlib
import json
import math
import multiprocessing as mp
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from captchagen.dataset import DatasetJob, Run, Summary, encode, worker_count
from captchagen.manifest import INFO, read_info
from captchagen.outdir import is_empty, output_dir, remove_own_files
from captchagen.render import check_fit, render_with_info
from captchagen.sampling import label_for, rng_for
from plumbing.errors import EnvError, UsageError
from plumbing.files import write_json

LAYOUT = "wds"
SHARD_SIZE = 10_000
MTIME = 946684800  # 2000-01-01: a fixed tar timestamp, so shards are the same bytes anywhere


@dataclass(frozen=True)
class ShardPlan:
    """How the images of ``job`` fall into shards, and which of them this machine writes."""

    job: DatasetJob
    shard_size: int = SHARD_SIZE

    def __post_init__(self) -> None:
        if self.shard_size < 1:
            raise UsageError(f"--shard-size must be at least 1, got {self.shard_size}")
        if self.job.name_by != "index":
            raise UsageError("--name-by label names image files; shard samples are keyed by "
                             "index (the label is in each sample's .txt)")

    @property
    def count(self) -> int:
        return math.ceil(self.job.n / self.shard_size)

    def name(self, s: int) -> str:
        return f"shard-{s:0{max(6, len(str(self.count - 1)))}d}.tar"

    def indices(self, s: int) -> range:
        return range(s * self.shard_size, min(self.job.n, (s + 1) * self.shard_size))

    @property
    def mine(self) -> range:
        """The shard numbers this machine writes (all of them without ``--shard``)."""
        if self.job.shard is None:
            return range(self.count)
        k, machines = self.job.shard
        return range((k - 1) * self.count // machines, k * self.count // machines)

    @property
    def images_mine(self) -> int:
        return sum(len(self.indices(s)) for s in self.mine)

    def info(self) -> dict:
        """``dataset.json``: the whole dataset, the same on every machine."""
        info = self.job.without_shard().info(self.job.n, True)
        del info["complete"]  # whether other machines are done is not known here
        info.update(layout=LAYOUT, shard_size=self.shard_size, shards=[
            {"file": self.name(s), "start": self.indices(s).start, "stop": self.indices(s).stop}
            for s in range(self.count)])
        return info


def key_width(n: int) -> int:
    return max(6, len(str(n - 1)))


def write_shard(plan: ShardPlan, s: int, root: Path) -> int:
    """Render shard ``s`` into ``root`` (temporary name, renamed when complete)."""
    from webdataset import TarWriter

    job = plan.job
    path = root / plan.name(s)
    tmp = path.with_name(f".{path.name}.tmp")
    width = key_width(job.n)
    with open(tmp, "wb") as f, TarWriter(f, encoder=False, mtime=MTIME, user="captchagen",
                                          group="captchagen", mode=0o444) as tar:
        for i in plan.indices(s):
            label = label_for(job.spec, job.seed, i)
            r = render_with_info(label, job.spec, rng_for(job.seed, i, "image"))
            meta = {"index": i, "label": label, "font": Path(r.font).name,
                    "font_sizes": list(r.font_sizes)}
            tar.write({"__key__": f"{i:0{width}d}", job.extension: encode(r.image, job),
                       "txt": label.encode("utf-8"), "json": json.dumps(meta).encode()})
    os.replace(tmp, path)
    return len(plan.indices(s))


def _check_out(plan: ShardPlan, root: Path, resume: bool, overwrite: bool) -> list[int]:
    """Refuse what must be refused before writing; return the shards still to write.

    Only a captchagen dataset's own files are ever removed (``outdir.remove_own_files``):
    the shards its ``dataset.json`` lists, never another tool's files of the same names.
    """
    if is_empty(root):
        return list(plan.mine)
    same = False
    if (root / INFO).is_file():
        with contextlib.suppress(UsageError, EnvError):
            same = read_info(root) == json.loads(json.dumps(plan.info()))
    if not same:
        if not overwrite:
            raise UsageError(
                f"output {root} exists and is not empty (nor shards of the same dataset): "
                "choose another --out, or --overwrite to replace its shards")
        remove_own_files(root)
        return list(plan.mine)
    done = [s for s in plan.mine if (root / plan.name(s)).is_file()]
    if done and not (resume or overwrite):
        raise UsageError(f"output {root} already holds {len(done)} of this machine's shards: "
                         "add --resume to keep them or --overwrite to write them again")
    return [s for s in plan.mine if overwrite or s not in done]


_plan: ShardPlan | None = None
_root: Path | None = None


def _init(plan: ShardPlan, root: Path) -> None:
    global _plan, _root
    _plan, _root = plan, root


def _task(s: int) -> int:
    assert _plan is not None and _root is not None
    return write_shard(_plan, s, _root)


def _run(todo: list[int], plan: ShardPlan, root: Path, workers: int) -> Iterator[int]:
    if workers == 1 or len(todo) <= 1:
        for s in todo:
            yield write_shard(plan, s, root)
        return
    ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context()
    with ctx.Pool(min(workers, len(todo)), initializer=_init, initargs=(plan, root)) as pool:
        yield from pool.imap(_task, todo)


def write_shards(plan: ShardPlan, root: str | Path, workers: int | None = None,
                 resume: bool = False, overwrite: bool = False,
                 progress: Callable[[int, int], None] | None = None) -> Summary:
    """Write this machine's shards of ``plan`` into ``root`` (one worker per shard), holding
    the folder's lock."""
    root = Path(root)
    Run(workers=workers, resume=resume, overwrite=overwrite)
    check_fit(plan.job.spec)
    with output_dir(root):
        todo = _check_out(plan, root, resume, overwrite)
        workers = min(worker_count(workers, plan.images_mine), max(1, len(todo)))
        for s in plan.mine:
            (root / f".{plan.name(s)}.tmp").unlink(missing_ok=True)  # left by a killed run
        write_json(root / INFO, plan.info())
        total = plan.images_mine
        done = total - sum(len(plan.indices(s)) for s in todo)
        start, written = time.perf_counter(), 0
        if progress:
            progress(done, total)
        for count in _run(todo, plan, root, workers):
            written += count
            if progress:
                progress(done + written, total)
    return Summary(written, done + written, time.perf_counter() - start, workers, done)
