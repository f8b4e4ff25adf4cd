"""Fine-tuning (``crnn train --init``): shared symbols keep their output rows, new ones start
fresh, the run records its origin, and a model of another kind is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from crnn.checkpoint import read_checkpoint, save_checkpoint
from crnn.finetune import init_from, remap_rows
from crnn.models import ModelConfig, create_model
from crnn.train import TrainConfig, train


def _checkpoint(tmp_path: Path, **config) -> tuple[Path, torch.nn.Module]:
    cfg = ModelConfig(**{"name": "crnn", "size": "tiny", **config})
    torch.manual_seed(1)
    model = create_model(cfg)
    path = tmp_path / f"{cfg.name}-{len(list(tmp_path.iterdir()))}.ckpt"
    save_checkpoint(path, model, cfg, {})
    return path, model


@pytest.mark.parametrize("name,prefix,blocks", [("crnn", "classifier", 1),
                                                ("cnn-ctc", "classifier", 1),
                                                ("cnn-fixed", "heads", 4)])
def test_init_with_another_charset_keeps_the_shared_symbols_rows(tmp_path, name, prefix,
                                                                  blocks):
    path, old = _checkpoint(tmp_path, name=name, charset="abcd", max_len=4)
    new_cfg = ModelConfig(name=name, size="tiny", charset="dxb", max_len=4)
    torch.manual_seed(2)
    model = create_model(new_cfg)
    fresh = {k: v.clone() for k, v in model.state_dict().items()}
    init_from(model, str(path), new_cfg)
    got, was = model.state_dict(), old.state_dict()
    w_new = got[f"{prefix}.weight"].reshape(blocks, 4, -1)
    w_old = was[f"{prefix}.weight"].reshape(blocks, 5, -1)
    w_fresh = fresh[f"{prefix}.weight"].reshape(blocks, 4, -1)
    torch.testing.assert_close(w_new[:, 0], w_old[:, 0])  # blank / no character
    torch.testing.assert_close(w_new[:, 1], w_old[:, 4])  # d
    torch.testing.assert_close(w_new[:, 3], w_old[:, 2])  # b
    torch.testing.assert_close(w_new[:, 2], w_fresh[:, 2])  # x: new, fresh
    assert not torch.equal(w_new[:, 2], w_old[:, 1])
    torch.testing.assert_close(got["trunk.features.0.0.weight"],
                               was["trunk.features.0.0.weight"])


def test_remap_rows_drops_symbols_and_keeps_order():
    old = torch.arange(4.0)[:, None]  # blank, a, b, c
    fresh = torch.full((3, 1), -1.0)
    assert remap_rows(old, fresh, "abc", "cz").flatten().tolist() == [0.0, 3.0, -1.0]


def test_train_init_records_its_origin_and_may_change_width_and_charset(tmp_path,
                                                                         tiny_dataset):
    path, _ = _checkpoint(tmp_path, charset="0123456789@#", width=96)
    out = tmp_path / "run"
    summary = train(TrainConfig(data=str(tiny_dataset), out=str(out), model="crnn",
                                size="tiny", width=128, epochs=1, batch_size=16,
                                progress=False, init=str(path), freeze_trunk=2))
    info = json.loads((out / "config.json").read_text())["init"]
    assert info["checkpoint"] == str(path.resolve()) and summary["init"] == info
    assert info["dropped_symbols"] == "@#" and "a" in info["new_symbols"]
    assert info["model"]["width"] == 96
    assert read_checkpoint(out / "last.ckpt")["model_config"]["width"] == 128


def test_init_refuses_a_model_of_another_kind(tmp_path, tiny_dataset, crnn_cli):
    path, _ = _checkpoint(tmp_path, name="cnn-ctc", charset="abc")
    out = tmp_path / "run"
    code, _, err = crnn_cli("train", "--data", tiny_dataset, "--out", out, "--model", "crnn",
                            "--size", "tiny", "--epochs", "1", "--init", path, "--quiet")
    assert code == 2 and "cnn-ctc" in err and err.count("\n") == 1
    assert not out.exists()
    code, _, err = crnn_cli("train", "--data", tiny_dataset, "--out", out, "--freeze-trunk",
                            "5", "--quiet")
    assert code == 2 and "--init" in err
