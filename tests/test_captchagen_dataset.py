"""captchagen datasets: determinism, resume, shards, manifest/image agreement."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from captchagen import CaptchaSpec, DatasetJob, iter_captchas, parse_charset, write_dataset
from captchagen.manifest import read_dataset
from tests.helpers import tree_digest

SMALL = ["--len", "4-6", "--charset", "alnum", "--quiet"]


def test_same_seed_same_bytes_whatever_the_worker_count(tmp_path, gen):
    for workers in (1, 2, 3):
        code, _, err = gen("make", "--n", 70, "--workers", workers, "--out",
                           tmp_path / f"w{workers}", *SMALL)
        assert code == 0, err
    one = tree_digest(tmp_path / "w1")
    assert len(one) == 74  # 70 images + manifest + dataset.json + metadata.csv + gt.txt
    assert tree_digest(tmp_path / "w2") == one
    assert tree_digest(tmp_path / "w3") == one


def test_other_seed_other_data(tmp_path, gen):
    gen("make", "--n", 10, "--out", tmp_path / "a", *SMALL)
    gen("make", "--n", 10, "--seed", 1, "--out", tmp_path / "b", *SMALL)
    a, b = read_dataset(tmp_path / "a"), read_dataset(tmp_path / "b")
    assert [r["label"] for r in a.rows] != [r["label"] for r in b.rows]


def test_manifest_and_images_agree(tmp_path, gen):
    out = tmp_path / "d"
    code, _, err = gen("make", "--n", 50, "--out", out, "--len", "3-5", "--charset", "digits",
                       "--grayscale", "--width", 120, "--height", 40, "--quiet")
    assert code == 0, err
    data = read_dataset(out)
    assert data.info["complete"] and data.info["count"] == 50 and data.charset == "0123456789"
    assert [int(r["index"]) for r in data.rows] == list(range(50))
    assert {p.name for p in (out / "images").iterdir()} == {Path(r["file"]).name
                                                           for r in data.rows}
    for row in data.rows:
        assert 3 <= len(row["label"]) <= 5 and set(row["label"]) <= set("0123456789")
        assert int(row["length"]) == len(row["label"])
        with Image.open(data.path(row)) as im:
            assert im.size == (120, 40) and im.mode == "L"
    spec = CaptchaSpec.from_dict(data.info["spec"])
    assert spec.min_len == 3 and spec.max_len == 5 and spec.grayscale


def test_name_by_label_with_duplicate_suffixes(tmp_path, gen):
    out = tmp_path / "d"
    # 2-digit labels over 150 images: duplicates are certain
    code, _, err = gen("make", "--n", 150, "--out", out, "--len", "2", "--charset", "digits",
                       "--name-by", "label", "--width", 80, "--height", 40, "--quiet")
    assert code == 0, err
    rows = read_dataset(out).rows
    stems = [Path(r["file"]).stem for r in rows]
    assert len(set(stems)) == 150
    assert all(s.split("_")[0] == r["label"] for s, r in zip(stems, rows))
    assert any("_" in s for s in stems)


def test_dataset_images_equal_the_on_the_fly_stream(tmp_path):
    spec = CaptchaSpec(charset=parse_charset("alnum"))
    write_dataset(DatasetJob(spec=spec, n=8, seed=3), tmp_path, workers=1)
    rows = read_dataset(tmp_path).rows
    for row, (image, label) in zip(rows, iter_captchas(spec, seed=3, stop=8)):
        assert row["label"] == label
        with Image.open(tmp_path / row["file"]) as im:
            assert np.array_equal(np.asarray(im), np.asarray(image))


@pytest.mark.parametrize("name_by", ["index", "label"])
def test_shards_concatenate_to_the_full_dataset(tmp_path, gen, name_by):
    args = ["--n", 61, "--name-by", name_by, "--len", "3", "--charset", "digits", "--quiet"]
    assert gen("make", "--out", tmp_path / "full", *args)[0] == 0
    parts = []
    for k in (1, 2, 3):
        part = tmp_path / f"part{k}"
        code, _, err = gen("make", "--out", part, "--shard", f"{k}/3", *args)
        assert code == 0, err
        parts.append(part)
    sizes = [len(read_dataset(p).rows) for p in parts]
    assert sum(sizes) == 61 and min(sizes) >= 20
    code, _, err = gen("merge", *reversed(parts), "--out", tmp_path / "merged")
    assert code == 0, err
    assert tree_digest(tmp_path / "merged") == tree_digest(tmp_path / "full")


def test_merge_refuses_incomplete_sets_of_shards(tmp_path, gen):
    args = ["--n", 20, "--quiet"]
    gen("make", "--out", tmp_path / "p1", "--shard", "1/3", *args)
    gen("make", "--out", tmp_path / "p2", "--shard", "2/3", *args)
    code, _, err = gen("merge", tmp_path / "p1", tmp_path / "p2", "--out", tmp_path / "m")
    assert code == 2 and "exactly once" in err
    assert not (tmp_path / "m").exists()


def _manifest_rows(path: Path) -> int:
    try:
        return max(0, path.read_text().count("\n") - 1)
    except FileNotFoundError:
        return 0


def test_resume_after_kill_equals_an_uninterrupted_run(tmp_path, gen):
    args = ["--n", 1500, "--workers", 2, "--len", "4-6", "--quiet"]
    assert gen("make", "--out", tmp_path / "whole", *args)[0] == 0

    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "captchagen", "make", "--out", str(out), *map(str, args)]
    proc = subprocess.Popen(cmd, start_new_session=True, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while _manifest_rows(out / "manifest.csv") < 200 and time.monotonic() < deadline:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)  # the parent and its workers, mid-run
    proc.wait()
    rows = _manifest_rows(out / "manifest.csv")
    assert 200 <= rows < 1500, "the run was not interrupted mid-way"

    # Every complete manifest row names an image that is fully on disk.
    lines = (out / "manifest.csv").read_text().split("\n")[1:]
    for row in csv.reader(line for line in lines if line):
        with Image.open(out / row[1]) as im:
            im.load()
    assert not json.loads((out / "dataset.json").read_text())["complete"]

    code, outp, err = gen("make", "--out", out, "--resume", *args)
    assert code == 0, err
    assert "resumed after" in outp
    assert tree_digest(out) == tree_digest(tmp_path / "whole")


def test_resume_of_a_complete_dataset_changes_nothing(tmp_path, gen):
    gen("make", "--out", tmp_path, "--n", 20, "--quiet")
    before = tree_digest(tmp_path)
    code, out, _ = gen("make", "--out", tmp_path, "--n", 20, "--resume", "--quiet")
    assert code == 0 and "0 drawn" in out
    assert tree_digest(tmp_path) == before


def test_resume_refuses_other_settings(tmp_path, gen):
    gen("make", "--out", tmp_path, "--n", 20, "--quiet")
    code, _, err = gen("make", "--out", tmp_path, "--n", 20, "--seed", 5, "--resume")
    assert code == 2 and "seed" in err


def test_overwrite_replaces_only_what_captchagen_wrote(tmp_path, gen):
    gen("make", "--out", tmp_path, "--n", 20, "--quiet")
    (tmp_path / "notes.txt").write_text("mine")
    code, _, _ = gen("make", "--out", tmp_path, "--n", 5, "--overwrite", "--quiet")
    assert code == 0
    assert len(list((tmp_path / "images").iterdir())) == 5
    assert (tmp_path / "notes.txt").read_text() == "mine"
