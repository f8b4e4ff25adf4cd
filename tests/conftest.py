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


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    """64 captchas of 3-4 digits+lower: the data of the fast model tests."""
    from captchagen import CaptchaSpec, DatasetJob, parse_charset, write_dataset

    root = tmp_path_factory.mktemp("tiny") / "data"
    spec = CaptchaSpec(charset=parse_charset("alnum"), min_len=3, max_len=4)
    write_dataset(DatasetJob(spec=spec, n=64, seed=5), root, workers=1)
    return root


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory):
    """256 captchas of 4-5 chars: for resume and distributed tests."""
    from captchagen import CaptchaSpec, DatasetJob, parse_charset, write_dataset

    root = tmp_path_factory.mktemp("small") / "data"
    spec = CaptchaSpec(charset=parse_charset("digits"), min_len=4, max_len=5)
    write_dataset(DatasetJob(spec=spec, n=256, seed=9), root, workers=2)
    return root


@pytest.fixture
def crnn_cli(cli_run):
    """``crnn_cli("train", ...)`` runs ``crnn``."""
    from crnn.cli import cli

    return lambda *args: cli_run(cli, "crnn", *args)
