"""Shared helpers: running the CLIs in-process and comparing dataset directories."""

from __future__ import annotations

import pytest


@pytest.fixture
def cli_run(capsys):
    """Run a CLI group in-process; returns (exit code, stdout, stderr)."""

    def run(group, prog: str, *args: str):
        from plumbing.cli import run_cli

        code = run_cli(group, prog, [str(a) for a in args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def gen(cli_run):
    """``gen("make", "--n", 5, ...)`` runs ``captchagen``."""
    from captchagen.cli import cli

    return lambda *args: cli_run(cli, "captchagen", *args)


def _dataset(tmp_path_factory, name, charset, lengths, n, seed, workers):
    from captchagen import CaptchaSpec, DatasetJob, parse_charset, write_dataset

    root = tmp_path_factory.mktemp(name) / "data"
    spec = CaptchaSpec(charset=parse_charset(charset), min_len=lengths[0], max_len=lengths[1])
    write_dataset(DatasetJob(spec=spec, n=n, seed=seed), root, workers=workers)
    return root


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    """64 captchas of 3-4 digits+lower: the data of the fast model tests."""
    return _dataset(tmp_path_factory, "tiny", "alnum", (3, 4), n=64, seed=5, workers=1)


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory):
    """256 captchas of 4-5 digits: for resume and distributed tests."""
    return _dataset(tmp_path_factory, "small", "digits", (4, 5), n=256, seed=9, workers=2)


@pytest.fixture
def crnn_cli(cli_run):
    """``crnn_cli("train", ...)`` runs ``crnn``."""
    from crnn.cli import cli

    return lambda *args: cli_run(cli, "crnn", *args)
