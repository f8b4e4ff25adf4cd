"""Files: written atomically, locked while written, and paths from files kept inside their root."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from plumbing.errors import UsageError


def atomic_write(path: str | Path, data: bytes) -> None:
    """Write ``data`` so that ``path`` is either absent/old or complete, never partial."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_text(path: str | Path) -> Iterator[TextIO]:
    """A text file written line by line (memory stays flat) that appears at ``path`` only
    when complete; on an error the partial temporary file is removed."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json(path: str | Path, obj: dict) -> None:
    atomic_write(path, (json.dumps(obj, indent=2) + "\n").encode())


LOCK_NAME = ".captcha-crnn.lock"


@contextlib.contextmanager
def exclusive_lock(directory: str | Path, what: str = "directory") -> Iterator[None]:
    """Hold an exclusive lock on ``directory`` (created if missing) while writing into it.

    A second writer is refused at once with a ``UsageError``. The lock is an ``flock`` on a
    small file of ours, so the kernel releases it when the holder dies, even by ``kill -9``.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(f"{what} {directory} is in use by another process (it holds "
                             f"{path}); wait for it to finish") from None
        yield
    finally:
        os.close(fd)  # closing releases the lock; the empty file stays, harmless


def inside(root: str | Path, relative: str) -> Path:
    """``root / relative``, refused unless it stays inside ``root`` (symbolic links
    resolved): paths read from files (manifests) must never reach outside their dataset."""
    root_real = Path(root).resolve()
    if not relative or Path(relative).is_absolute() or "\\" in relative or "\x00" in relative:
        raise UsageError(f"path {relative!r} listed in {root} is not a relative path inside it")
    target = (root_real / relative).resolve()
    if target != root_real and root_real not in target.parents:
        raise UsageError(f"path {relative!r} listed in {root} points outside it")
    return Path(root) / relative
