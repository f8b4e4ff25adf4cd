"""Models: shapes, the CTC frames check, and each model's ability to fit 64 samples."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from crnn.models import CTC, Fixed, ModelConfig, create_model, head_of, model_names
from crnn.models.config import MODEL_NAMES, SIZES
from crnn.models.trunk import VGGTrunk
from crnn.train import TrainConfig, train
from plumbing.errors import UsageError

CHARSET = "0123456789abcdefghijklmnopqrstuvwxyz"


@pytest.mark.parametrize("name", ["crnn", "cnn-ctc", "cnn-fixed"])
@pytest.mark.parametrize("size", ["tiny", "small"])
def test_output_shapes_and_log_probabilities(name, size):
    cfg = ModelConfig(name=name, charset=CHARSET, size=size, height=32, width=96, max_len=7)
    model = create_model(cfg).eval()
    out = model(torch.randn(3, 1, 32, 96))
    expected = (24, 3, 37) if cfg.head.kind == "ctc" else (3, 7, 37)
    assert tuple(out.shape) == expected
    assert torch.allclose(out.exp().sum(-1), torch.ones(out.shape[:-1]), atol=1e-5)


def test_crnn_lstm_runs_in_float32_inside_bf16_autocast():
    model = create_model(ModelConfig(name="crnn", charset=CHARSET, size="tiny")).eval()
    seen = {}
    model.rnn.register_forward_hook(
        lambda _m, inputs, output: seen.update(input=inputs[0].dtype, output=output[0].dtype))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(torch.randn(2, 1, 32, 128))
        conv = model.trunk(torch.randn(2, 1, 32, 128))
    assert conv.dtype == torch.bfloat16  # autocast is on: the convolutions use it
    assert seen == {"input": torch.float32, "output": torch.float32}
    assert out.dtype in (torch.float32, torch.bfloat16)
    assert torch.allclose(out.float().exp().sum(-1), torch.ones(out.shape[:-1]), atol=2e-2)


def test_ctc_models_take_any_width_and_height_multiple_of_16():
    model = create_model(ModelConfig(name="crnn", charset="ab", size="tiny", height=48)).eval()
    assert model(torch.randn(2, 1, 48, 200)).shape[0] == 50


def test_registry_lists_the_three_models_and_refuses_others():
    assert set(model_names()) == {"crnn", "cnn-ctc", "cnn-fixed"}
    with pytest.raises(UsageError, match="name must be one of crnn, cnn-ctc, cnn-fixed"):
        create_model(ModelConfig(name="transformer", charset="ab"))  # refused by the config
    with pytest.raises(UsageError, match="multiple of 16"):
        ModelConfig(name="crnn", charset="ab", height=30)


def test_frames_check_refuses_a_model_too_narrow_and_names_a_width_that_works():
    narrow = ModelConfig(name="crnn", charset="ab", width=48)  # 12 frames
    with pytest.raises(UsageError, match=r"12 output frames.*at least 13.*--width 52"):
        narrow.head.check_capacity(narrow, 6)
    wide = ModelConfig(name="crnn", charset="ab", width=52)
    wide.head.check_capacity(wide, 6)
    narrow.head.check_capacity(narrow, 5)  # 11 frames needed
    fixed = ModelConfig(name="cnn-fixed", charset="ab", max_len=5)
    with pytest.raises(UsageError, match="--max-len 6"):
        fixed.head.check_capacity(fixed, 6)


def test_each_registry_entry_knows_its_head():
    assert tuple(model_names()) == tuple(sorted(MODEL_NAMES))
    assert isinstance(head_of("crnn"), CTC) and isinstance(head_of("cnn-ctc"), CTC)
    assert isinstance(head_of("cnn-fixed"), Fixed)
    with pytest.raises(UsageError, match="unknown model"):
        head_of("transformer")


@pytest.mark.parametrize("name", ["crnn", "cnn-fixed"])
def test_head_loss_and_reading_agree_on_a_confident_output(name):
    """The text a head reads from a one-hot output is the text whose loss is lowest there."""
    cfg = ModelConfig(name=name, charset="abc", width=64, max_len=4)
    classes = [1, 0, 2, 0, 0, 3] + [0] * 10 if name == "crnn" else [1, 2, 3, 0]
    out = torch.full((len(classes), 1, 4), -30.0)
    for t, c in enumerate(classes):
        out[t, 0, c] = 0.0
    if name == "cnn-fixed":
        out = out.transpose(0, 1)  # (N, L, C)
    texts, conf = cfg.head.read(out, cfg.charset)
    assert texts == ["abc"] and float(conf[0]) > 0.99
    assert cfg.head.loss(out, ["abc"], cfg) < cfg.head.loss(out, ["abb"], cfg)
    if name == "cnn-fixed":  # a head's allowed symbols mask the others
        assert cfg.head.read(out, cfg.charset, allowed="ab")[0][0] != "abc"


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


def test_trunk_pools_before_the_relu_with_the_same_function():
    """Max-pool then ReLU is the paper's ReLU then max-pool: same outputs, same gradients."""
    torch.manual_seed(0)
    trunk = VGGTrunk(SIZES["small"]["channels"], 32).train()
    x = torch.randn(4, 1, 32, 128, requires_grad=True)

    def relu_then_pool(x: torch.Tensor) -> torch.Tensor:
        layers, i = list(trunk.features), 0
        while i < len(layers):
            if isinstance(layers[i][-1], nn.MaxPool2d):  # (conv, bn, pool), then the ReLU
                conv, bn, pool = layers[i]
                x, i = pool(torch.relu(bn(conv(x)))), i + 2
            else:
                x, i = layers[i](x), i + 1
        return x

    ours = trunk(x)
    (grad,) = torch.autograd.grad(ours.square().sum(), x)
    paper = relu_then_pool(x)
    (paper_grad,) = torch.autograd.grad(paper.square().sum(), x)
    assert torch.equal(ours, paper) and torch.equal(grad, paper_grad)
