"""Leakage checks: validation/test images that are training images are refused, by decoded
pixels (a re-encoded copy counts), in crnn train, crnn eval and crnn-bench."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from crnn import leakage
from crnn.data.sources import load_samples
from plumbing.errors import UsageError


def _reencoded_copies(src: Path, dest: Path, k: int) -> Path:
    """The first ``k`` images of dataset ``src`` re-saved at another PNG compression level,
    as a folder named by label (file bytes differ, pixels do not)."""
    dest.mkdir()
    s = load_samples(src)
    for i, (path, label) in enumerate(list(zip(s.paths, s.labels))[:k]):
        with Image.open(path) as im:
            im.save(dest / f"{label}_{i}.png", compress_level=0 if i % 2 else 9)
    return dest


def test_a_reencoded_copy_has_the_same_pixel_hash(tmp_path, tiny_dataset):
    copies = _reencoded_copies(tiny_dataset, tmp_path / "copies", 4)
    originals = load_samples(tiny_dataset).paths[:4]
    for orig, copy in zip(originals, sorted(copies.iterdir(), key=lambda p: p.stem[-1])):
        assert orig.read_bytes() != copy.read_bytes()
        assert leakage.pixel_hash(orig) == leakage.pixel_hash(copy)
    train = leakage.pixel_hashes(load_samples(tiny_dataset).paths)
    assert train.dtype == np.uint64 and len(set(train.tolist())) == len(train)
    assert leakage.overlap(leakage.pixel_hashes(list(copies.iterdir())), train) == 4
    with pytest.raises(UsageError, match="4 of the 4 images of test are also training"):
        leakage.guard("test", leakage.pixel_hashes(list(copies.iterdir())), train, False)
    assert leakage.guard("test", train[:3], train, allow=True) == 3


def test_train_refuses_an_overlapping_validation_set_and_eval_checks_the_checkpoint(
        tmp_path, tiny_dataset, crnn_cli):
    val = _reencoded_copies(tiny_dataset, tmp_path / "val", 5)
    out = tmp_path / "run"
    base = ["train", "--data", tiny_dataset, "--val", val, "--out", out, "--model", "cnn-ctc",
            "--size", "tiny", "--epochs", "1", "--batch-size", "16", "--quiet"]
    code, _, err = crnn_cli(*base)
    assert code == 2 and "5 of the 5 images" in err and "--allow-overlap" in err
    assert not out.exists()  # refused before the run directory is touched
    code, _, err = crnn_cli(*base, "--allow-overlap")
    assert code == 0, err
    assert json.loads((out / "config.json").read_text())["val_overlap"] == 5
    state = torch.load(out / "last.ckpt", weights_only=True)
    assert state["train_hashes"].dtype == torch.uint64 and len(state["train_hashes"]) == 64

    code, _, err = crnn_cli("eval", "--ckpt", out / "last.ckpt", "--data", val, "--json")
    assert code == 2 and "also training images" in err
    code, out_, err = crnn_cli("eval", "--ckpt", out / "last.ckpt", "--data", val, "--json",
                               "--allow-overlap")
    assert code == 0 and json.loads(out_)["train_overlap"] == 5 and "inflated" in err


def test_bench_refuses_a_test_set_made_with_the_training_seed(tmp_path, tiny_dataset):
    """Two captchagen runs with the same spec and seed give the same images, by design."""
    from captchagen import CaptchaSpec, DatasetJob, parse_charset, write_dataset
    from crnn.bench.runner import Bench, TestSet
    from crnn.bench.suite import load_suite

    spec = CaptchaSpec(charset=parse_charset("alnum"), min_len=3, max_len=4)
    again = tmp_path / "again"
    write_dataset(DatasetJob(spec=spec, n=16, seed=5), again, workers=1)  # tiny_dataset's
    other = tmp_path / "other"
    write_dataset(DatasetJob(spec=spec, n=16, seed=6), other, workers=1)
    b = Bench(load_suite("tiny"), tmp_path / "bench", "cpu", None, progress=False)
    b.check_leakage(tiny_dataset, [TestSet("other seed", other)])
    assert b.overlaps == {"other seed": 0}
    with pytest.raises(UsageError, match="16 of the 16 images of same seed"):
        b.check_leakage(tiny_dataset, [TestSet("same seed", again)])
    b.allow_overlap = True
    b.check_leakage(tiny_dataset, [TestSet("same seed", again)])
    assert b.overlaps["same seed"] == 16 and "inflated" in b.warnings[-1]
