"""The error boundary of every command: one line on stderr and an exit code.

- usage problems (click's and ours): ``prog: error: ...``, exit 2;
- environment problems (``OSError``, ``EnvError``): ``prog: error: ...`` naming the path, exit 1;
- anything else is a bug: one line too, exit 1, asking for ``--debug``.
``--debug`` (anywhere on the command line) or ``CAPTCHA_CRNN_DEBUG=1`` re-raises instead, so
the traceback is there when a developer wants it.
"""

from __future__ import annotations

import errno
import os
import sys

import click

from plumbing.errors import EnvError, UsageError

DEBUG_ENV = "CAPTCHA_CRNN_DEBUG"


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def describe_os_error(e: OSError) -> str:
    """``permission denied: /x/y`` rather than ``[Errno 13] Permission denied: '/x/y'``."""
    reason = e.strerror or errno.errorcode.get(e.errno or 0, "") or type(e).__name__
    paths = [p for p in (e.filename, e.filename2) if p is not None]
    where = f": {' -> '.join(map(str, paths))}" if paths else ""
    return f"{reason[:1].lower()}{reason[1:]}{where}"


def debug_requested(args: list[str]) -> bool:
    return "--debug" in args or os.environ.get(DEBUG_ENV, "") not in ("", "0")


def run_cli(group: click.Group, prog: str, args: list[str] | None = None) -> int:
    """Run a click group behind the error boundary; returns the exit code."""
    args = list(sys.argv[1:] if args is None else args)
    debug = debug_requested(args)
    args = [a for a in args if a != "--debug"]

    def fail(message: str, code: int) -> int:
        click.echo(f"{prog}: error: {_one_line(message)}", err=True)
        return code

    try:
        rv = group.main(args=args, prog_name=prog, standalone_mode=False)
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.UsageError as e:
        return fail(e.format_message(), 2)
    except UsageError as e:
        if debug:
            raise
        return fail(str(e), 2)
    except click.ClickException as e:
        return fail(e.format_message(), e.exit_code)
    except click.exceptions.Abort:
        click.echo(f"{prog}: aborted", err=True)
        return 130
    except KeyboardInterrupt:
        click.echo(f"{prog}: interrupted; finished work is kept", err=True)
        return 130
    except BrokenPipeError:
        sys.stderr.close()
        return 1
    except EnvError as e:
        if debug:
            raise
        return fail(str(e), 1)
    except OSError as e:
        if debug:
            raise
        return fail(describe_os_error(e), 1)
    except MemoryError:
        if debug:
            raise
        return fail("out of memory: try a smaller batch size or fewer workers", 1)
    except Exception as e:
        if debug:
            raise
        return fail(f"internal error ({type(e).__name__}: {e}); rerun with --debug or "
                    f"{DEBUG_ENV}=1 for the traceback and report it", 1)
    return rv if isinstance(rv, int) else 0
