"""Data readers, evaluation, prediction, export, and bad input for ``crnn``."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from crnn.checkpoint import load_model, save_checkpoint
from crnn.data.sources import folds, label_from_name, load_samples, split
from crnn.export import export
from crnn.metrics import edit_ops, score
from crnn.models import ModelConfig, create_model
from plumbing.errors import UsageError

KAGGLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "captcha_images_v2"


@pytest.fixture
def folder(tmp_path, tiny_dataset):
    """The tiny dataset as a folder of images named by label (duplicates get _N)."""
    from captchagen.manifest import read_dataset

    d = tmp_path / "folder"
    d.mkdir()
    seen: dict[str, int] = {}
    for row in read_dataset(tiny_dataset).rows[:20]:
        k = seen.get(row["label"], 0)
        seen[row["label"]] = k + 1
        name = row["label"] if k == 0 else f"{row['label']}_{k}"
        shutil.copy(tiny_dataset / row["file"], d / f"{name}.png")
    (d / "notes.txt").write_text("not an image")
    return d


def test_folder_reader_takes_labels_from_file_names(folder):
    assert label_from_name(Path("2b827_17.png")) == "2b827"
    assert label_from_name(Path("2b827.png")) == "2b827"
    s = load_samples(folder)
    assert len(s) == 20 and s.origin == "folder" and s.charset == ""
    assert all(p.suffix == ".png" for p in s.paths)
    train, val = split(s, 0.25, seed=1)
    assert len(val) == 5 and set(train.paths).isdisjoint(val.paths)
    assert split(s, 0.25, seed=1)[1].paths == val.paths


def test_folds_hold_every_image_out_once_and_the_first_is_the_split(folder):
    s = load_samples(folder)  # 20 images, held-out parts of 5
    parts = folds(s, 0.25, 1, 4)
    assert [(p.paths, q.paths) for p, q in parts[:1]] == [
        tuple(x.paths for x in split(s, 0.25, seed=1))]
    held = [p for _, q in parts for p in q.paths]
    assert sorted(held) == sorted(s.paths)  # each image held out exactly once
    for train, test in parts:
        assert len(test) == 5 and set(train.paths) == set(s.paths) - set(test.paths)
    last = folds(s, 0.3, 1, 4)  # 6 held out: the last part is the remaining 2
    assert [len(q) for _, q in last] == [6, 6, 6, 2]
    assert sorted(p for _, q in last for p in q.paths) == sorted(s.paths)
    assert all(set(t.paths) == set(s.paths) - set(q.paths) for t, q in last)
    with pytest.raises(UsageError, match="use 1 to 4 folds"):
        folds(s, 0.25, 1, 5)


@pytest.mark.skipif(not KAGGLE.is_dir(), reason="captcha_images_v2 not present")
def test_the_kaggle_set_reads_as_1040_labelled_images():
    s = load_samples(KAGGLE)
    assert len(s) == 1040
    assert all(len(t) == 5 and set(t) <= set("2345678bcdefgmnpwxy") for t in s.labels)
    from crnn.data.images import load_gray

    gray = load_gray(s.paths[0], 32, 128)  # RGBA on white, not on black
    assert gray.shape == (32, 128) and np.median(gray) > 150


def test_metrics_on_known_cases():
    assert edit_ops("abcd", "abxd") == (1, [("c", "x")])
    assert edit_ops("abc", "") == (3, [])
    m = score(["abcd", "ab", "xyz"], ["abcd", "ac", "xy"])
    assert m["sequence_accuracy"] == pytest.approx(1 / 3)
    assert m["char_accuracy"] == pytest.approx(1 - 2 / 9)
    assert m["ned"] == pytest.approx((0 + 1 / 2 + 1 / 3) / 3)
    assert m["by_length"]["2"] == {"n": 1, "sequence_accuracy": 0.0}
    assert m["confusions"][0] == {"true": "b", "predicted": "c", "count": 1} or \
        m["confusions"][0]["count"] == 1


def test_eval_json_grid_and_predict(trained, tiny_dataset, tmp_path, crnn_cli):
    code, out, err = crnn_cli("eval", "--ckpt", trained, "--data", tiny_dataset, "--json",
                              "--grid", tmp_path / "worst.png", "--allow-overlap")
    assert code == 0, err
    m = json.loads(out)
    assert m["n"] == 64 and m["sequence_accuracy"] > 0.9
    assert {"char_accuracy", "ned", "by_length", "confusions"} <= set(m)
    code, out, _ = crnn_cli("eval", "--ckpt", trained, "--data", tiny_dataset,
                            "--allow-overlap")
    assert "sequence accuracy" in out and "by length" in out
    images = sorted((tiny_dataset / "images").iterdir())[:3]
    code, out, err = crnn_cli("predict", "--ckpt", trained, *images, "--json")
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["path"] for r in rows] == [str(p) for p in images]
    assert all(0 <= r["confidence"] <= 1 for r in rows)
    code, out2, _ = crnn_cli("predict", "--ckpt", trained, *images, "--json", "--beam", "5")
    beam = [json.loads(line) for line in out2.splitlines()]
    # Beam search finds the labelling at least as probable as greedy's single best path.
    assert all(b["confidence"] >= g["confidence"] - 1e-6 for b, g in zip(beam, rows))
    code, out3, _ = crnn_cli("predict", "--ckpt", trained, images[0], "--length", "2",
                             "--allowed", "0123")
    text = out3.split("\t")[1]
    assert len(text) == 2 and set(text) <= set("0123")


@pytest.mark.parametrize("name", ["crnn", "cnn-fixed"])
@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_export_matches_torch(tmp_path, name, fmt):
    import onnxruntime as ort

    cfg = ModelConfig(name=name, charset="0123456789", size="tiny", width=96, max_len=5)
    ckpt = tmp_path / "m.ckpt"
    save_checkpoint(ckpt, create_model(cfg), cfg, {})
    result = export(ckpt, fmt)
    assert result["max_abs_diff"] < 1e-4
    model, _, _ = load_model(ckpt)
    widths = (96, 160) if cfg.head.width_is_free else (96,)
    for w in widths:
        x = torch.randn(5, 1, 32, w)
        with torch.no_grad():
            want = model(x).numpy()
        if fmt == "onnx":
            sess = ort.InferenceSession(result["path"], providers=["CPUExecutionProvider"])
            got = sess.run(None, {"image": x.numpy()})[0]
            meta = sess.get_modelmeta().custom_metadata_map
            assert meta["charset"] == "0123456789"
        else:
            got = torch.jit.load(result["path"])(x).detach().numpy()
        np.testing.assert_allclose(got, want, atol=1e-4)


@pytest.mark.parametrize("name", ["crnn", "cnn-fixed"])
def test_reader_backends_agree_with_the_plain_model(tmp_path, name):
    from crnn.inference import Reader

    cfg = ModelConfig(name=name, charset="0123456789", size="tiny", max_len=5)
    ckpt = tmp_path / "m.ckpt"
    save_checkpoint(ckpt, create_model(cfg), cfg, {})
    model, _, _ = load_model(ckpt)
    images = torch.randint(0, 256, (6, 32, 128), dtype=torch.uint8)
    want = Reader(model.eval(), cfg, torch.device("cpu")).forward(images)
    for backend in ("onnx", "torch"):  # onnxruntime; folded batch norms, channels-last
        got = Reader.from_checkpoint(ckpt, "cpu", backend=backend).forward(images)
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
    with pytest.raises(UsageError, match="unknown backend 'tensorrt'"):
        Reader.from_checkpoint(ckpt, "cpu", backend="tensorrt")


# Bad input ---------------------------------------------------------------------------------

def _train(crnn_cli, data, out, *extra):
    return crnn_cli("train", "--data", data, "--out", out, "--size", "tiny", "--epochs", "1",
                    "--batch-size", "8", "--quiet", *extra)


def test_corrupt_image_is_named_or_skipped(tmp_path, folder, crnn_cli):
    (folder / "abcd.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not really a png")
    code, _, err = _train(crnn_cli, folder, tmp_path / "r1")
    assert code == 2 and "abcd.png" in err and "--skip-bad" in err and err.count("\n") == 1
    assert not (tmp_path / "r1").exists()
    code, out, err = _train(crnn_cli, folder, tmp_path / "r2", "--skip-bad")
    assert code == 0, err
    assert "skipped 1 unreadable" in out


def test_labels_outside_the_charset_are_listed(tmp_path, tiny_dataset, folder, crnn_cli):
    shutil.copy(next(folder.glob("*.png")), folder / "AB#1.png")
    code, _, err = _train(crnn_cli, tiny_dataset, tmp_path / "r", "--val", folder)
    assert code == 2 and "'#AB'" in err and "AB#1" in err


def test_empty_datasets(tmp_path, crnn_cli):
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = _train(crnn_cli, empty, tmp_path / "r")
    assert code == 2 and "no images" in err
    (empty / "dataset.json").write_text(json.dumps({"charset": "ab"}))
    (empty / "manifest.csv").write_text("index,file,label\n")
    code, _, err = _train(crnn_cli, empty, tmp_path / "r")
    assert code == 2 and "empty dataset" in err
    code, _, err = _train(crnn_cli, tmp_path / "missing", tmp_path / "r")
    assert code == 2 and "not found" in err


def test_model_too_narrow_for_the_labels(tmp_path, tiny_dataset, crnn_cli):
    code, _, err = _train(crnn_cli, tiny_dataset, tmp_path / "r", "--width", "32")
    assert code == 2 and "--width 36" in err
    code, _, err = _train(crnn_cli, tiny_dataset, tmp_path / "r", "--model", "cnn-fixed",
                          "--max-len", "3")
    assert code == 2 and "--max-len 4" in err
    assert not (tmp_path / "r").exists()


def test_checkpoints_of_another_charset_or_kind_are_refused(tmp_path, tiny_dataset, crnn_cli):
    cfg = ModelConfig(name="crnn", charset="0123456789", size="tiny")
    digits = tmp_path / "digits.ckpt"
    save_checkpoint(digits, create_model(cfg), cfg, {})
    code, _, err = crnn_cli("eval", "--ckpt", digits, "--data", tiny_dataset)
    assert code == 2 and "outside the charset" in err
    with pytest.raises(UsageError, match="name='crnn', expected 'cnn-ctc'"):
        load_model(digits, expect=ModelConfig(name="cnn-ctc", charset="0123456789",
                                              size="tiny"))
    junk = tmp_path / "junk.ckpt"
    junk.write_text("hello")
    code, _, err = crnn_cli("eval", "--ckpt", junk, "--data", tiny_dataset)
    assert code == 1 and "cannot read checkpoint" in err  # a corrupt file: exit 1


class _Exploit:
    def __reduce__(self):
        return (Path.touch, (Path("/tmp/crnn-pwned"),))


def test_checkpoints_never_unpickle_code(tmp_path, tiny_dataset, crnn_cli):
    evil = tmp_path / "evil.ckpt"
    Path("/tmp/crnn-pwned").unlink(missing_ok=True)
    torch.save({"format": "crnn-checkpoint/1", "x": _Exploit()}, evil, pickle_module=pickle)
    code, _, err = crnn_cli("eval", "--ckpt", evil, "--data", tiny_dataset)
    assert code == 1 and "cannot read checkpoint" in err  # a corrupt file: exit 1
    assert not Path("/tmp/crnn-pwned").exists()


def test_train_option_defaults_are_the_config_defaults():
    import dataclasses

    import click

    from crnn.cli import cli
    from crnn.train import TrainConfig

    fields = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    train = cli.commands["train"]
    ctx = click.Context(train)
    options = {p.name: p.get_default(ctx) for p in train.params
               if p.name in fields and not p.required}
    assert len(options) > 25
    assert {k: v for k, v in options.items() if v != fields[k]} == {}
