"""``crnn export``: ONNX (dynamic batch, and width for CTC models) or TorchScript."""

from __future__ import annotations

import io
import json
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from crnn.checkpoint import load_model
from crnn.data.images import MEAN, STD
from crnn.models import ModelConfig
from plumbing.errors import UsageError

FORMATS = ("onnx", "torchscript")


def export(ckpt: str | Path, fmt: str, out: str | Path | None = None, opset: int = 17) -> dict:
    """Write the model of ``ckpt`` as ``fmt``; returns where, and the parity with torch.

    The exported graph takes ``image``: ``(N, 1, H, W)`` float32, grayscale normalised as
    ``(pixel / 255 - 0.5) / 0.5``, and gives log-probabilities: ``(T, N, C)`` for CTC models
    (blank = 0), ``(N, L, C)`` for cnn-fixed ("no character" = 0). The charset and input
    size travel in the file's metadata.
    """
    if fmt not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    model, config, _ = load_model(ckpt, "cpu")
    out = Path(out) if out else Path(ckpt).with_suffix(".onnx" if fmt == "onnx" else ".pt")
    if out.resolve() == Path(ckpt).resolve():
        raise UsageError(f"--out {out} is the checkpoint itself: choose another output file")
    if out.is_dir():
        raise UsageError(f"--out {out} is a directory: give a file name")
    meta = {"charset": config.charset, "model_config": json.dumps(config.to_dict()),
            "normalize": json.dumps({"mean": MEAN, "std": STD}),
            "output": "log_probs (T, N, C), blank=0" if config.is_ctc
            else "log_probs (N, L, C), no-character=0"}
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        if fmt == "onnx":
            tmp.write_bytes(onnx_bytes(model, config, meta, opset))
        else:
            example = torch.zeros(2, 1, config.height, config.width)
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                traced = torch.jit.trace(model, example)
                buf = io.BytesIO()  # written by us, so a bad path is an OSError naming it
                torch.jit.save(traced, buf, _extra_files={"meta.json": json.dumps(meta)})
            tmp.write_bytes(buf.getvalue())
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)  # nothing half-written left behind
        raise
    return {"path": str(out), "format": fmt, "max_abs_diff": parity(model, out, fmt, config)}


def onnx_bytes(model: torch.nn.Module, config: ModelConfig, meta: dict | None = None,
               opset: int = 17) -> bytes:
    """The model as an ONNX graph (dynamic batch; dynamic width for CTC models)."""
    import onnx

    axes = {"image": {0: "batch"}, "log_probs": {1: "batch"} if config.is_ctc else {0: "batch"}}
    if config.is_ctc:
        axes["image"][3] = "width"
        axes["log_probs"][0] = "frames"
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter's notices
        torch.onnx.export(model.eval(), (torch.zeros(2, 1, config.height, config.width),), buf,
                          input_names=["image"], output_names=["log_probs"],
                          dynamic_axes=axes, opset_version=opset, dynamo=False)
    proto = onnx.load_from_string(buf.getvalue())
    for k, v in (meta or {}).items():
        proto.metadata_props.add(key=k, value=v)
    return proto.SerializeToString()


def parity(model: torch.nn.Module, path: Path, fmt: str, config) -> float:
    """Largest difference between torch and the exported model on random inputs, over two
    batch sizes (and two widths for CTC models)."""
    gen = torch.Generator().manual_seed(0)
    widths = [config.width, max(16, config.width // 8 * 4)] if config.is_ctc else [config.width]
    worst = 0.0
    for n in (1, 3):
        for w in widths:
            x = torch.randn(n, 1, config.height, w, generator=gen)
            with torch.no_grad():
                want = model(x).numpy()
            got = run_exported(path, fmt, x.numpy())
            worst = max(worst, float(np.abs(got - want).max()))
    return worst


def run_exported(path: Path, fmt: str, x: np.ndarray) -> np.ndarray:
    if fmt == "onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return session.run(None, {"image": x})[0]
    module = torch.jit.load(str(path))
    with torch.no_grad():
        return module(torch.from_numpy(x)).numpy()
