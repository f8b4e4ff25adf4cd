"""crnn.data's torch datasets: map-style over folders, generation split without overlap."""

from __future__ import annotations

import shutil

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader

from captchagen import CaptchaSpec, DatasetJob, write_dataset
from captchagen.manifest import read_rows
from crnn.data import GeneratedCaptchas, LabelledImages

SPEC = CaptchaSpec(charset="0123456789", min_len=3, max_len=4)


def test_labelled_images_over_a_captchagen_dataset_and_a_plain_folder(tmp_path, tiny_dataset):
    ds = LabelledImages(tiny_dataset, size=(32, 96))
    rows = read_rows(tiny_dataset / "manifest.csv")
    assert len(ds) == len(rows)
    x, label = ds[3]
    assert x.shape == (1, 32, 96) and x.dtype == torch.float32 and 0 <= x.min() <= x.max() <= 1
    assert label == rows[3]["label"]
    folder = tmp_path / "folder"
    folder.mkdir()
    for r in rows[:5]:
        shutil.copyfile(tiny_dataset / r["file"], folder / f"{r['label']}.png")
    plain = LabelledImages(folder, gray=False)
    x, label = plain[0]
    assert x.shape == (3, 60, 160)
    assert sorted(plain.samples.labels) == sorted(r["label"] for r in rows[:5])
    batch = next(iter(DataLoader(LabelledImages(folder, size=(32, 96)), batch_size=4)))
    assert batch[0].shape == (4, 1, 32, 96) and len(batch[1]) == 4


def test_generated_captchas_are_the_images_captchagen_make_writes(tmp_path):
    root = tmp_path / "d"
    write_dataset(DatasetJob(spec=SPEC, n=6, seed=11), root, workers=1)
    rows = read_rows(root / "manifest.csv")
    gen = GeneratedCaptchas(SPEC, seed=11, stop=6, transform=np.asarray)
    for (image, label), row in zip(gen, rows, strict=True):
        assert label == row["label"]
        with Image.open(root / row["file"]) as im:
            assert np.array_equal(image, np.asarray(im))


def _seen(rank: int, world: int, workers: int) -> dict[int, torch.Tensor]:
    ds = GeneratedCaptchas(SPEC, seed=5, start=3, stop=17, size=(16, 40), rank=rank, world=world,
                           with_index=True)
    loader = DataLoader(ds, batch_size=None, num_workers=workers)
    return {i: x for x, _, i in loader}


def test_ranks_and_workers_partition_the_index_range():
    per_reader = [_seen(rank, 2, 2) for rank in range(2)]
    indices = [i for seen in per_reader for i in seen]
    assert sorted(indices) == list(range(3, 17))  # every index once: no overlap, no gap
    single = _seen(0, 1, 0)
    assert sorted(single) == list(range(3, 17))
    for seen in per_reader:
        for i, x in seen.items():
            assert torch.equal(x, single[i])


def test_several_datasets_are_joined(tmp_path, tiny_dataset):
    other = tmp_path / "other"
    write_dataset(DatasetJob(spec=SPEC, n=5, seed=1), other, workers=1)
    both = LabelledImages(f"{tiny_dataset},{other}")
    assert len(both) == len(LabelledImages(tiny_dataset)) + 5
    assert both.samples.labels[-5:] == tuple(r["label"] for r in read_rows(other / "manifest.csv"))
    assert set(both.charset) == set(LabelledImages(tiny_dataset).charset) | set(SPEC.charset)
