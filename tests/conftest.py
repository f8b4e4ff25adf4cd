"""Shared helpers: running the CLIs in-process and comparing dataset directories."""

from __future__ import annotations

import pytest
import torch


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


@pytest.fixture(scope="session")
def trained(tmp_path_factory, tiny_dataset):
    """A tiny cnn-ctc fitted to the 64-image set (a few seconds): its best.ckpt."""
    from crnn.train import TrainConfig, train

    out = tmp_path_factory.mktemp("run")
    train(TrainConfig(data=str(tiny_dataset), val=str(tiny_dataset), out=str(out),
                      model="cnn-ctc", size="tiny", epochs=45, lr=5e-3, batch_size=16,
                      eval_every=60, progress=False,
                      # float32 on every CPU (auto would autocast where bf16 is native): the
                      # same fitted model whatever machine runs the tests
                      amp="off",
                      allow_overlap=True))  # fitted to its own images, on purpose
    return out / "best.ckpt"


@pytest.fixture
def crnn_cli(cli_run):
    """``crnn_cli("train", ...)`` runs ``crnn``."""
    from crnn.cli import cli

    return lambda *args: cli_run(cli, "crnn", *args)


@pytest.fixture
def cuda_switches():
    """Restores the process-wide switches that ``--deterministic`` sets. (monkeypatch undoes
    an attribute missing from the object's ``__dict__`` by deleting it, which
    torch.backends.cuda.matmul, served by its own ``__getattr__``, refuses.)"""
    switches = [(torch.backends.cudnn, "benchmark"), (torch.backends.cudnn, "deterministic"),
                (torch.backends.cudnn, "allow_tf32"), (torch.backends.cuda.matmul, "allow_tf32")]
    saved = [getattr(module, name) for module, name in switches]
    yield
    for (module, name), value in zip(switches, saved):
        setattr(module, name, value)
