"""Writing a labelled dataset: parallel, streamed, resumable and shardable.

Image ``i`` depends only on ``(spec, seed, i)`` (see ``sampling``), so any worker count, any
split into shards and any resume point give the same bytes. Workers draw, encode and write
images (each to a temporary name, then renamed); the parent appends their manifest rows in
index order only after the files are in place, so a killed run never has a row for an image
that is not fully on disk.
"""

from __future__ import annotations

import collections
import contextlib
import io
import itertools
import json
import multiprocessing as mp
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from captchagen import __version__
from captchagen.exports import sync_label_files
from captchagen.fonts import file_sha256, resolve_fonts
from captchagen.manifest import (
    IMAGES,
    INFO,
    MANIFEST,
    TOOL,
    format_rows,
    header_line,
    read_info,
    read_rows,
    trim_partial_row,
)
from captchagen.outdir import check_not_an_input, is_empty, output_dir, remove_own_files
from captchagen.render import check_fit, render_with_info
from captchagen.sampling import label_for, rng_for
from captchagen.spec import CaptchaSpec
from plumbing.config import check_fields, knob
from plumbing.errors import EnvError, UsageError
from plumbing.files import atomic_write, write_json

FORMATS = {"png": "PNG", "jpg": "JPEG"}
MAX_IMAGES = 10_000_000
MAX_WORKERS = 256
CHUNK = 32  # images per worker task: large enough to amortise the IPC, small for smooth progress
UNSAFE_IN_NAMES = set('/\\:*?"<>|_.')  # '_' would be mistaken for the duplicate suffix


@dataclass(frozen=True)
class DatasetJob:
    """A whole dataset: the look of each image plus how many, which seed, and the files.

    The ``knob`` fields are also ``captchagen make``'s options (help, bounds, defaults).
    """

    spec: CaptchaSpec
    n: int = knob(1000, "Number of images.", lo=1, hi=MAX_IMAGES)
    seed: int = knob(0, "Seed: the same seed gives the same images, byte for byte.",
                     lo=0, hi=2**63 - 1)
    image_format: str = knob("png", "Image file format.", choices=tuple(FORMATS),
                             flag="--format")
    # zlib level; 1 costs a fraction of the default 6 for about the same size
    png_level: int = knob(1, "zlib level 0-9 (1 is far faster than 6 at about the same size).",
                          lo=0, hi=9)
    jpeg_quality: int = knob(90, "JPEG quality 1-100.", lo=1, hi=100)
    name_by: str = knob("index", "File names: 000123.png or 2b827.png (duplicates _1, _2).",
                        choices=("index", "label"))
    shard: tuple[int, int] | None = knob(None, cli=False)  # (K, N): write only part K of N

    def __post_init__(self) -> None:
        check_fields(self)
        if self.name_by == "label":
            bad = sorted(UNSAFE_IN_NAMES & set(self.spec.charset))
            if bad:
                raise UsageError(
                    f"--name-by label cannot name files with the symbols {''.join(bad)!r}"
                )
        if self.shard is not None:
            k, count = self.shard
            if not 1 <= k <= count <= self.n:
                raise UsageError(f"--shard must be K/N with 1 <= K <= N <= --n, got {k}/{count}")


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
            "tool": TOOL,
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
class Run:
    """How ``make`` runs: none of it changes a single byte of the output."""

    workers: int | None = knob(None, "Processes (never more than one per 32 images). "
                               "Default: all cores.", lo=1, hi=MAX_WORKERS)
    resume: bool = knob(False, "Continue an interrupted run in OUT (missing images are drawn "
                        "again).")
    overwrite: bool = knob(False, "Replace the captchagen dataset in OUT: only the files it "
                           "lists are removed; a folder captchagen did not make is refused.")

    def __post_init__(self) -> None:
        check_fields(self)
        if self.resume and self.overwrite:
            raise UsageError("--resume and --overwrite exclude each other")


def worker_count(requested: int | None, images: int) -> int:
    """Processes to start: as asked (default all cores), never more than the chunks of work
    nor 4 per core."""
    cores = os.cpu_count() or 1
    chunks = max(1, -(-images // CHUNK))
    return max(1, min(requested or cores, chunks, 4 * cores, MAX_WORKERS))


@dataclass(frozen=True)
class Summary:
    written: int  # images drawn by this call
    total: int  # rows in the manifest now
    seconds: float
    workers: int
    resumed_from: int
    redrawn: int = 0  # listed images that were missing and were drawn again


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
        atomic_write(root / rel, encode(r.image, job))
        font = Path(r.font).name
        rows.append((index, rel, label, len(label), font, " ".join(map(str, r.font_sizes))))
    return rows


# Parent side ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Resumed:
    """What an existing output holds: rows already done and listed images that are missing."""

    done: int
    missing: list[tuple[int, str, str]]
    fresh: bool = False  # nothing of a dataset was there (or --overwrite removed it)


def prepare(job: DatasetJob, root: Path, resume: bool, overwrite: bool) -> Resumed:
    """Check the (locked) output directory: refuse, clear (``overwrite``) or read back
    (``resume``) what is there. Everything that can be refused is refused before a file is
    touched."""
    check_fit(job.spec)
    if is_empty(root):
        return Resumed(0, [], fresh=True)
    if overwrite:
        remove_own_files(root)
        return Resumed(0, [], fresh=True)
    if not resume:
        raise UsageError(f"output {root} exists and is not empty: add --resume to continue it "
                         "or --overwrite to replace it")
    if not (root / INFO).is_file():
        raise UsageError(f"cannot resume {root}: it has no {INFO} (not made by captchagen)")
    old = read_info(root)
    new = json.loads(json.dumps(job.info(0, False)))  # tuples become lists, as on disk
    differs = [k for k in new if k not in ("count", "complete", "version") and old.get(k) != new[k]]
    if differs:
        raise UsageError(f"cannot resume {root}: it was made with other settings "
                         f"({', '.join(differs)} differ); use --overwrite to replace it")
    manifest = root / MANIFEST
    if not manifest.is_file():
        return Resumed(0, [])
    rows = read_rows(manifest, root, whole_lines=True)
    expected = list(itertools.islice(names(job), len(rows)))
    got = [(r.get("index"), r["file"], r["label"]) for r in rows]
    if got != [(str(i), rel, label) for i, label, rel in expected]:
        raise EnvError(f"cannot resume {root}: {manifest} does not list the images its "
                       f"{INFO} describes, in order; use --overwrite to start again")
    missing = [item for item in expected if not os.path.isfile(os.path.join(root, item[2]))]
    trim_partial_row(manifest)  # only now that the rest is known good
    return Resumed(len(rows), missing)


def write_dataset(
    job: DatasetJob,
    root: str | Path,
    workers: int | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> Summary:
    """Write (or finish) the dataset of ``job`` into ``root``, holding its lock.

    ``progress(done, total)`` is called once the output is checked, then after every chunk.
    A run that fails before its first row leaves the folder as it was; a later failure
    leaves a dataset that ``resume`` finishes.
    """
    root = Path(root)
    Run(workers=workers, resume=resume, overwrite=overwrite)
    with output_dir(root):
        before = prepare(job, root, resume, overwrite)
        try:
            return _write(job, root, before, workers, progress)
        except BaseException:
            if before.fresh and not _rows_written(root):
                _remove_fresh(root)
            raise


def _rows_written(root: Path) -> bool:
    try:
        return (root / MANIFEST).read_text(encoding="utf-8").count("\n") > 1
    except (OSError, UnicodeDecodeError):
        return False


def _remove_fresh(root: Path) -> None:
    """Undo a run that failed before its first row: only files it wrote itself."""
    for path in [root / MANIFEST, root / INFO, *(root / IMAGES).glob(".*.tmp")]:
        path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        (root / IMAGES).rmdir()


def _write(job: DatasetJob, root: Path, before: Resumed, workers: int | None,
           progress: Callable[[int, int], None] | None) -> Summary:
    done = before.done
    todo_count = len(job.index_range) - done
    workers = worker_count(workers, todo_count + len(before.missing))
    (root / IMAGES).mkdir(exist_ok=True)
    for stale in (root / IMAGES).glob(".*.tmp"):  # files a killed worker was writing
        stale.unlink()
    start = time.perf_counter()
    # Listed images that went missing are drawn again (same bytes); their rows stay.
    for _ in _run_chunks(_chunked(iter(before.missing), CHUNK), job, root, workers):
        pass
    write_json(root / INFO, job.info(done, False))
    manifest = root / MANIFEST
    if done == 0:
        atomic_write(manifest, header_line().encode())
    written = 0
    if progress:
        progress(done, len(job.index_range))
    chunks = _chunked(_skip(names(job), done), CHUNK)
    with open(manifest, "a", encoding="utf-8", newline="") as out:
        for rows in _run_chunks(chunks, job, root, workers):
            out.write(format_rows(rows))
            out.flush()
            written += len(rows)
            if progress:
                progress(done + written, len(job.index_range))
    total = done + written
    write_json(root / INFO, job.info(total, total == len(job.index_range)))
    sync_label_files(root, total == len(job.index_range))
    return Summary(written, total, time.perf_counter() - start, workers, done,
                   len(before.missing))


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
    """Join the outputs of ``--shard 1/N .. N/N`` into the dataset a single run would write;
    ``progress(done, total)`` is called as images are copied.

    The parts must be the complete shards of one job, each exactly once, every listed image
    present; the output may not overlap a part. A failure removes every file it copied.
    """
    root, parts = Path(root), [Path(p) for p in parts]
    check_not_an_input(root, parts)
    shards = [_read_shard(p) for p in parts]
    _check_one_job(shards)
    with output_dir(root, inputs=parts):
        if not is_empty(root):
            if not overwrite:
                raise UsageError(f"output {root} exists and is not empty: add --overwrite")
            remove_own_files(root)
        copied: list[Path] = []
        try:
            (root / IMAGES).mkdir(exist_ok=True)
            text = header_line()
            total = sum(len(rows) for _, _, rows in shards)
            for p, _, rows in sorted(shards, key=lambda s: s[1]["shard"]["k"]):
                text += (p / MANIFEST).read_text(encoding="utf-8").split("\n", 1)[1]
                for row in rows:
                    copied.append(root / row["file"])
                    shutil.copyfile(p / row["file"], root / row["file"])
                    if progress is not None:
                        progress(len(copied), total)
            atomic_write(root / MANIFEST, text.encode("utf-8"))
            copied.append(root / MANIFEST)
            write_json(root / INFO, {**shards[0][1], "shard": None, "count": total,
                                     "complete": True})
            sync_label_files(root, True)
        except BaseException:
            for path in copied:
                path.unlink(missing_ok=True)
            _remove_fresh(root)
            raise
    return total


def _read_shard(p: Path) -> tuple[Path, dict, list[dict[str, str]]]:
    """A part's ``dataset.json`` and manifest rows, refused unless it is a complete shard
    whose every listed image is there."""
    if not (p / INFO).is_file() or not (p / MANIFEST).is_file():
        raise UsageError(f"{p} is not a captchagen dataset (no {INFO} and {MANIFEST})")
    info = read_info(p)
    shard = info.get("shard")
    if info.get("tool") != TOOL or not isinstance(shard, dict):
        raise UsageError(f"{p} is not a shard (it was written without --shard)")
    if not info.get("complete"):
        raise UsageError(f"shard {p} is not complete: finish it with --resume first")
    rows = read_rows(p / MANIFEST, p)
    expected = [str(i) for i in range(shard.get("start", 0), shard.get("stop", -1))]
    if [r.get("index") for r in rows] != expected or info.get("count") != len(rows):
        raise EnvError(f"{p / MANIFEST} does not list exactly the images of shard "
                       f"{shard.get('k')}/{shard.get('of')}; make the shard again")
    missing = [r["file"] for r in rows if not os.path.isfile(os.path.join(p, r["file"]))]
    if missing:
        raise EnvError(f"shard {p} lacks {len(missing)} listed images (first: "
                       f"{p / missing[0]}); finish it with make --resume")
    return p, info, rows


SAME_JOB = ("charset", "n", "seed", "format", "png_level", "jpeg_quality", "name_by", "spec",
            "font_files")


def _check_one_job(shards: list[tuple[Path, dict, list]]) -> None:
    """All parts are shards of one job (same settings and shard count), each K once."""
    p0, first, _ = shards[0]
    count = first["shard"].get("of")
    for p, info, _ in shards:
        differs = [k for k in SAME_JOB if info.get(k) != first.get(k)]
        if info["shard"].get("of") != count:
            differs.append("shard count")
        if differs:
            raise UsageError(f"{p} is not a shard of the same dataset as {p0} "
                             f"({', '.join(differs)}: not the same)")
    ks = sorted(info["shard"].get("k") for _, info, _ in shards)
    if ks != list(range(1, count + 1)):
        raise UsageError(f"need each of the {count} shards exactly once, got parts {ks}")
