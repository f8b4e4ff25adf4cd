"""The two kinds of failure a user can meet, each reported as one line, never a traceback."""

from __future__ import annotations


class UsageError(ValueError):
    """Bad input from the user (an option, a file's content they chose): exit code 2."""


class EnvError(RuntimeError):
    """The environment failed (a file that cannot be read or written, a corrupt file the
    command must read, a missing device): exit code 1. The message names the path."""
