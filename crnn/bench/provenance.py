"""What code produced a cached benchmark step: a hash of the package sources, the git
commit and whether the tree was dirty.

A cached step is keyed by its configuration *and* this hash, so editing any source file
makes the benchmark recompute what depends on it instead of reusing a result of other code.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

from crnn.bench.environment import git_commit

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("captchagen", "crnn", "plumbing")


def code_hash(packages: tuple[str, ...] = PACKAGES, root: Path = ROOT) -> str:
    """A short hash of every ``.py`` file of ``packages`` (paths and contents)."""
    h = hashlib.sha256()
    for pkg in packages:
        for path in sorted((root / pkg).rglob("*.py")):
            h.update(path.relative_to(root).as_posix().encode() + b"\0")
            h.update(path.read_bytes() + b"\0")
    return h.hexdigest()[:12]


def code_version(packages: tuple[str, ...] = PACKAGES, root: Path = ROOT) -> dict:
    """The code hash with the git commit, the dirty flag and the date: what a step records."""
    commit = git_commit(root)
    return {"code_hash": code_hash(packages, root), "git_commit": commit.split("+")[0],
            "dirty": commit.endswith("+dirty"), "date": now()}


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
