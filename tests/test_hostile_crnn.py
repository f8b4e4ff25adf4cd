"""Hostile input for ``crnn`` and ``crnn-bench`` (issue 9), table-driven.

Each case builds its inputs, runs the command in-process and checks: the exit code, one line
on stderr naming the problem, no traceback, and the tree of files the same before and after
(nothing lost, nothing left behind).
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import pickle
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from crnn.checkpoint import FORMAT, save_checkpoint
from crnn.data.images import load_gray, to_gray
from crnn.models import ModelConfig, create_model
from plumbing.files import LOCK_NAME, exclusive_lock

CHARSET = "0123456789abc"
CONFIG = ModelConfig(name="cnn-ctc", charset=CHARSET, size="tiny", height=32, width=64)


def _tree(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root``: file contents, or None for a folder."""
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None)
            for p in sorted(root.rglob("*"))}


def _captcha(text: str, size=(64, 32)) -> Image.Image:
    """Dark text on a light ground."""
    im = Image.new("L", size, 235)
    ImageDraw.Draw(im).text((4, 8), text, fill=15)
    return im


def _oversized_png(path: Path, width: int = 100_000, height: int = 100_000) -> None:
    """A tiny PNG file whose header announces ``width`` x ``height`` pixels."""
    buf = io.BytesIO()
    Image.new("L", (8, 8), 255).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    ihdr = struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    path.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """A tiny checkpoint (untrained: these tests are about refusals), a folder of labelled
    images, and a report, made once per module."""
    root = tmp_path_factory.mktemp("hostile")
    save_checkpoint(root / "model.ckpt", create_model(CONFIG), CONFIG, {})
    (root / "data").mkdir()
    for label in ("12ab", "3c45", "a0b9", "777c"):
        _captcha(label).save(root / "data" / f"{label}.png")
    report = {"meta": {"environment": {"date": "d", "git_commit": "c"}},
              "tables": {"t": {"title": "T", "columns": [
                  {"field": "k", "format": "s", "header": "K"},
                  {"field": "v", "format": ".2f", "header": "V"}],
                  "rows": [{"k": "x", "v": 1.0}]}}}
    (root / "report").mkdir()
    (root / "report" / "report.json").write_text(json.dumps(report))
    return root


@pytest.fixture
def work(base, tmp_path) -> Path:
    """A fresh copy of ``base`` for one case."""
    import shutil

    shutil.copytree(base, tmp_path / "w")
    return tmp_path / "w"


# --- checkpoint builders ------------------------------------------------------------------

def _ckpt(path: Path, **change) -> Path:
    """A checkpoint with fields changed (``None`` removes one)."""
    state = {"format": FORMAT, "model_config": CONFIG.to_dict(),
             "model": create_model(CONFIG).state_dict(), "metrics": {}}
    for k, v in change.items():
        if v is None:
            state.pop(k, None)
        else:
            state[k] = v
    torch.save(state, path)
    return path


def _config(**change) -> dict:
    return {**CONFIG.to_dict(), **change}


class _Exploit:
    def __reduce__(self):
        return (Path.touch, (Path("/tmp/crnn-hostile-pwned"),))


def _evil(path: Path) -> Path:
    torch.save({"format": FORMAT, "x": _Exploit()}, path, pickle_module=pickle)
    return path


BAD_CHECKPOINTS: dict[str, Callable[[Path], Path]] = {
    "junk": lambda p: (p.write_text("hello"), p)[1],
    "png": lambda p: (_captcha("1").save(p, "PNG"), p)[1],
    "empty": lambda p: (p.write_bytes(b""), p)[1],
    "code": _evil,
    "no-format": lambda p: _ckpt(p, format=None),
    "not-a-dict": lambda p: (torch.save([1, 2], p), p)[1],
    "no-model-config": lambda p: _ckpt(p, model_config=None),
    "model-config-list": lambda p: _ckpt(p, model_config=[1]),
    "width-text": lambda p: _ckpt(p, model_config=_config(width="64")),
    "huge-width": lambda p: _ckpt(p, model_config=_config(width=10**9)),
    "huge-charset": lambda p: _ckpt(p, model_config=_config(
        charset="".join(map(chr, range(0x4E00, 0x4E00 + 100_000))))),
    "unknown-size": lambda p: _ckpt(p, model_config=_config(size="huge")),
    "unknown-model": lambda p: _ckpt(p, model_config=_config(name="gpt")),
    "duplicate-symbols": lambda p: _ckpt(p, model_config=_config(charset="aab")),
    "empty-charset": lambda p: _ckpt(p, model_config=_config(charset="")),
    "charset-number": lambda p: _ckpt(p, model_config=_config(charset=12)),
    "unknown-field": lambda p: _ckpt(p, model_config=_config(layers=99)),
    "bool-height": lambda p: _ckpt(p, model_config=_config(height=True)),
    "no-weights": lambda p: _ckpt(p, model=None),
    "weights-list": lambda p: _ckpt(p, model=[1]),
    "weights-not-tensors": lambda p: _ckpt(p, model={"a": 1}),
    "weights-of-another-model": lambda p: _ckpt(p, model={"x": torch.zeros(2)}),
    "no-metrics": lambda p: _ckpt(p, metrics=None),
    "metrics-text": lambda p: _ckpt(p, metrics="good"),
}


# --- the table ----------------------------------------------------------------------------

# (name, setup(work) -> (prog, args), expected exit code, text the message must hold)
CASES: list[tuple[str, Callable[[Path], tuple[str, list]], int, str]] = []


def case(name: str, code: int, needle: str):
    def add(setup):
        CASES.append((name, setup, code, needle))
        return setup
    return add


def _predict(*args):
    return lambda w: ("crnn", ["predict", "--ckpt", w / "model.ckpt", w / "data", *args])


for _name, _args, _needle in [
    ("allowed-outside-charset", ["--allowed", "xyz"], "outside the charset"),
    ("allowed-partly-outside", ["--allowed", "12Z"], "'Z'"),
    ("allowed-empty", ["--allowed", ""], "--allowed is empty"),
    ("length-zero", ["--length", "0"], "length"),
    ("length-reversed", ["--length", "5-3"], "empty"),
    ("length-garbage", ["--length", "abc"], "not N or A-B"),
    ("length-beyond-model", ["--length", "40"], "at most 16"),
    ("length-single-symbol", ["--allowed", "1", "--length", "9"], "at most 8"),
    ("batch-size-zero", ["--batch-size", "0"], "--batch-size"),
    ("batch-size-huge", ["--batch-size", "100000000"], "--batch-size"),
    ("batch-size-text", ["--batch-size", "many"], "many"),
    ("beam-zero", ["--beam", "0"], "--beam"),
    ("beam-huge", ["--beam", "100000"], "--beam"),
    ("device-unknown", ["--device", "tpu"], "tpu"),
    ("unknown-option", ["--speed", "9"], "--speed"),
]:
    case(f"predict-{_name}", 2, _needle)(_predict(*_args))


@case("predict-missing-image", 2, "no such image")
def _(w):
    return "crnn", ["predict", "--ckpt", w / "model.ckpt", w / "nothing.png"]


@case("predict-missing-checkpoint", 2, "checkpoint not found")
def _(w):
    return "crnn", ["predict", "--ckpt", w / "none.ckpt", w / "data"]


for _name, _make in BAD_CHECKPOINTS.items():
    def _setup(w, make=_make, name=_name):
        return "crnn", ["predict", "--ckpt", make(w / f"{name}.ckpt"), w / "data"]
    case(f"predict-checkpoint-{_name}", 1, ".ckpt")(_setup)


@case("eval-checkpoint-malformed-config", 1, "bad.ckpt")
def _(w):
    return "crnn", ["eval", "--ckpt", _ckpt(w / "bad.ckpt", model_config=_config(size=3)),
                    "--data", w / "data"]


@case("predict-decompression-bomb", 2, "pixels")
def _(w):
    _oversized_png(w / "data" / "1111.png")
    return "crnn", ["predict", "--ckpt", w / "model.ckpt", w / "data"]


@case("eval-oversized-image", 2, "more than the")
def _(w):
    _oversized_png(w / "data" / "1111.png", 10_000, 10_000)  # under PIL's bomb limit
    return "crnn", ["eval", "--ckpt", w / "model.ckpt", "--data", w / "data"]


@case("eval-grid-onto-checkpoint", 2, "--grid")
def _(w):
    return "crnn", ["eval", "--ckpt", w / "model.ckpt", "--data", w / "data",
                    "--grid", w / "model.ckpt"]


@case("eval-grid-into-data", 2, "--grid")
def _(w):
    return "crnn", ["eval", "--ckpt", w / "model.ckpt", "--data", w / "data",
                    "--grid", w / "data" / "grid.png"]


@case("eval-grid-onto-an-image", 2, "--grid")
def _(w):
    return "crnn", ["eval", "--ckpt", w / "model.ckpt", "--data", w / "data",
                    "--grid", w / "data" / "12ab.png"]


@case("eval-allowed-outside-charset", 2, "outside the charset")
def _(w):
    return "crnn", ["eval", "--ckpt", w / "model.ckpt", "--data", w / "data", "--allowed", "Q"]


def _train(*args):
    return lambda w: ("crnn", ["train", "--data", w / "data", "--out", w / "run", "--size",
                               "tiny", "--epochs", "1", *args])


for _name, _args, _needle in [
    ("threads-negative", ["--threads", "-1"], "--threads"),
    ("threads-huge", ["--threads", "5000"], "--threads"),
    ("workers-negative", ["--workers", "-1"], "--workers"),
    ("workers-huge", ["--workers", "100000"], "--workers"),
    ("batch-size-zero", ["--batch-size", "0"], "--batch-size"),
    ("epochs-zero", ["--epochs", "0"], "--epochs"),
    ("epochs-huge", ["--epochs", "10000000"], "--epochs"),
    ("minutes-negative", ["--minutes", "-3"], "--minutes"),
    ("lr-zero", ["--lr", "0"], "--lr"),
    ("lr-nan", ["--lr", "nan"], "--lr"),
    ("lr-inf", ["--lr", "inf"], "--lr"),
    ("val-split-one", ["--val-split", "1"], "--val-split"),
    ("height-odd", ["--height", "33"], "multiple of 16"),
    ("width-huge", ["--width", "100000"], "--width"),
    ("seed-negative", ["--seed", "-5"], "--seed"),
    ("max-len-zero", ["--max-len", "0"], "--max-len"),
    ("schedule-unknown", ["--schedule", "linear"], "linear"),
    ("resume-and-overwrite", ["--resume", "--overwrite"], "exclude"),
]:
    case(f"train-{_name}", 2, _needle)(_train(*_args))


@case("train-out-is-data", 2, "the input --data")
def _(w):
    return "crnn", ["train", "--data", w / "data", "--out", w / "data", "--epochs", "1"]


@case("train-out-inside-data", 2, "overlaps the input --data")
def _(w):
    return "crnn", ["train", "--data", w / "data", "--out", w / "data" / "run"]


@case("train-out-holds-data", 2, "overlaps the input --data")
def _(w):
    return "crnn", ["train", "--data", w / "data", "--out", w]


@case("train-out-is-val", 2, "the input --val")
def _(w):
    return "crnn", ["train", "--data", w / "data", "--val", w / "report", "--out", w / "report"]


@case("train-overwrite-foreign-folder", 2, "not a crnn run directory")
def _(w):
    (w / "mine").mkdir()
    (w / "mine" / "thesis.txt").write_text("precious")
    (w / "mine" / "metrics.csv").write_text("mine too")
    return "crnn", ["train", "--data", w / "data", "--out", w / "mine", "--overwrite"]


@case("train-existing-run-without-flag", 2, "--resume")
def _(w):
    (w / "run").mkdir()
    (w / "run" / "notes.txt").write_text("x")
    return "crnn", ["train", "--data", w / "data", "--out", w / "run"]


@case("train-out-is-a-file", 2, "is a file")
def _(w):
    return "crnn", ["train", "--data", w / "data", "--out", w / "model.ckpt"]


@case("train-out-under-a-file", 1, "model.ckpt")
def _(w):
    return "crnn", ["train", "--data", w / "data", "--out", w / "model.ckpt" / "run",
                    "--size", "tiny", "--epochs", "1", "--width", "64"]


@case("train-resume-nothing", 2, "nothing to resume")
def _(w):
    return "crnn", ["train", "--data", w / "data", "--out", w / "run", "--resume"]


@case("train-resume-checkpoint-without-state", 1, "last.ckpt")
def _(w):
    (w / "run").mkdir()
    _ckpt(w / "run" / "last.ckpt")
    return "crnn", ["train", "--data", w / "data", "--out", w / "run", "--resume"]


@case("train-resume-ill-typed-state", 1, "trainer")
def _(w):
    (w / "run").mkdir()
    _ckpt(w / "run" / "last.ckpt", train_config={}, optimizer={}, scaler={},
          rng={"torch": torch.get_rng_state(), "augment": torch.get_rng_state()},
          trainer={"step": "many"})
    return "crnn", ["train", "--data", w / "data", "--out", w / "run", "--resume"]


@case("train-resume-optimizer-missing-groups", 1, "optimizer")
def _(w):
    import dataclasses

    from crnn.train import State

    (w / "run").mkdir()
    _ckpt(w / "run" / "last.ckpt", train_config={}, optimizer={}, scaler={},
          rng={"torch": torch.get_rng_state(), "augment": torch.get_rng_state()},
          trainer=dataclasses.asdict(State()))
    return "crnn", ["train", "--data", w / "data", "--out", w / "run", "--resume"]


@case("bench-seed-negative", 2, "--seed")
def _(w):
    return "crnn-bench", ["run", "--suite", "tiny", "--seed", "-4", "--out", w / "bench"]


@case("train-second-writer", 2, "in use")
def _(w):
    run = w / "run"
    run.mkdir()
    fd = os.open(run / LOCK_NAME, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)  # another train holds it; released when fd is collected
    _HELD.append(fd)
    return "crnn", ["train", "--data", w / "data", "--out", run, "--size", "tiny",
                    "--epochs", "1", "--width", "64"]


_HELD: list[int] = []


for _name, _args, _needle in [
    ("onto-checkpoint", ["-o", "{w}/model.ckpt"], "checkpoint itself"),
    ("into-a-folder", ["-o", "{w}/data"], "is a directory"),
    ("format-unknown", ["--format", "zip"], "zip"),
]:
    def _setup(w, args=_args):
        return "crnn", ["export", "--ckpt", w / "model.ckpt",
                        *[a.format(w=w) for a in args]]
    case(f"export-{_name}", 2, _needle)(_setup)


@case("export-unwritable-path", 1, "model.ckpt")
def _(w):
    return "crnn", ["export", "--ckpt", w / "model.ckpt", "-o", w / "model.ckpt" / "m.onnx"]


@case("export-corrupt-checkpoint", 1, "cannot read checkpoint")
def _(w):
    (w / "bad.ckpt").write_bytes(b"PK\x03\x04garbage")
    return "crnn", ["export", "--ckpt", w / "bad.ckpt"]


# crnn-bench: reports that are not reports, outputs onto inputs, suites of bad values.

for _name, _content in [("garbage", b"{not json"), ("png", None), ("list", b"[1, 2]"),
                        ("no-tables", b'{"meta": {}}'),
                        ("no-environment", b'{"tables": {}, "meta": {}}'),
                        ("bad-table", b'{"tables": {"t": 3}, "meta": {"environment": '
                                      b'{"date": 1, "git_commit": 2}}}'),
                        ("binary", bytes(range(256)))]:
    def _setup(w, content=_content, name=_name):
        f = w / f"{name}.json"
        if content is None:
            _captcha("1").save(f, "PNG")
        else:
            f.write_bytes(content)
        return "crnn-bench", ["compare", w / "report", f]
    case(f"compare-{_name}", 2, "not a crnn-bench report")(_setup)


@case("compare-folder-without-report", 2, "no report")
def _(w):
    return "crnn-bench", ["compare", w / "report", w / "data"]


@case("compare-out-onto-input", 2, "--out")
def _(w):
    r = w / "report" / "report.json"
    return "crnn-bench", ["compare", r, w / "report", "-o", r]


@case("headline-write-onto-report", 2, "--write")
def _(w):
    return "crnn-bench", ["headline", "--docs", w / "report", "--write",
                          w / "report" / "report.json"]


def _suite(body: str):
    def setup(w):
        (w / "s.toml").write_text(body)
        return "crnn-bench", ["run", "--suite", w / "s.toml", "--out", w / "bench"]
    return setup


for _name, _body, _needle in [
    ("wrong-type", '[data]\nwidth = "wide"\n', "data.width"),
    ("out-of-range", "[train]\nbatch_size = 0\n", "train.batch_size"),
    ("bool-for-int", "[decode]\nrows = true\n", "decode.rows"),
    ("unknown-table", "[dataa]\ntrain = 5\n", "dataa"),
    ("unknown-key", "[train]\nminuets = 5\n", "train.minuets"),
    ("table-not-table", "data = 5\n", "data must be a table"),
    ("list-item-type", '[throughput]\nbatch_sizes = [1, "x"]\n', "throughput.batch_sizes"),
    ("model-unknown", '[[models]]\nname = "gpt"\n', "models[0].name"),
    ("model-without-name", '[[models]]\nsize = "tiny"\n', "models[0].name"),
    ("charset-bad", '[data]\ncharset = ""\n', "data.charset"),
    ("noise-unknown", '[data]\nnoise = "loud"\n', "data.noise"),
    ("seed-negative", "seed = -1\n", "seed"),
    ("not-toml", "[[[", "not valid TOML"),
]:
    case(f"bench-suite-{_name}", 2, _needle)(_suite(_body))


@case("bench-out-is-a-file", 2, "is a file")
def _(w):
    (w / "s.toml").write_text('name = "s"\n')
    return "crnn-bench", ["run", "--suite", w / "s.toml", "--out", w / "model.ckpt"]


@case("bench-out-under-a-file", 1, "model.ckpt")
def _(w):
    (w / "s.toml").write_text('name = "s"\n')
    return "crnn-bench", ["run", "--suite", w / "s.toml", "--out", w / "model.ckpt" / "b"]


@case("bench-out-is-real", 2, "--real")
def _(w):
    (w / "s.toml").write_text('name = "s"\n')
    return "crnn-bench", ["run", "--suite", w / "s.toml", "--out", w / "data", "--real",
                          w / "data"]


@case("bench-second-writer", 2, "in use")
def _(w):
    (w / "s.toml").write_text('name = "s"\n')
    (w / "bench").mkdir()
    fd = os.open(w / "bench" / LOCK_NAME, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    _HELD.append(fd)
    return "crnn-bench", ["run", "--suite", w / "s.toml", "--out", w / "bench"]


def _group(prog: str):
    if prog == "crnn":
        from crnn.cli import cli
    else:
        from crnn.bench.cli import cli
    return cli


@pytest.mark.parametrize("name,setup,code,needle", CASES, ids=[c[0] for c in CASES])
def test_hostile_input_is_refused_in_one_line_and_changes_nothing(
        name, setup, code, needle, work, cli_run):
    Path("/tmp/crnn-hostile-pwned").unlink(missing_ok=True)
    prog, args = setup(work)
    before = _tree(work)
    try:
        got, out, err = cli_run(_group(prog), prog, *args)
    finally:
        while _HELD:
            os.close(_HELD.pop())
    assert got == code, err
    assert err.count("\n") == 1 and err.startswith(f"{prog}: error: "), err
    assert needle in err, err
    assert "Traceback" not in err + out and "internal error" not in err
    assert _tree(work) == before
    assert not Path("/tmp/crnn-hostile-pwned").exists()


def test_a_second_bench_or_train_holds_no_lock_after_a_refusal(work):
    """A refused train leaves no lock file and no run folder behind (the table checks the
    tree); and the lock it took is free again for the next writer."""
    from crnn.train import run_dir_lock

    run = work / "run"
    with pytest.raises(RuntimeError), run_dir_lock(run):
        raise RuntimeError("refused")
    assert not run.exists()
    with exclusive_lock(run):
        pass


def test_skip_bad_counts_the_oversized_and_reads_the_rest(work, cli_run):
    from crnn.cli import cli

    _oversized_png(work / "data" / "1111.png")
    code, out, err = cli_run(cli, "crnn", "predict", "--ckpt", work / "model.ckpt",
                             work / "data", "--skip-bad", "--device", "cpu")
    assert code == 0, err
    assert "skipped 1 unreadable" in err
    assert len(out.splitlines()) == 4 and "1111.png" not in out


def test_overwrite_removes_only_the_run_files(work):
    """--overwrite on a crnn run folder: its run files go, the user's own files stay."""
    from crnn.train import RUN_FILES, TrainConfig, check_run_dir, start_run_dir

    run = work / "run"
    run.mkdir()
    (run / "notes.txt").write_text("keep me")
    for name in RUN_FILES:
        (run / name).write_text("old")
    (run / "config.json").write_text(json.dumps({"train": {}, "model": {}}))
    cfg = TrainConfig(data=str(work / "data"), out=str(run), overwrite=True)
    assert check_run_dir(cfg, run) is None  # a run folder may be started afresh
    start_run_dir(run, None)
    assert sorted(p.name for p in run.iterdir()) == ["notes.txt"]


# --- images of every mode Pillow opens ------------------------------------------------------

def _in_mode(mode: str) -> Image.Image:
    """The same captcha (ground 235, text 15) in ``mode``, at that mode's full scale."""
    a = np.asarray(_captcha("12ab"))
    if mode.startswith("I;16"):
        dtype = ">u2" if mode == "I;16B" else "<u2"
        return Image.frombytes(mode, (64, 32), (a.astype(np.uint16) * 257).astype(dtype)
                               .tobytes())
    if mode == "I":
        return Image.fromarray(a.astype(np.int32) * 257, "I")
    if mode == "F":
        return Image.fromarray(a.astype(np.float32) / 255, "F")
    return _captcha("12ab").convert(mode)


MODES = ["1", "L", "LA", "P", "PA", "RGB", "RGBA", "CMYK", "YCbCr", "LAB", "HSV", "I;16",
         "I;16B", "I;16L", "I", "F"]


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_keeps_its_contrast(mode, tmp_path):
    image = _in_mode(mode)
    assert image.mode == mode
    grays = [to_gray(image, 32, 64)]
    for fmt, suffix in (("PNG", ".png"), ("TIFF", ".tif")):  # and read back from a file
        path = tmp_path / f"x{suffix}"
        try:
            image.save(path, fmt)
        except (OSError, ValueError, KeyError):
            continue
        with Image.open(path) as im:
            reopened = im.mode
        grays.append(load_gray(path, 32, 64))
        if reopened == mode:
            break
    ref = np.asarray(_captcha("12ab")) < 128
    for gray in grays:
        assert gray.shape == (32, 64)
        assert gray[~ref].mean() > 200, f"{mode}: the ground is not light"
        assert gray[ref].mean() < 60, f"{mode}: the text is not dark"


def test_a_16_bit_png_is_not_all_white(tmp_path):
    path = tmp_path / "deep.png"
    _in_mode("I;16").save(path)
    gray = load_gray(path, 32, 64)
    assert gray.min() < 30 and gray.max() > 220


def test_wide_modes_out_of_their_nominal_range_are_stretched():
    a = np.asarray(_captcha("12ab")).astype(np.float32) * 1000 - 50_000  # negative, wide
    gray = to_gray(Image.fromarray(a, "F"), 32, 64)
    assert gray.min() == 0 and gray.max() == 255


# --- the CLI is generated from the configs ------------------------------------------------

def test_every_train_config_field_is_an_option_with_its_bounds(cli_run):
    import dataclasses

    from crnn.cli import cli
    from crnn.train import TrainConfig

    params = {p.name: p for p in cli.commands["train"].params}
    for f in dataclasses.fields(TrainConfig):
        if not f.metadata.get("cli", True):
            continue
        assert f.name in params and f.metadata["help"], f.name
        numeric = f.type.split(" ")[0] in ("int", "float")
        assert not numeric or f.metadata["hi"] is not None, f"{f.name} has no upper bound"


# --- property: random option values never crash crnn predict ------------------------------

_values = st.one_of(st.integers(-10**12, 10**12).map(str), st.floats(allow_nan=True).map(str),
                    st.text(max_size=8), st.sampled_from(["0", "1", "2-4", "abc", "", "9-1"]))
_options = st.lists(st.tuples(st.sampled_from(["--beam", "--allowed", "--length",
                                               "--batch-size", "--device", "--skip-bad",
                                               "--json"]), _values), max_size=4)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(options=_options)
def test_predict_never_crashes_on_random_options(options, base, cli_run):
    from crnn.cli import cli

    args = ["predict", "--ckpt", base / "model.ckpt", base / "data" / "12ab.png"]
    for flag, value in options:
        args += [flag] if flag in ("--skip-bad", "--json") else [flag, value]
    if "--device" not in args:
        args += ["--device", "cpu"]
    code, _, err = cli_run(cli, "crnn", *args)
    assert code in (0, 1, 2)
    assert "Traceback" not in err and "internal error" not in err, err
    assert code == 0 or err.count("\n") == 1, err
