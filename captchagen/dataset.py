"""Writing a labelled dataset: parallel, streamed, resumable and shardable.

Image ``i`` depends only on ``(spec, seed, i)`` (see ``sampling``), so any worker count, any
split into shards and any resume point give the same bytes. Workers draw, encode and write
images (each to a temporary name, then renamed); the parent appends their manifest rows in
index order only after the files are in place, so a killed run never has a row for an image
that is not fully on disk.
"""

from __future__ import annotations

import collections
import io
import json
import multiprocessing as mp
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from captchagen import __version__
from captchagen.fonts import file_sha256, resolve_fonts
from captchagen.manifest import (
    IMAGES,
    INFO,
    MANIFEST,
    format_rows,
    header_line,
    read_rows,
    trim_partial_row,
)
from captchagen.render import check_fit, render_with_info
from captchagen.sampling import label_for, rng_for
from captchagen.spec import CaptchaSpec
from plumbing.errors import UsageError
from plumbing.files import atomic_write, write_json

FORMATS = {"png": "PNG", "jpg": "JPEG"}
CHUNK = 32  # images per worker task: large enough to amortise the IPC, small for smooth progress
UNSAFE_IN_NAMES = set('/\\:*?"<>|_.')  # '_' would be mistaken for the duplicate suffix


@dataclass(frozen=True)
class DatasetJob:
    """A whole dataset: the look of each image plus how many, which seed, and the files."""

    spec: CaptchaSpec
    n: int
    seed: int = 0
    image_format: str = "png"
    png_level: int = 1  # zlib level; 1 costs a fraction of the default 6 for about the same size
    jpeg_quality: int = 90
    name_by: str = "index"
    shard: tuple[int, int] | None = None  # (K, N): write only part K of N

    def __post_init__(self) -> None:
        if self.n < 1:
            raise UsageError(f"--n must be at least 1, got {self.n}")
        if self.image_format not in FORMATS:
            raise UsageError(
                f"format must be one of {', '.join(FORMATS)}, got {self.image_format!r}"
            )
        if not 0 <= self.png_level <= 9 or not 1 <= self.jpeg_quality <= 100:
            raise UsageError("png level must be within 0..9 and jpeg quality within 1..100")
        if self.name_by not in ("index", "label"):
            raise UsageError(f"--name-by must be index or label, got {self.name_by!r}")
        if self.name_by == "label":
            bad = sorted(UNSAFE_IN_NAMES & set(self.spec.charset))
            if bad:
                raise UsageError(
                    f"--name-by label cannot name files with the symbols {''.join(bad)!r}"
                )
        if self.shard is not None:
            k, count = self.shard
            if not 1 <= k <= count:
                raise UsageError(f"--shard must be K/N with 1 <= K <= N, got {k}/{count}")

    @property
    def extension(self) -> str:
        return self.image_format

    @property
    def index_range(self) -> range:
        """The indices this job writes: all of them, or its shard's contiguous block."""
        if self.shard is None:
            return range(self.n)
        k, count = self.shard
        return range((k - 1) * self.n // count, k * self.n // count)

    def without_shard(self) -> DatasetJob:
        return DatasetJob(**{**self.__dict__, "shard": None})

    def info(self, count: int, complete: bool) -> dict:
        """The ``dataset.json`` content: everything needed to read, check or rebuild the data."""
        fonts = self.spec.fonts or resolve_fonts(())
        r = self.index_range
        return {
            "tool": "captchagen",
            "version": __version__,
            "charset": self.spec.charset,
            "n": self.n,
            "seed": self.seed,
            "count": count,
            "complete": complete,
            "format": self.image_format,
            "png_level": self.png_level,
            "jpeg_quality": self.jpeg_quality,
            "name_by": self.name_by,
            "shard": None if self.shard is None else
            {"k": self.shard[0], "of": self.shard[1], "start": r.start, "stop": r.stop},
            "spec": asdict(self.spec),
            "font_files": [{"name": Path(f).name, "sha256": file_sha256(f)} for f in fonts],
        }


@dataclass(frozen=True)
class Summary:
    written: int  # images drawn by this call
    total: int  # rows in the manifest now
    seconds: float
    workers: int
    resumed_from: int


def names(job: DatasetJob) -> Iterator[tuple[int, str, str]]:
    """``(index, label, file)`` for the job's indices, in order.

    Label naming counts duplicates over the whole dataset (case-insensitively, for file
    systems that fold case), so shards agree with a single-machine run; that needs the labels
    before the shard, which are cheap to draw.
    """
    r = job.index_range
    if job.name_by == "index":
        width = max(6, len(str(job.n - 1)))
        for i in r:
            yield i, label_for(job.spec, job.seed, i), f"{IMAGES}/{i:0{width}d}.{job.extension}"
        return
    seen: collections.Counter[str] = collections.Counter()
    for i in range(r.stop):
        label = label_for(job.spec, job.seed, i)
        key = label.casefold()
        stem = label if seen[key] == 0 else f"{label}_{seen[key]}"
        seen[key] += 1
        if i >= r.start:
            yield i, label, f"{IMAGES}/{stem}.{job.extension}"


def encode(image, job: DatasetJob) -> bytes:
    buf = io.BytesIO()
    if job.image_format == "png":
        image.save(buf, format="PNG", compress_level=job.png_level)
    else:
        image.save(buf, format="JPEG", quality=job.jpeg_quality)
    return buf.getvalue()


# Worker side ---------------------------------------------------------------------------

_worker_job: DatasetJob | None = None
_worker_root: Path | None = None


def _init_worker(job: DatasetJob, root: Path) -> None:
    global _worker_job, _worker_root
    _worker_job, _worker_root = job, root


def _draw_chunk(items: list[tuple[int, str, str]]) -> list[tuple]:
    job, root = _worker_job, _worker_root
    assert job is not None and root is not None
    rows = []
    for index, label, rel in items:
        r = render_with_info(label, job.spec, rng_for(job.seed, index, "image"))
        path = root / rel
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(encode(r.image, job))
        os.replace(tmp, path)
        font = Path(r.font).name
        rows.append((index, rel, label, len(label), font, " ".join(map(str, r.font_sizes))))
    return rows


# Parent side ---------------------------------------------------------------------------


def prepare(job: DatasetJob, root: Path, resume: bool, overwrite: bool) -> int:
    """Check the output directory and return how many manifest rows are already done.

    Everything that can be refused is refused here, before a file is touched.
    """
    check_fit(job.spec)
    exists = root.exists() and any(root.iterdir())
    if root.exists() and not root.is_dir():
        raise UsageError(f"output {root} exists and is not a directory")
    if exists and not (resume or overwrite):
        raise UsageError(f"output {root} exists and is not empty: add --resume to continue it "
                         "or --overwrite to replace it")
    if exists and overwrite:
        _remove_dataset(root)
        return 0
    if not exists:
        return 0
    info_path = root / INFO
    if not info_path.is_file():
        raise UsageError(f"cannot resume {root}: it has no {INFO} (not made by captchagen)")
    old = json.loads(info_path.read_text())
    new = json.loads(json.dumps(job.info(0, False)))  # tuples become lists, as on disk
    differs = [k for k in new if k not in ("count", "complete", "version") and old.get(k) != new[k]]
    if differs:
        raise UsageError(f"cannot resume {root}: it was made with other settings "
                         f"({', '.join(differs)} differ); use --overwrite to replace it")
    manifest = root / MANIFEST
    if not manifest.is_file():
        return 0
    trim_partial_row(manifest)
    rows = read_rows(manifest)
    expected = list(job.index_range[: len(rows)])
    if [int(r["index"]) for r in rows] != expected:
        raise UsageError(f"cannot resume {root}: its {MANIFEST} rows are not in index order")
    return len(rows)


def _remove_dataset(root: Path) -> None:
    """Remove only what captchagen writes; anything else in the directory stays."""
    shutil.rmtree(root / IMAGES, ignore_errors=True)
    for name in (MANIFEST, INFO, f".{INFO}.tmp"):
        (root / name).unlink(missing_ok=True)


def write_dataset(
    job: DatasetJob,
    root: str | Path,
    workers: int | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> Summary:
    """Write (or finish) the dataset of ``job`` into ``root``.

    ``progress(done, total)`` is called once the output is checked, then after every chunk.
    """
    root = Path(root)
    workers = workers or os.cpu_count() or 1
    done = prepare(job, root, resume, overwrite)
    (root / IMAGES).mkdir(parents=True, exist_ok=True)
    for stale in (root / IMAGES).glob(".*.tmp"):  # files a killed worker was writing
        stale.unlink()
    write_json(root / INFO, job.info(done, False))
    manifest = root / MANIFEST
    if done == 0:
        manifest.write_text(header_line())

    todo = _skip(names(job), done)
    chunks = _chunked(todo, CHUNK)
    start = time.perf_counter()
    written = 0
    if progress:
        progress(done, len(job.index_range))
    with open(manifest, "a", encoding="utf-8", newline="") as out:
        for rows in _run_chunks(chunks, job, root, workers):
            out.write(format_rows(rows))
            out.flush()
            written += len(rows)
            if progress:
                progress(done + written, len(job.index_range))
    total = done + written
    write_json(root / INFO, job.info(total, total == len(job.index_range)))
    return Summary(written, total, time.perf_counter() - start, workers, done)


def _run_chunks(chunks, job: DatasetJob, root: Path, workers: int) -> Iterator[list[tuple]]:
    """Draw chunks in worker processes, yielding their rows in submission order.

    At most a few chunks per worker are in flight, so memory does not grow with ``n``.
    """
    if workers == 1:
        _init_worker(job, root)
        for chunk in chunks:
            yield _draw_chunk(chunk)
        return
    ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context()
    with ctx.Pool(workers, initializer=_init_worker, initargs=(job, root)) as pool:
        pending: collections.deque = collections.deque()
        for chunk in chunks:
            pending.append(pool.apply_async(_draw_chunk, (chunk,)))
            if len(pending) >= 4 * workers:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()


def _skip(it: Iterator, k: int) -> Iterator:
    for _ in range(k):
        next(it, None)
    return it


def _chunked(it: Iterator, size: int) -> Iterator[list]:
    chunk = []
    for item in it:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def merge_shards(parts: list[str | Path], root: str | Path, overwrite: bool = False,
                 progress: Callable[[int, int], None] | None = None) -> int:
    """Join the outputs of ``--shard 1/N .. N/N`` into the dataset a single run would write.

    ``progress(done, total)`` is called as images are copied."""
    root = Path(root)
    infos = []
    for p in map(Path, parts):
        if not (p / INFO).is_file():
            raise UsageError(f"{p} is not a captchagen dataset (no {INFO})")
        infos.append(json.loads((p / INFO).read_text()))
    first = infos[0]
    if first.get("shard") is None:
        raise UsageError(f"{parts[0]} is not a shard (it was written without --shard)")
    count = first["shard"]["of"]
    same = ("charset", "n", "seed", "format", "png_level", "jpeg_quality", "name_by", "spec")
    for p, info in zip(parts, infos):
        if info.get("shard") is None or any(info[k] != first[k] for k in same):
            raise UsageError(f"{p} is not a shard of the same dataset as {parts[0]}")
        if not info["complete"]:
            raise UsageError(f"shard {p} is not complete: finish it with --resume first")
    ks = sorted(info["shard"]["k"] for info in infos)
    if ks != list(range(1, count + 1)):
        raise UsageError(f"need each of the {count} shards exactly once, got parts {ks}")
    if root.exists() and any(root.iterdir()):
        if not overwrite:
            raise UsageError(f"output {root} exists and is not empty: add --overwrite")
        _remove_dataset(root)
    (root / IMAGES).mkdir(parents=True, exist_ok=True)
    order = sorted(zip(parts, infos), key=lambda pi: pi[1]["shard"]["k"])
    text = header_line()
    total, done = sum(info["count"] for info in infos), 0
    for p, _ in order:
        body = (Path(p) / MANIFEST).read_text(encoding="utf-8").split("\n", 1)[1]
        text += body
        for row in read_rows(Path(p) / MANIFEST):
            shutil.copyfile(Path(p) / row["file"], root / row["file"])
            done += 1
            if progress is not None:
                progress(done, total)
    atomic_write(root / MANIFEST, text.encode("utf-8"))
    merged = {**first, "shard": None, "count": total, "complete": True}
    write_json(root / INFO, merged)
    return total
