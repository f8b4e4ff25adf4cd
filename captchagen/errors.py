"""One error type for bad input, and the CLI wrapper that turns it into one line and exit 2."""

from __future__ import annotations

import sys

import click


class UsageError(ValueError):
    """Bad input from the user: reported as one line, exit code 2, never a traceback."""


def run_cli(group: click.Group, prog: str, args: list[str] | None = None) -> int:
    """Run a click group so that every usage problem is a single line on stderr.

    click's own handling prints the usage block and a hint on several lines; here each
    problem becomes ``prog: error: ...`` with exit code 2 (usage) or 1 (other failures).
    """
    try:
        rv = group.main(args=args, prog_name=prog, standalone_mode=False)
    except click.exceptions.Exit as e:
        return e.exit_code
    except (click.UsageError, UsageError) as e:
        message = e.format_message() if isinstance(e, click.UsageError) else str(e)
        click.echo(f"{prog}: error: {' '.join(message.split())}", err=True)
        return 2
    except click.ClickException as e:
        click.echo(f"{prog}: error: {' '.join(e.format_message().split())}", err=True)
        return e.exit_code
    except click.exceptions.Abort:
        click.echo(f"{prog}: aborted", err=True)
        return 130
    except KeyboardInterrupt:
        click.echo(f"{prog}: interrupted; finished work is kept", err=True)
        return 130
    except BrokenPipeError:
        sys.stderr.close()
        return 1
    return rv if isinstance(rv, int) else 0
