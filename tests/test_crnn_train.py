"""Training runs: resume after kill -9, distributed training, run-directory rules."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch

from crnn.checkpoint import read_checkpoint
from crnn.train import TrainConfig, train
from plumbing.errors import UsageError

ARGS = dict(model="crnn", size="tiny", epochs=4, batch_size=16, seed=3, progress=False)


def _cli_args(cfg: dict) -> list[str]:
    args = []
    for k, v in cfg.items():
        if k == "progress":
            args.append("--quiet")
        else:
            args += [f"--{k.replace('_', '-')}", str(v)]
    return args


def _log_without_timings(path) -> list[dict]:
    with open(path, newline="") as f:
        return [{k: v for k, v in r.items() if k not in ("elapsed_s", "images_per_s")}
                for r in csv.DictReader(f)]


def test_kill_9_then_resume_ends_with_the_same_weights(tmp_path, small_dataset):
    whole = tmp_path / "whole"
    train(TrainConfig(data=str(small_dataset), out=str(whole), **ARGS))

    cut = tmp_path / "cut"
    cmd = [sys.executable, "-m", "crnn", "train", "--data", str(small_dataset), "--out", str(cut),
           *_cli_args(ARGS)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (cut / "last.ckpt").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = read_checkpoint(cut / "last.ckpt")["trainer"]["step"]
    final = read_checkpoint(whole / "last.ckpt")
    assert 0 < killed_at < final["trainer"]["step"], "the run was not cut mid-way"

    train(TrainConfig(data=str(small_dataset), out=str(cut), resume=True, **ARGS))
    resumed = read_checkpoint(cut / "last.ckpt")
    assert resumed["trainer"]["step"] == final["trainer"]["step"]
    for name, weight in final["model"].items():
        torch.testing.assert_close(resumed["model"][name], weight, rtol=1e-5, atol=1e-6,
                                   msg=lambda m, name=name: f"{name}: {m}")
    assert _log_without_timings(cut / "metrics.csv") == _log_without_timings(
        whole / "metrics.csv")


def test_same_seed_same_weights_on_cpu(tmp_path, tiny_dataset):
    cfg = dict(data=str(tiny_dataset), model="cnn-ctc", size="tiny", epochs=1, batch_size=16,
               progress=False)
    train(TrainConfig(out=str(tmp_path / "a"), **cfg))
    train(TrainConfig(out=str(tmp_path / "b"), **cfg))
    a = read_checkpoint(tmp_path / "a" / "last.ckpt")["model"]
    b = read_checkpoint(tmp_path / "b" / "last.ckpt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_deterministic_switches_off_autotuning_and_tf32_and_must_match_on_resume(
        tmp_path, tiny_dataset, cuda_switches):
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    cudnn.allow_tf32, cudnn.deterministic = True, False
    cfg = dict(data=str(tiny_dataset), model="cnn-ctc", size="tiny", epochs=1, batch_size=16,
               progress=False)
    train(TrainConfig(out=str(tmp_path / "a"), **cfg))
    assert cudnn.allow_tf32 and not cudnn.deterministic  # untouched unless asked
    cudnn.benchmark = True  # left on by an earlier run in the process: must be switched off
    train(TrainConfig(out=str(tmp_path / "b"), deterministic=True, **cfg))
    assert cudnn.deterministic and not (cudnn.benchmark or cudnn.allow_tf32
                                        or matmul.allow_tf32)
    assert json.loads((tmp_path / "b" / "config.json").read_text())["train"]["deterministic"]
    with pytest.raises(UsageError, match="deterministic differ"):
        train(TrainConfig(out=str(tmp_path / "b"), resume=True, **cfg))


@pytest.mark.parametrize("native_bf16", [True, False])
def test_amp_auto_on_the_cpu_follows_native_bf16(tmp_path, tiny_dataset, monkeypatch,
                                                native_bf16):
    """Emulated bf16 is slower than float32: auto autocasts only where the CPU has it."""
    import crnn.inference

    monkeypatch.setattr(crnn.inference, "_cpu_has_native_bf16", lambda: native_bf16)
    cfg = dict(data=str(tiny_dataset), model="crnn", size="tiny", epochs=1, batch_size=16,
               progress=False, device="cpu")
    auto = train(TrainConfig(out=str(tmp_path / "auto"), **cfg))
    off = train(TrainConfig(out=str(tmp_path / "off"), amp="off", **cfg))
    on = train(TrainConfig(out=str(tmp_path / "on"), amp="on", **cfg))
    assert auto["autocast"] == ("bfloat16" if native_bf16 else "float32")
    assert (off["autocast"], on["autocast"]) == ("float32", "bfloat16")
    a, b = (read_checkpoint(tmp_path / r / "last.ckpt")["model"] for r in ("off", "on"))
    assert any(not torch.equal(a[k], b[k]) for k in a)  # autocast did change the arithmetic


def test_run_directory_holds_checkpoints_log_curve_and_config(tmp_path, tiny_dataset):
    out = tmp_path / "run"
    summary = train(TrainConfig(data=str(tiny_dataset), out=str(out), model="cnn-fixed",
                                size="tiny", epochs=2, batch_size=16, progress=False))
    for name in ("best.ckpt", "last.ckpt", "metrics.csv", "curve.png", "config.json",
                 "summary.json"):
        assert (out / name).is_file(), name
    ckpt = read_checkpoint(out / "best.ckpt")
    assert ckpt["model_config"]["charset"] == "0123456789abcdefghijklmnopqrstuvwxyz"
    assert "val_sequence_accuracy" in ckpt["metrics"]
    assert json.loads((out / "config.json").read_text())["train"]["model"] == "cnn-fixed"
    assert summary["steps"] == 2 * (58 // 16)  # 64 images, 10% held out, 16 per batch


@pytest.mark.skipif(shutil.which("torchrun") is None and not os.path.exists(
    os.path.join(os.path.dirname(sys.executable), "torchrun")), reason="torchrun not installed")
def test_two_process_distributed_training_on_cpu(tmp_path, small_dataset):
    out = tmp_path / "ddp"
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    cmd = [torchrun if os.path.exists(torchrun) else "torchrun", "--standalone",
           "--nproc_per_node", "2", "-m", "crnn", "train", "--data", str(small_dataset),
           "--out", str(out), "--model", "crnn", "--size", "tiny", "--epochs", "2",
           "--batch-size", "16", "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["world_size"] == 2
    # 230 training images split over 2 ranks of 16 per step: 7 steps an epoch.
    assert summary["steps"] == 14
    rows = _log_without_timings(out / "metrics.csv")
    assert [int(r["step"]) for r in rows] == [7, 14]  # rank 0 alone logs
    assert read_checkpoint(out / "last.ckpt")["trainer"]["step"] == 14


def test_existing_run_needs_resume_or_overwrite(tmp_path, tiny_dataset, crnn_cli):
    out = tmp_path / "run"
    base = ["train", "--data", tiny_dataset, "--out", out, "--model", "cnn-ctc", "--size",
            "tiny", "--epochs", "1", "--batch-size", "16", "--quiet"]
    assert crnn_cli(*base)[0] == 0
    code, _, err = crnn_cli(*base)
    assert code == 2 and "--resume" in err and err.count("\n") == 1
    code, _, err = crnn_cli(*base[:-5], "--model", "crnn", "--epochs", "1", "--resume")
    assert code == 2 and "other settings" in err
    assert crnn_cli(*base, "--overwrite")[0] == 0
