"""The output folder of ``make`` and ``merge``: one writer at a time, never an input, and
``--overwrite`` removing only what captchagen lists as its own output.

``output_dir`` is the context every write happens in: it refuses an output that is a file or
that resolves to (or into, or around) one of the command's inputs, creates missing folders,
holds ``plumbing.files.exclusive_lock`` while writing, and on failure removes the folders and
lock file it created, so a refused or failed command leaves the tree as it found it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from captchagen.manifest import IMAGES, INFO, MANIFEST, OWN_FILES, TOOL, read_info, read_rows
from plumbing.errors import EnvError, UsageError
from plumbing.files import LOCK_NAME, exclusive_lock, inside


def _overlaps(a: Path, b: Path) -> bool:
    return a == b or a in b.parents or b in a.parents


def check_not_an_input(out: Path, inputs: Iterable[Path], what: str = "input") -> None:
    """Refuse an output that is, holds, or lies inside one of the inputs (links resolved)."""
    target = out.resolve()
    for p in inputs:
        if _overlaps(target, Path(p).resolve()):
            raise UsageError(f"output {out} overlaps the {what} {p}: write to another folder")


def check_parents(path: Path) -> None:
    """Refuse, before anything is created, a path under an existing file."""
    blocking = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise EnvError(f"cannot write {path}: {blocking} is a file, not a directory")


def is_empty(root: Path) -> bool:
    """True when ``root`` holds nothing but our lock file."""
    return all(e.name == LOCK_NAME for e in os.scandir(root))


@contextlib.contextmanager
def output_dir(root: Path, inputs: Iterable[Path] = (), what: str = "dataset") -> Iterator[None]:
    """Create (with its parents) and lock ``root`` for the duration; undo on failure."""
    if root.exists() and not root.is_dir():
        raise EnvError(f"output {root} exists and is not a directory: choose a folder")
    check_parents(root)
    check_not_an_input(root, inputs)
    created = [p for p in [root, *root.parents] if not p.exists()]
    lock_existed = (root / LOCK_NAME).exists()
    try:
        with exclusive_lock(root, what):
            try:
                yield
            except BaseException:
                if not lock_existed:
                    (root / LOCK_NAME).unlink(missing_ok=True)
                raise
    except BaseException:
        for p in created:  # innermost first; a folder that holds anything stays
            with contextlib.suppress(OSError):
                p.rmdir()
        raise


def own_files(root: Path) -> list[Path]:
    """The files captchagen wrote in ``root``: the images its manifest lists (inside
    ``root``), its manifest, ``dataset.json``, the interop files and temporary files.

    A folder without a captchagen ``dataset.json`` is refused: nothing in it is ours.
    """
    if not (root / INFO).is_file():
        raise UsageError(f"--overwrite refused: {root} has no {INFO}, so captchagen did not "
                         "make it; remove its files yourself or choose another --out")
    info = read_info(root)
    if info.get("tool") != TOOL:
        raise UsageError(f"--overwrite refused: {root / INFO} was not written by captchagen; "
                         "remove its files yourself or choose another --out")
    files = [root / name for name in OWN_FILES] + [root / f".{n}.tmp" for n in OWN_FILES]
    shards = info.get("shards") if isinstance(info.get("shards"), list) else []
    for shard in shards:  # a WebDataset layout (captchagen.shards) lists its tar files
        name = shard.get("file") if isinstance(shard, dict) else None
        if not isinstance(name, str) or "/" in name:
            raise EnvError(f"{root / INFO} lists a shard that is not a file name: {name!r}")
        files += [inside(root, name), inside(root, f".{name}.tmp")]
    if (root / MANIFEST).is_file():
        files += [root / r["file"] for r in read_rows(root / MANIFEST, root)]
    if (root / IMAGES).is_dir():
        files += [p for p in (root / IMAGES).glob(".*.tmp") if p.is_file()]
    return files


def remove_own_files(root: Path) -> None:
    """Remove ``own_files(root)`` (all checked before the first is removed) and an emptied
    ``images/``; anything else in the folder stays."""
    for path in own_files(root):
        path.unlink(missing_ok=True)  # a link is removed, never what it points to
    with contextlib.suppress(OSError):
        (root / IMAGES).rmdir()
