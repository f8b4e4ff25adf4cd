"""``crnn export``: ONNX (dynamic batch, and width for CTC models), TorchScript, or an ONNX
graph and charsets file that ddddocr loads as a custom model."""

from __future__ import annotations

import io
import json
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from crnn.checkpoint import load_model
from crnn.data.images import MEAN, STD, normalize
from crnn.models import ModelConfig
from crnn.progress import progress_bar
from plumbing.errors import UsageError
from plumbing.files import atomic_write

FORMATS = ("onnx", "torchscript", "ddddocr")
DDDDOCR_HEIGHT = 64  # ddddocr's own default: it resizes images to this height first


def export(ckpt: str | Path, fmt: str, out: str | Path | None = None, opset: int = 17,
           ddddocr_height: int = DDDDOCR_HEIGHT, progress: bool = False) -> dict:
    """Write the model of ``ckpt`` as ``fmt``; returns where, and the parity with torch.

    The exported graph takes ``image``: ``(N, 1, H, W)`` float32, grayscale normalised as
    ``(pixel / 255 - 0.5) / 0.5``, and gives log-probabilities: ``(T, N, C)`` for CTC models
    (blank = 0), ``(N, L, C)`` for cnn-fixed ("no character" = 0). The charset and input
    size travel in the file's metadata.
    """
    if fmt not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if not 8 <= ddddocr_height <= 4096:
        raise UsageError(f"--ddddocr-height must be between 8 and 4096, got {ddddocr_height}")
    out = Path(out) if out else Path(ckpt).with_suffix(".pt" if fmt == "torchscript"
                                                       else ".onnx")
    if out.resolve() == Path(ckpt).resolve():
        raise UsageError(f"--out {out} is the checkpoint itself: choose another output file")
    if out.is_dir():
        raise UsageError(f"--out {out} is a directory: give a file name")
    with progress_bar(3, f"exporting {fmt}", "step", enabled=progress) as bar:
        model, config, _ = load_model(ckpt, "cpu")
        bar.update()
        if fmt == "ddddocr":
            result = write_ddddocr(model, config, out, ddddocr_height)
        else:
            write_plain(model, config, fmt, out, opset)
            result = {"path": str(out), "format": fmt}
        bar.update()
        result["max_abs_diff"] = (ddddocr_parity(model, config, out) if fmt == "ddddocr"
                                  else parity(model, out, fmt, config))
        bar.update()
    return result


def write_plain(model: torch.nn.Module, config: ModelConfig, fmt: str, out: Path,
                opset: int = 17) -> None:
    """The model as ONNX or TorchScript at ``out``, with the charset in its metadata."""
    meta = {"charset": config.charset, "model_config": json.dumps(config.to_dict()),
            "normalize": json.dumps({"mean": MEAN, "std": STD}),
            "output": config.head.layout}
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


def onnx_bytes(model: torch.nn.Module, config: ModelConfig, meta: dict | None = None,
               opset: int = 17) -> bytes:
    """The model as an ONNX graph (dynamic batch; dynamic width for CTC models)."""
    import onnx

    axes = {"image": {0: "batch"}, "log_probs": {config.head.batch_dim: "batch"}}
    if config.head.width_is_free:
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
    widths = [config.width]
    if config.head.width_is_free:
        widths.append(max(16, config.width // 8 * 4))
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


class _FramedOutput(torch.nn.Module):
    """cnn-fixed's ``(N, L, C)`` heads as ``(N, 2L, C)`` CTC frames, a blank after each head,
    so that a CTC reader (ddddocr merges repeated frames) keeps doubled characters."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x)
        blank = torch.full_like(out, -1e4)
        blank[..., 0] = 0.0
        return torch.stack([out, blank], dim=2).flatten(1, 2)


def ddddocr_graph(model: torch.nn.Module, config: ModelConfig) -> bytes:
    """An ONNX graph that takes what ddddocr feeds a custom model and gives what it decodes.

    Input ``input1``: ``(N, 1, h, w)`` float32 grayscale in [0, 1], any size. Inside: the
    training preprocessing (bilinear resize with antialiasing to the model's size, like PIL's
    BILINEAR; rounding to 8-bit levels; ``(x - 0.5) / 0.5``), then the model. Output
    ``output``: log-probabilities, ``(T, N, C)`` with blank 0, which ddddocr decodes greedily.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    net = model if config.head.kind == "ctc" else _FramedOutput(model)
    proto = onnx.load_from_string(onnx_bytes(net, config, opset=18))
    g = proto.graph
    for node in g.node:  # the model now reads the normalised image from "normalized"
        node.input[:] = ["normalized" if i == "image" else i for i in node.input]
    del g.input[:]
    g.input.append(helper.make_tensor_value_info(
        "input1", TensorProto.FLOAT, ["batch", 1, "height", "width"]))
    g.output[0].name = "output"
    for node in g.node:
        node.output[:] = ["output" if o == "log_probs" else o for o in node.output]
    consts = {"size_hw": np.array([config.height, config.width], np.int64),
              "c255": np.array(255.0, np.float32), "c0": np.array(0.0, np.float32),
              "mean": np.array(MEAN, np.float32), "std": np.array(STD, np.float32)}
    g.initializer.extend(numpy_helper.from_array(v, k) for k, v in consts.items())
    pre = [
        helper.make_node("Resize", ["input1", "", "", "size_hw"], ["resized"], mode="linear",
                         antialias=1, axes=[2, 3], coordinate_transformation_mode="half_pixel"),
        helper.make_node("Mul", ["resized", "c255"], ["levels"]),
        helper.make_node("Round", ["levels"], ["rounded"]),
        helper.make_node("Clip", ["rounded", "c0", "c255"], ["pixels"]),
        helper.make_node("Div", ["pixels", "c255"], ["unit"]),
        helper.make_node("Sub", ["unit", "mean"], ["centred"]),
        helper.make_node("Div", ["centred", "std"], ["normalized"]),
    ]
    nodes = [*pre, *g.node]
    del g.node[:]
    g.node.extend(nodes)
    onnx.checker.check_model(proto)
    return proto.SerializeToString()


def write_ddddocr(model: torch.nn.Module, config: ModelConfig, out: Path,
                  height: int = DDDDOCR_HEIGHT) -> dict:
    """``crnn export --format ddddocr``: ``OUT.onnx`` and ``OUT.charsets.json`` for
    ``ddddocr.DdddOcr(ocr=False, det=False, import_onnx_path=..., charsets_path=...)``.

    ddddocr resizes each image to ``height`` (keeping its aspect ratio, LANCZOS), converts it
    to grayscale and feeds [0, 1] pixels; the graph then resizes as training did. With
    ``height`` equal to the captchas' own height ddddocr's resize changes nothing and
    ``ocr.classification(image)`` reads exactly what ``Reader.read(image)`` reads.
    """
    charsets = out.with_suffix(".charsets.json")
    info = {"charset": ["", *config.charset], "word": False, "image": [-1, height],
            "channel": 1}
    atomic_write(out, ddddocr_graph(model.eval(), config))
    atomic_write(charsets, json.dumps(info, ensure_ascii=False).encode("utf-8"))
    return {"path": str(out), "charsets": str(charsets), "format": "ddddocr"}


def ddddocr_parity(model: torch.nn.Module, config: ModelConfig, path: Path) -> float:
    """Largest difference between the graph on [0, 1] images already at the model's size
    and torch on the same images normalised (CTC frames; for cnn-fixed, the heads)."""
    import onnxruntime as ort

    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (3, config.height, config.width), generator=gen,
                           dtype=torch.uint8)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"input1": (images.unsqueeze(1).float() / 255).numpy()})[0]
    with torch.no_grad():
        want = model(normalize(images)).numpy()
    if config.head.kind != "ctc":  # the heads, without the blanks put between them
        got = got[:, 0::2]
    return float(np.abs(got - want).max())
