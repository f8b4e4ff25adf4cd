"""Batches, on-the-fly data, augmentation and the learning-rate schedule."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from captchagen import CaptchaSpec, iter_captchas
from crnn.data.augment import augment
from crnn.data.batches import EpochBatches, GeneratedBatches
from crnn.data.images import to_gray
from crnn.schedule import lr_factor
from crnn.train import TrainConfig, train


def test_ranks_share_each_epoch_without_overlap():
    images = torch.arange(100, dtype=torch.uint8).view(100, 1, 1)
    labels = [str(i) for i in range(100)]
    seen = []
    for rank in (0, 1):
        b = EpochBatches(images, labels, batch_size=10, seed=1, rank=rank, world=2)
        assert b.steps_per_epoch == 5
        seen += [s for _, batch in b.epoch(3) for s in batch]
    assert sorted(map(int, seen)) == list(range(100))
    one = EpochBatches(images, labels, batch_size=10, seed=1)
    assert [x for _, bt in one.epoch(3, start=4) for x in bt] == \
        [x for _, bt in one.epoch(3) for x in bt][40:]  # resuming mid-epoch: the same batches


def test_generated_batches_are_captchagen_images():
    spec = CaptchaSpec(charset="0123456789", min_len=3, max_len=4)
    gen = GeneratedBatches(spec, seed=7, batch_size=4, height=32, width=128, epoch_size=8,
                           workers=0)
    images, labels = next(gen.epoch(1))
    expected = list(iter_captchas(spec, seed=7, start=8, stop=12))  # epoch 1 starts at 8
    assert labels == [s for _, s in expected]
    assert np.array_equal(images[0].numpy(), to_gray(expected[0][0], 32, 128))
    gen.close()


def test_training_on_the_fly(tmp_path, tiny_dataset):
    summary = train(TrainConfig(data=str(tiny_dataset), out=str(tmp_path / "r"), generate=True,
                                model="cnn-ctc", size="tiny", epochs=2, epoch_size=64,
                                batch_size=16, progress=False))
    assert summary["steps"] == 8


def test_augment_is_repeatable_and_keeps_the_paper_white():
    x = torch.ones(4, 1, 32, 128)  # white images
    a = augment(x, torch.Generator().manual_seed(0))
    b = augment(x, torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and a.shape == x.shape
    # Shifted-in borders read as white, not black: only the added noise remains.
    assert (a - x).abs().mean() < 0.1


@pytest.mark.parametrize("kind", ["onecycle", "cosine"])
def test_schedules_warm_up_peak_and_decay(kind):
    f = [lr_factor(p / 100, kind, warmup=0.1) for p in range(101)]
    assert f[0] < 0.1 and max(f) == pytest.approx(1.0, abs=1e-3)
    assert f.index(max(f)) == 10 and f[-1] < 0.02
    assert all(a >= b for a, b in itertools.pairwise(f[10:]))


def test_data_wait_counts_only_the_time_spent_fetching():
    import time

    from crnn.train import State, _timed

    def slow():
        for i in range(3):
            time.sleep(0.02)  # loading a batch
            yield i

    state = State()
    for _ in _timed(slow(), state):
        time.sleep(0.05)  # training on it: not data wait
    assert 0.06 <= state.data_wait < 0.15
