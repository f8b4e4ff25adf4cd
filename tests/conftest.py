"""Shared helpers: running the CLIs in-process and comparing dataset directories."""

from __future__ import annotations

import pytest


@pytest.fixture
def cli_run(capsys):
    """Run a CLI group in-process; returns (exit code, stdout, stderr)."""

    def run(group, prog: str, *args: str):
        from captchagen.errors import run_cli

        code = run_cli(group, prog, [str(a) for a in args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def gen(cli_run):
    """``gen("make", "--n", 5, ...)`` runs ``captchagen``."""
    from captchagen.cli import cli

    return lambda *args: cli_run(cli, "captchagen", *args)
