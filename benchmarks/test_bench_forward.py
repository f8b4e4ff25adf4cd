"""Forward-pass micro-benchmarks at batch 32 on the CPU: models and runtimes side by side.

    pytest benchmarks/ --benchmark-only
"""

from __future__ import annotations

import pytest
import torch

from crnn.inference import Reader, fuse_for_inference, onnx_session
from crnn.models import ModelConfig, create_model

CHARSET = "0123456789abcdefghijklmnopqrstuvwxyz"
IMAGES = torch.randint(0, 256, (32, 32, 128), dtype=torch.uint8)


def _reader(name: str, runtime: str) -> Reader:
    cfg = ModelConfig(name=name, charset=CHARSET, size="small")
    model = create_model(cfg).eval()
    if runtime == "onnxruntime":
        return Reader(model, cfg, torch.device("cpu"), session=onnx_session(model, cfg))
    if runtime == "torch (folded BN)":
        return Reader(fuse_for_inference(model), cfg, torch.device("cpu"), channels_last=True)
    return Reader(model, cfg, torch.device("cpu"))


@pytest.mark.parametrize("runtime", ["torch eager", "torch (folded BN)", "onnxruntime"])
@pytest.mark.parametrize("name", ["crnn", "cnn-ctc", "cnn-fixed"])
def test_forward_batch_32(benchmark, name, runtime):
    reader = _reader(name, runtime)
    benchmark(lambda: reader.forward(IMAGES))
