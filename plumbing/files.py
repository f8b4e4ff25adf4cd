"""Writing files so that a reader (or a kill) never sees half of one."""

from __future__ import annotations

import json
import os
from pathlib import Path


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


def write_json(path: str | Path, obj: dict) -> None:
    atomic_write(path, (json.dumps(obj, indent=2) + "\n").encode())
