"""The shared plumbing: the error boundary, dataclass-derived options, locks, safe paths."""

from __future__ import annotations

import os
from dataclasses import dataclass

import click
import pytest

from plumbing.cli import run_cli
from plumbing.config import check_fields, knob, options_from
from plumbing.errors import EnvError, UsageError
from plumbing.files import atomic_write, exclusive_lock, inside


@dataclass(frozen=True)
class Job:
    out: str = knob(help="Output.", short="-o")
    n: int = knob(10, "Number.", lo=1, hi=100)
    mode: str = knob("a", "Mode.", choices=("a", "b"))
    smooth: bool = knob(True, "Smooth.")
    workers: int | None = knob(None, "Workers.", lo=1)
    ratio: float = knob(0.5, "Ratio.", lo=0, hi=1)

    def __post_init__(self) -> None:
        check_fields(self)


@click.group()
def group() -> None:
    pass


@group.command()
@options_from(Job)
def make(**kw) -> None:
    click.echo(repr(Job(**kw)))


@group.command()
@click.argument("path")
def fail(path: str) -> None:
    if path == "env":
        raise EnvError("cannot read /x: corrupt")
    if path == "bug":
        raise ZeroDivisionError("boom")
    open(path)  # noqa: SIM115


@pytest.mark.parametrize("args, code, text", [
    (["make", "-o", "x"], 0, "Job(out='x', n=10"),
    (["make", "-o", "x", "--no-smooth", "--workers", "3"], 0, "smooth=False, workers=3"),
    (["make", "-o", "x", "--n", "0"], 2, "--n must be within 1..100, got 0"),
    (["make", "-o", "x", "--n", "abc"], 2, "'abc' is not a valid integer"),
    (["make", "-o", "x", "--ratio", "nan"], 2, "--ratio must be a finite number"),
    (["make", "-o", "x", "--mode", "c"], 2, "'c' is not one of"),
    (["make", "-o", "x", "--workers", "0"], 2, "--workers must be at least 1"),
    (["make"], 2, "--out must be set"),
    (["fail", "/nonexistent/dir/file"], 1, "no such file or directory: /nonexistent/dir/file"),
    (["fail", "env"], 1, "cannot read /x: corrupt"),
    (["fail", "bug"], 1, "internal error (ZeroDivisionError: boom)"),
])
def test_boundary_one_line_and_exit_code(args, code, text, capsys):
    assert run_cli(group, "prog", args) == code
    out, err = capsys.readouterr()
    shown = out if code == 0 else err
    assert text in shown
    if code:
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_debug_shows_the_traceback(monkeypatch):
    with pytest.raises(ZeroDivisionError):
        run_cli(group, "prog", ["fail", "bug", "--debug"])
    monkeypatch.setenv("CAPTCHA_CRNN_DEBUG", "1")
    with pytest.raises(ZeroDivisionError):
        run_cli(group, "prog", ["fail", "bug"])


def test_check_fields_rejects_wrong_types():
    with pytest.raises(UsageError, match="whole number"):
        Job(out="x", n=True)
    with pytest.raises(UsageError, match="whole number"):
        Job(out="x", n=2.5)


def test_lock_refuses_a_second_writer(tmp_path):
    with (exclusive_lock(tmp_path / "d"),
          pytest.raises(UsageError, match="in use by another process"),
          exclusive_lock(tmp_path / "d")):
        pass
    with exclusive_lock(tmp_path / "d"):  # released: a later writer gets it
        pass


def test_lock_is_released_when_its_holder_dies(tmp_path):
    pid = os.fork()
    if pid == 0:  # the child takes the lock and dies without releasing it
        with exclusive_lock(tmp_path):
            os._exit(0)
    os.waitpid(pid, 0)
    with exclusive_lock(tmp_path):
        pass


@pytest.mark.parametrize("rel", ["../secret.txt", "/etc/passwd", "a/../../x", "", "a\\..\\b"])
def test_inside_refuses_escapes(tmp_path, rel):
    with pytest.raises(UsageError):
        inside(tmp_path, rel)


def test_inside_refuses_a_link_out_and_accepts_inner_paths(tmp_path):
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "out").symlink_to(tmp_path)
    with pytest.raises(UsageError, match="outside"):
        inside(tmp_path / "root", "out/secret")
    assert inside(tmp_path / "root", "images/a.png") == tmp_path / "root" / "images/a.png"


def test_atomic_write_leaves_nothing_half_written(tmp_path):
    target = tmp_path / "f.txt"
    atomic_write(target, b"one")
    with pytest.raises(TypeError):
        atomic_write(target, "not bytes")  # type: ignore[arg-type]
    assert target.read_bytes() == b"one"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.txt"]


def test_atomic_text_appears_only_when_complete(tmp_path):
    from plumbing.files import atomic_text

    target = tmp_path / "rows.txt"
    with pytest.raises(RuntimeError), atomic_text(target) as f:
        f.write("half\n")
        raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []
    with atomic_text(target) as f:
        f.write("one\ntwo\n")
        assert not target.exists()  # not before the writer closes
    assert target.read_text() == "one\ntwo\n" and sorted(tmp_path.iterdir()) == [target]
