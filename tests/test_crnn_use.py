"""Using a trained reader from other code and tools: ``Reader.read`` on every kind of input,
``crnn predict -``, the ddddocr export, packaged suites and progress bars."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from crnn.data.images import load_gray
from crnn.inference import Reader, Reading
from plumbing.errors import UsageError


@pytest.fixture(scope="module")
def reader(trained):
    return Reader.from_checkpoint(trained, "cpu")


@pytest.fixture(scope="module")
def images(tiny_dataset):
    return sorted((tiny_dataset / "images").iterdir())[:6]


def test_read_takes_every_kind_of_image_and_reads_as_training_preprocessed(reader, images):
    cfg = reader.config
    want_texts, want_conf = reader.read_batch(
        torch.from_numpy(np.stack([load_gray(p, cfg.height, cfg.width) for p in images])))
    pil = [Image.open(p).convert("RGB") for p in images]
    rgba = [im.convert("RGBA") for im in pil]
    kinds = {
        "str": [str(p) for p in images], "Path": images,
        "bytes": [p.read_bytes() for p in images], "PIL": pil,
        "numpy gray": [np.asarray(im.convert("L")) for im in pil],
        "numpy RGB": [np.asarray(im) for im in pil],
        "numpy RGBA": [np.asarray(im) for im in rgba],
        "numpy float": [np.asarray(im, dtype=np.float32) / 255 for im in pil],
        "torch (N, C, H, W)": torch.from_numpy(np.stack([np.asarray(im) for im in pil])
                                               ).permute(0, 3, 1, 2),
    }
    for kind, batch in kinds.items():
        got = reader.read(batch)
        assert [r.text for r in got] == want_texts, kind
        np.testing.assert_allclose([r.confidence for r in got], want_conf.numpy(), atol=1e-3,
                                   err_msg=kind)
    mixed = [images[0], images[1].read_bytes(), pil[2], np.asarray(pil[3]), str(images[4])]
    assert [r.text for r in reader.read(mixed)] == want_texts[:5]
    one = reader.read(images[0].read_bytes())
    assert isinstance(one, Reading) and one.text == want_texts[0]
    assert 0 <= one.confidence <= 1
    # The model's own input size takes the fast path: no PIL round trip, same result.
    gray = torch.from_numpy(np.stack([load_gray(p, cfg.height, cfg.width) for p in images]))
    assert [r.text for r in reader.read(gray)] == want_texts
    assert reader.read([]) == []


def test_read_refuses_what_is_not_an_image(reader, tmp_path):
    cases = [(b"not a png", "cannot decode 9 bytes"),
             (np.zeros((2, 3, 4, 5), np.uint8), "is not \\(H, W\\)"),
             (np.full((8, 8), 2.0), "must lie in \\[0, 1\\]"),
             (np.zeros((8, 8), np.int64), "not uint8 or float"),
             (tmp_path / "missing.png", "missing.png"),
             (3.5, "cannot read a float")]
    for x, message in cases:
        with pytest.raises(UsageError, match=message):
            reader.read(x)


def test_predict_reads_one_image_from_stdin(trained, images, reader):
    want = reader.read(images[0])
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    cmd = [sys.executable, "-m", "crnn", "predict", "--ckpt", str(trained), "-", "--device",
           "cpu"]
    done = subprocess.run(cmd, input=images[0].read_bytes(), capture_output=True, env=env,
                          timeout=300)
    assert done.returncode == 0, done.stderr.decode()
    name, text, conf = done.stdout.decode().rstrip("\n").split("\t")
    assert (name, text) == ("-", want.text) and abs(float(conf) - want.confidence) < 1e-3
    empty = subprocess.run(cmd, input=b"", capture_output=True, env=env, timeout=300)
    assert empty.returncode == 2 and b"no image bytes on stdin" in empty.stderr
    assert b"Traceback" not in empty.stderr


def test_ddddocr_export_reads_like_our_reader(trained, tiny_dataset, reader, tmp_path,
                                              crnn_cli):
    """The exported graph on ddddocr's input (any height, [0, 1]) gives our reader's texts;
    with ddddocr installed, ddddocr itself reads them."""
    import onnxruntime as ort

    code, out, err = crnn_cli("export", "--ckpt", trained, "--format", "ddddocr",
                              "--out", tmp_path / "m.onnx", "--ddddocr-height", "60")
    assert code == 0 and "m.charsets.json" in out, err
    info = json.loads((tmp_path / "m.charsets.json").read_text())
    assert info["charset"] == ["", *reader.config.charset]
    assert info["image"] == [-1, 60] and info["channel"] == 1 and info["word"] is False
    paths = sorted((tiny_dataset / "images").iterdir())[:16]
    want = [r.text for r in reader.read(paths)]
    # What ddddocr feeds: grayscale, [0, 1], resized to its height first (here a no-op).
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    texts = []
    for p in paths:
        x = np.asarray(Image.open(p).convert("L"), np.float32)[None, None] / 255
        ids = session.run(None, {"input1": x})[0][:, 0].argmax(-1)
        texts.append("".join(info["charset"][i] for k, i in enumerate(ids)
                             if i and (k == 0 or i != ids[k - 1])))
    assert texts == want
    ddddocr = pytest.importorskip("ddddocr")
    ocr = ddddocr.DdddOcr(ocr=False, det=False, show_ad=False,
                          import_onnx_path=str(tmp_path / "m.onnx"),
                          charsets_path=str(tmp_path / "m.charsets.json"))
    assert [ocr.classification(p.read_bytes()) for p in paths] == want


def test_ddddocr_export_keeps_doubled_characters_of_fixed_length_models(tmp_path):
    from crnn.checkpoint import save_checkpoint
    from crnn.export import export
    from crnn.models import ModelConfig, create_model

    cfg = ModelConfig(name="cnn-fixed", charset="0123456789", size="tiny", max_len=5)
    save_checkpoint(tmp_path / "f.ckpt", create_model(cfg), cfg, {})
    r = export(tmp_path / "f.ckpt", "ddddocr")
    assert r["max_abs_diff"] < 1e-4
    import onnxruntime as ort

    heads = ort.InferenceSession(r["path"], providers=["CPUExecutionProvider"]).run(
        None, {"input1": np.random.default_rng(0).random((1, 1, 50, 150), np.float32)})[0]
    assert heads.shape == (1, 10, 11) and (heads[0, 1::2].argmax(-1) == 0).all()


def test_suites_load_from_the_package_in_any_folder(tmp_path):
    """Packaged suites come through importlib.resources, whatever the working folder."""
    code = ("from crnn.bench.suite import load_suite, packaged_suites;"
            "print(sorted(packaged_suites()), load_suite('tiny').name)")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    shipped = sorted(p.stem for p in (Path(__file__).resolve().parents[1] / "crnn" / "bench"
                                      / "suites").glob("*.toml"))
    assert {"quick", "standard", "tiny", "transfer"} <= set(shipped)
    assert done.stdout.split() == [*str(shipped).split(), "tiny"]


def test_suite_paths_still_work_and_a_missing_file_is_named(tmp_path):
    from crnn.bench.suite import load_suite, packaged_suites

    mine = tmp_path / "mine.toml"
    mine.write_text(packaged_suites()["tiny"].read_text().replace('name = "tiny"', 'name = "mine"'))
    assert load_suite(str(mine)).name == "mine"
    with pytest.raises(UsageError, match=r"nope\.toml does not exist"):
        load_suite(str(tmp_path / "nope.toml"))


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bars_show_on_a_terminal_only_and_not_when_quiet(images, monkeypatch):
    from crnn.models import ModelConfig, create_model
    from crnn.predict import predict

    cfg = ModelConfig(name="cnn-ctc", charset="0123456789abcdefghijklmnopqrstuvwxyz",
                      size="tiny")
    reader = Reader(create_model(cfg).eval(), cfg, torch.device("cpu"))  # untrained is enough
    term = _Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    predict(reader, images, batch_size=2, progress=True)
    shown = term.getvalue()
    assert "decoding images" in shown and "reading" in shown and "/6 [" in shown
    quiet = _Terminal()
    monkeypatch.setattr(sys, "stderr", quiet)
    predict(reader, images, progress=False)
    assert quiet.getvalue() == ""
    piped = io.StringIO()  # not a terminal: no bar even when asked
    monkeypatch.setattr(sys, "stderr", piped)
    predict(reader, images, progress=True)
    assert piped.getvalue() == ""


def test_merge_reports_progress_per_image(tmp_path):
    from captchagen import CaptchaSpec, DatasetJob, parse_charset, write_dataset
    from captchagen.dataset import merge_shards

    spec = CaptchaSpec(charset=parse_charset("digits"), min_len=4, max_len=4)
    parts = []
    for k in (1, 2):
        parts.append(tmp_path / f"part{k}")
        write_dataset(DatasetJob(spec=spec, n=6, seed=1, shard=(k, 2)), parts[-1], workers=1)
    calls = []
    total = merge_shards(parts, tmp_path / "all", progress=lambda d, t: calls.append((d, t)))
    assert total == 6 and calls == [(i, 6) for i in range(1, 7)]


def test_training_bar_has_a_total_for_steps_and_for_minutes(monkeypatch):
    from crnn.distributed import Dist
    from crnn.train import State, TrainConfig, _bar

    monkeypatch.setattr(sys, "stderr", _Terminal())
    d = Dist()
    steps = _bar(TrainConfig(data="d", out="o", epochs=2), d, 40, State(step=5))
    assert steps.total == 40 and steps.n == 5
    steps.close()
    clock = _bar(TrainConfig(data="d", out="o", minutes=2.0), d, None, State(elapsed=30.0))
    clock.update(1)
    assert clock.bar.total == 120 and 30 <= clock.bar.n <= 120
    clock.set_postfix({"loss": "1.0"})
    assert "left" in str(clock.bar)
    clock.close()
    assert _bar(TrainConfig(data="d", out="o", minutes=2.0, progress=False), d, None,
                State()) is None
