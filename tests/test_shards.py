"""WebDataset shards: written by several machines, read split across ranks and workers."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile

import numpy as np
import pytest
from PIL import Image
from torch.utils.data import DataLoader

from captchagen import CaptchaSpec, label_for
from crnn.data import GeneratedCaptchas, ShardStream
from crnn.data.shards import open_shards
from tests.helpers import tree_digest

MAKE = ("make", "--n", "10", "--len", "3-4", "--charset", "digits", "--seed", "6",
        "--format", "wds", "--shard-size", "3", "--quiet")
SHARDS = [f"shard-{s:06d}.tar" for s in range(4)]


def _make(gen, out, *extra):
    code, _, err = gen(*MAKE, "--out", out, *extra)
    assert code == 0, err
    return out


def test_shards_hold_one_sample_per_image_in_index_order(tmp_path, gen):
    out = _make(gen, tmp_path / "wds", "--workers", "1")
    assert sorted(p.name for p in out.glob("*.tar")) == SHARDS
    info = json.loads((out / "dataset.json").read_text())
    assert [s["file"] for s in info["shards"]] == SHARDS and info["layout"] == "wds"
    spec = CaptchaSpec.from_dict(info["spec"])
    with tarfile.open(out / SHARDS[1]) as tar:
        names = tar.getnames()
        assert names == [f"{i:06d}.{ext}" for i in (3, 4, 5) for ext in ("json", "png", "txt")]
        assert {m.mtime for m in tar.getmembers()} == {946684800}
        png = tar.extractfile("000004.png").read()
        label = tar.extractfile("000004.txt").read().decode()
        meta = json.loads(tar.extractfile("000004.json").read())
    assert label == label_for(spec, 6, 4) and meta["index"] == 4 and meta["label"] == label
    image, _ = next(iter(GeneratedCaptchas(spec, seed=6, start=4, stop=5, transform=np.asarray)))
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(png))), image)


def test_machines_write_the_shards_one_machine_would_byte_for_byte(tmp_path, gen):
    whole = tree_digest(_make(gen, tmp_path / "one", "--workers", "1"))
    assert tree_digest(_make(gen, tmp_path / "two", "--workers", "2")) == whole
    shared = tmp_path / "shared"  # two machines, one shared folder
    for k in (1, 2):
        _make(gen, shared, "--shard", f"{k}/2", "--workers", "1")
    assert tree_digest(shared) == whole
    own = [tree_digest(_make(gen, tmp_path / f"m{k}", "--shard", f"{k}/2")) for k in (1, 2)]
    assert set(own[0]) == {"dataset.json", *SHARDS[:2]}
    assert {**own[0], **own[1]} == whole


def test_existing_output_is_refused_resumed_or_overwritten(tmp_path, gen):
    out = _make(gen, tmp_path / "wds", "--workers", "1")
    before = tree_digest(out)
    code, _, err = gen(*MAKE, "--out", out)
    assert code == 2 and "--resume" in err
    (out / SHARDS[2]).unlink()
    (out / f".{SHARDS[3]}.tmp").write_bytes(b"half a shard")  # a killed run's leftover
    code, _, err = gen(*MAKE, "--out", out, "--resume")
    assert code == 0, err
    assert tree_digest(out) == before
    code, _, err = gen(*MAKE, "--seed", "7", "--out", out)  # another dataset
    assert code == 2 and "not empty" in err
    code, _, err = gen(*MAKE, "--seed", "7", "--out", out, "--overwrite")
    assert code == 0, err
    assert sorted(tree_digest(out)) == sorted(before) and tree_digest(out) != before
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    code, _, err = gen(*MAKE, "--out", other)
    assert code == 2 and (other / "notes.txt").read_text() == "mine"


def _keys(files, rank, world, workers) -> list[str]:
    ds = ShardStream(files, 16, 40, seed=1, rank=rank, world=world, with_key=True)
    return [k for _, _, k in DataLoader(ds, batch_size=None, num_workers=workers)]


@pytest.mark.parametrize("shards", [2, 5])  # fewer shards than readers, and more
def test_ranks_and_workers_read_disjoint_parts_of_the_shards(tmp_path, gen, shards):
    out = _make(gen, tmp_path / "wds", "--n", str(3 * shards), "--workers", "1")
    files = open_shards(str(out / "shard-*.tar")).files
    assert len(files) == shards
    seen = [k for rank in range(2) for k in _keys(files, rank, 2, 2)]
    assert sorted(seen) == [f"{i:06d}" for i in range(3 * shards)]


def test_data_accepts_patterns_directories_and_several_sources(tmp_path, gen):
    out = _make(gen, tmp_path / "wds", "--workers", "1")
    brace = str(out / "shard-{000000..000001}.tar")
    assert len(open_shards(brace).files) == 2
    several = open_shards(f"{brace},{out}/shard-00000[23].tar")
    assert [f.name for f in several.files] == SHARDS
    assert several.size() == 10 and several.charset == "0123456789"
    assert open_shards(str(out)).files == several.files


def test_readme_scale_commands_at_small_scale(tmp_path, gen):
    """The README's route: each machine writes its shards, torchrun trains on 2 ranks."""
    data = tmp_path / "shards"
    for k in (1, 2):
        code, _, err = gen("make", "--out", data, "--n", "96", "--shard-size", "16",
                           "--format", "wds", "--shard", f"{k}/2", "--len", "4",
                           "--charset", "digits", "--seed", "1", "--workers", "1", "--quiet")
        assert code == 0, err
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    out = tmp_path / "run"
    cmd = [torchrun, "--standalone", "--nproc-per-node", "2", "-m", "crnn", "train",
           "--data", str(data / "shard-{000000..000004}.tar"),
           "--val", str(data / "shard-000005.tar"), "--out", str(out), "--model", "crnn",
           "--size", "tiny", "--epochs", "1", "--batch-size", "8", "--workers", "0", "--quiet"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert res.returncode == 0, res.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    # 80 training images over 2 ranks of 8 per step: 5 steps
    assert summary["world_size"] == 2 and summary["steps"] == 5


def test_training_batches_resume_mid_epoch_with_the_same_batches(tmp_path, gen):
    from crnn.data.shards import ShardBatches

    out = _make(gen, tmp_path / "wds", "--workers", "1")
    batches = ShardBatches(open_shards(str(out)), batch_size=2, height=16, width=40, seed=3,
                           workers=2, rank=1, world=2)
    assert batches.steps_per_epoch == 2  # 10 images, 2 ranks of 2 per step
    whole = [labels for _, labels in batches.epoch(1)]
    assert [labels for _, labels in batches.epoch(1, start=1)] == whole[1:]
    assert whole != [labels for _, labels in batches.epoch(2)]  # reshuffled each epoch


def test_missing_or_mixed_sources_are_refused_in_one_line(tmp_path, gen, crnn_cli,
                                                          tiny_dataset):
    out = _make(gen, tmp_path / "wds", "--workers", "1")
    for data, says in ((str(out / "shard-{000000..000009}.tar"), "does not exist"),
                       (f"{out}/shard-000000.tar,{tiny_dataset}", "cannot mix")):
        code, _, err = crnn_cli("train", "--data", data, "--out", tmp_path / "run", "--quiet")
        assert code == 2 and says in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "run").exists()
    (tmp_path / "bad.tar").write_bytes(b"not a tar at all" * 64)
    code, _, err = crnn_cli("train", "--data", f"{out}/shard-000000.tar",
                            "--val", tmp_path / "bad.tar", "--out", tmp_path / "run", "--quiet")
    assert code == 1 and "bad.tar" in err, err
