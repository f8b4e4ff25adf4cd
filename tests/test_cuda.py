"""The CUDA paths, run where a GPU is: training, resume, Reader parity with the CPU.

Decoding agreement CPU vs CUDA lives in test_decode.py (test_cuda_greedy_and_beam_agree_...).
Every test here is marked ``cuda`` and skipped without a CUDA device.
"""

from __future__ import annotations

import pytest
import torch

import crnn.train as train_module
from crnn.checkpoint import read_checkpoint
from crnn.data.images import decode_images
from crnn.data.sources import load_samples
from crnn.inference import Reader
from crnn.train import TrainConfig, train

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def _config(data, out, **kw) -> TrainConfig:
    args = {"model": "crnn", "size": "tiny", "epochs": 2, "batch_size": 16, "device": "cuda",
            "progress": False, "eval_every": 3} | kw
    return TrainConfig(data=str(data), out=str(out), **args)


def test_training_a_few_steps_on_cuda_with_amp(tmp_path, tiny_dataset):
    summary = train(_config(tiny_dataset, tmp_path / "run", amp="on"))
    assert summary["device"] == "cuda" and summary["steps"] >= 4
    ckpt = read_checkpoint(tmp_path / "run" / "last.ckpt")
    assert all(torch.isfinite(w).all() for w in ckpt["model"].values())
    assert torch.backends.cudnn.benchmark


class _Killed(Exception):
    """Stands for kill -9 just after a checkpoint is written."""


def test_resume_on_cuda_continues_the_same_run(tmp_path, tiny_dataset, monkeypatch,
                                                cuda_switches):
    """A run killed just after its first checkpoint and resumed ends where the uninterrupted
    run ends (as the kill -9 test in test_crnn_train.py asks on the CPU). With TF32 and cuDNN's
    nondeterministic kernels on, two uninterrupted runs already differ by up to 1.4 in a weight
    (BatchNorm statistics, seen on an H200), which would hide a broken resume: --deterministic
    turns both off, so only rounding (CTC's backward adds atomically) stands between the runs."""
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    train(_config(tiny_dataset, whole, amp="off", deterministic=True))
    save = train_module.save_checkpoint

    def save_then_die(path, *args, **kwargs):
        save(path, *args, **kwargs)
        if path.name == "last.ckpt":
            raise _Killed

    with monkeypatch.context() as m, pytest.raises(_Killed):
        m.setattr(train_module, "save_checkpoint", save_then_die)
        train(_config(tiny_dataset, cut, amp="off", deterministic=True))
    cut_at = read_checkpoint(cut / "last.ckpt")["trainer"]["step"]
    train(_config(tiny_dataset, cut, amp="off", deterministic=True, resume=True))
    a, b = read_checkpoint(whole / "last.ckpt"), read_checkpoint(cut / "last.ckpt")
    assert 0 < cut_at < b["trainer"]["step"] == a["trainer"]["step"]
    for name, weight in a["model"].items():
        torch.testing.assert_close(b["model"][name], weight, rtol=1e-3, atol=1e-4,
                                   msg=lambda m, name=name: f"{name}: {m}")


def test_reader_on_cuda_reads_as_on_the_cpu(tmp_path, tiny_dataset):
    train(_config(tiny_dataset, tmp_path / "run", amp="off"))
    ckpt = tmp_path / "run" / "last.ckpt"
    cpu = Reader.from_checkpoint(ckpt, "cpu", backend="torch")
    gpu = Reader.from_checkpoint(ckpt, "cuda")
    samples = load_samples(tiny_dataset)
    images, _ = decode_images(samples.paths, cpu.config.height, cpu.config.width)
    out_cpu, out_gpu = cpu.forward(images), gpu.forward(images).cpu()
    torch.testing.assert_close(out_gpu, out_cpu, rtol=1e-3, atol=1e-3)
    texts_cpu, _ = cpu.read_batch(images, batch_size=16)
    texts_gpu, _ = gpu.read_batch(images, batch_size=16)
    agree = sum(a == b for a, b in zip(texts_cpu, texts_gpu)) / len(texts_cpu)
    assert agree >= 0.98
    amp = Reader.from_checkpoint(ckpt, "cuda", amp=True)
    assert amp.forward(images).dtype == torch.float32
