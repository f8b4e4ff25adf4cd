"""Shared plumbing for the ``captchagen``, ``crnn`` and ``crnn-bench`` commands.

- ``errors``: the two kinds of failure a user can meet (bad input, a broken environment);
- ``cli``: the boundary that turns them into one line and an exit code;
- ``config``: validated frozen dataclasses and the click options derived from them;
- ``files``: atomic writes.
"""

from plumbing.errors import EnvError, UsageError

__all__ = ["EnvError", "UsageError"]
