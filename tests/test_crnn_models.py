"""Models: shapes, the CTC frames check, and each model's ability to fit 64 samples."""

from __future__ import annotations

import pytest
import torch

from crnn.models import ModelConfig, create_model, model_names
from crnn.train import TrainConfig, check_capacity, train
from plumbing.errors import UsageError

CHARSET = "0123456789abcdefghijklmnopqrstuvwxyz"


@pytest.mark.parametrize("name", ["crnn", "cnn-ctc", "cnn-fixed"])
@pytest.mark.parametrize("size", ["tiny", "small"])
def test_output_shapes_and_log_probabilities(name, size):
    cfg = ModelConfig(name=name, charset=CHARSET, size=size, height=32, width=96, max_len=7)
    model = create_model(cfg).eval()
    out = model(torch.randn(3, 1, 32, 96))
    expected = (24, 3, 37) if cfg.is_ctc else (3, 7, 37)
    assert tuple(out.shape) == expected
    assert torch.allclose(out.exp().sum(-1), torch.ones(out.shape[:-1]), atol=1e-5)


def test_ctc_models_take_any_width_and_height_multiple_of_16():
    model = create_model(ModelConfig(name="crnn", charset="ab", size="tiny", height=48)).eval()
    assert model(torch.randn(2, 1, 48, 200)).shape[0] == 50


def test_registry_lists_the_three_models_and_refuses_others():
    assert set(model_names()) == {"crnn", "cnn-ctc", "cnn-fixed"}
    with pytest.raises(UsageError, match="unknown model"):
        create_model(ModelConfig(name="transformer", charset="ab"))
    with pytest.raises(UsageError, match="multiple of 16"):
        ModelConfig(name="crnn", charset="ab", height=30)


def test_frames_check_refuses_a_model_too_narrow_and_names_a_width_that_works():
    narrow = ModelConfig(name="crnn", charset="ab", width=48)  # 12 frames
    with pytest.raises(UsageError, match=r"12 output frames.*at least 13.*--width 52"):
        check_capacity(narrow, 6)
    check_capacity(ModelConfig(name="crnn", charset="ab", width=52), 6)
    check_capacity(narrow, 5)  # 11 frames needed
    with pytest.raises(UsageError, match="--max-len 6"):
        check_capacity(ModelConfig(name="cnn-fixed", charset="ab", max_len=5), 6)


def test_rnn_skip_off_is_the_papers_design():
    paper = create_model(ModelConfig(name="crnn", charset="ab", size="tiny", rnn_skip=False))
    assert paper.skip is None
    assert isinstance(paper.rnn, torch.nn.LSTM) and paper.rnn.num_layers == 2
    assert paper.rnn.bidirectional


@pytest.mark.parametrize("name", ["crnn", "cnn-ctc", "cnn-fixed"])
def test_each_model_overfits_64_samples(tmp_path, tiny_dataset, name):
    summary = train(TrainConfig(
        data=str(tiny_dataset), val=str(tiny_dataset), out=str(tmp_path / name), model=name,
        size="tiny", epochs=60, lr=5e-3, batch_size=16, eval_every=30, progress=False, seed=0,
        allow_overlap=True))  # validating on the training images is the point here
    assert summary["best_val_sequence_accuracy"] == 1.0
    assert (tmp_path / name / "best.ckpt").is_file()
