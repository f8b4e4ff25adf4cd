"""Progress bars for the steps that can take more than a few seconds.

On stderr, so that stdout stays the command's result; off with ``--quiet`` (``enabled=False``)
and whenever stderr is not a terminal (pipes, CI logs, tests).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

from tqdm import tqdm


def progress_bar(total: float | None, desc: str, unit: str = "it", enabled: bool = True,
                 iterable: Iterable | None = None, **kw) -> tqdm:
    """A tqdm bar on stderr (over ``iterable`` if given): hidden when ``enabled`` is false or
    stderr is not a TTY."""
    return tqdm(iterable, total=total, desc=desc, unit=unit, file=sys.stderr, leave=False,
                dynamic_ncols=True, disable=None if enabled else True, **kw)
