"""metadata.csv and gt.txt: datasets that Hugging Face imagefolder and OCR trainers read."""

from __future__ import annotations

import csv

import pytest

from captchagen import CaptchaSpec, DatasetJob, merge_shards, write_dataset
from captchagen.exports import GT, METADATA, read_gt
from captchagen.manifest import read_rows

SPEC = CaptchaSpec(charset="0123456789abc", min_len=3, max_len=5)


def _manifest_pairs(root):
    return [(r["file"], r["label"]) for r in read_rows(root / "manifest.csv")]


def test_gt_and_metadata_list_every_image_with_its_label(tmp_path):
    root = tmp_path / "d"
    write_dataset(DatasetJob(spec=SPEC, n=12, seed=4), root, workers=1)
    pairs = _manifest_pairs(root)
    assert len(pairs) == 12
    assert read_gt(root / GT) == pairs
    with open(root / METADATA, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["file_name"], r["text"]) for r in rows] == pairs
    assert all((root / file).is_file() for file, _ in pairs)


def test_incomplete_dataset_has_no_label_files_until_resumed(tmp_path):
    from captchagen.exports import sync_label_files

    root = tmp_path / "d"
    write_dataset(DatasetJob(spec=SPEC, n=6, seed=1), root, workers=1)
    sync_label_files(root, complete=False)  # as a run interrupted before the end leaves it
    assert not (root / GT).exists() and not (root / METADATA).exists()
    write_dataset(DatasetJob(spec=SPEC, n=6, seed=1), root, workers=1, resume=True)
    assert read_gt(root / GT) == _manifest_pairs(root)


def test_merged_shards_get_label_files(tmp_path):
    parts = []
    for k in (1, 2):
        parts.append(tmp_path / f"part{k}")
        write_dataset(DatasetJob(spec=SPEC, n=9, seed=2, shard=(k, 2)), parts[-1], workers=1)
        assert len(read_gt(parts[-1] / GT)) == len(DatasetJob(spec=SPEC, n=9, shard=(k, 2))
                                                     .index_range)
    merge_shards(parts, tmp_path / "all")
    assert read_gt(tmp_path / "all" / GT) == _manifest_pairs(tmp_path / "all")
    assert len(read_gt(tmp_path / "all" / GT)) == 9


def test_hugging_face_imagefolder_loads_images_with_labels(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    datasets = pytest.importorskip("datasets")
    root = tmp_path / "d"
    write_dataset(DatasetJob(spec=SPEC, n=8, seed=3), root, workers=1)
    ds = datasets.load_dataset("imagefolder", data_dir=str(root), split="train",
                               cache_dir=str(tmp_path / "cache"))
    assert len(ds) == 8
    labels = {r["label"] for r in read_rows(root / "manifest.csv")}
    assert set(ds["text"]) == labels
    first = ds[0]
    assert first["image"].size == (SPEC.width, SPEC.height)
