"""A trained model ready to read images: preprocessing, forward pass and decoding."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from crnn.checkpoint import load_model
from crnn.data.images import normalize
from crnn.inputs import ImageLike, is_batch, to_batch
from crnn.models import ModelConfig
from crnn.progress import progress_bar
from plumbing.errors import UsageError


def pick_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda asked for, but torch sees no CUDA device")
    return torch.device(device)


def amp_by_default(device: torch.device) -> bool:
    """Whether training autocasts by default: on CUDA, and on CPUs with native bfloat16
    (AVX512-BF16 or AMX), where oneDNN's bf16 convolutions make a training step faster at
    the same accuracy per image seen (``benchmarks/train_speed.py`` measures both against
    float32 code). Elsewhere bf16 is emulated, slower than float32."""
    return device.type == "cuda" or (device.type == "cpu" and _cpu_has_native_bf16())


def _cpu_has_native_bf16() -> bool:
    cpu = torch.cpu  # private probes, absent from some builds: no answer means no
    return any(bool(getattr(cpu, probe, lambda: False)())
               for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))


BACKENDS = ("auto", "torch", "onnx")


@dataclass(frozen=True)
class Reading:
    """One image's text and its confidence (the product of the per-character
    probabilities of the decoded path, in [0, 1])."""

    text: str
    confidence: float


@dataclass
class Reader:
    """``Reader.from_checkpoint(path).read(x)``: the text in one image or in many.

    ``read`` takes paths, bytes, PIL images, numpy arrays, torch tensors or lists of these
    (``crnn.inputs``); ``read_batch`` is the fast path for ``(N, H, W)`` uint8 images already
    at the model's size. ``session``: an onnxruntime session that runs the model instead of
    torch (CPU only).
    """

    model: nn.Module
    config: ModelConfig
    device: torch.device
    amp: bool = False  # bf16/fp16 autocast, on CUDA
    channels_last: bool = False
    session: object | None = None

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "auto", amp: bool = False,
                        backend: str = "auto", threads: int | None = None) -> Reader:
        """A reader tuned for inference: batch norms folded into the convolutions and
        channels-last memory; on the CPU (``backend`` auto or onnx), onnxruntime runs the
        model, which is the fastest of the three on our machines (see the benchmark)."""
        if backend not in BACKENDS:
            raise UsageError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
        dev = pick_device(device)
        if backend == "onnx" and dev.type != "cpu":
            raise UsageError("the onnx backend runs on the CPU only")
        model, config, _ = load_model(path, dev)
        if backend == "onnx" or (backend == "auto" and dev.type == "cpu"):
            return cls(model, config, dev, session=onnx_session(model, config, threads))
        return cls(fuse_for_inference(model), config, dev, amp=amp and dev.type == "cuda",
                   channels_last=True)

    @torch.inference_mode()
    def forward(self, images: Tensor) -> Tensor:
        """(N, H, W) uint8 -> (T, N, C) for CTC models, (N, L, C) for cnn-fixed; float32."""
        if self.session is not None:
            with self._torch_quiet():
                x = normalize(images).numpy()
                return torch.from_numpy(self.session.run(None, {"image": x})[0])
        self.model.eval()
        x = normalize(images, self.device, self.channels_last)
        with torch.autocast(self.device.type, dtype=_amp_dtype(self.device), enabled=self.amp):
            out = self.model(x)
        return out.float()

    @contextlib.contextmanager
    def _torch_quiet(self) -> Iterator[None]:
        """Around onnxruntime's work, torch runs on one thread: its idle worker threads
        otherwise spin on the cores that onnxruntime's threads need."""
        threads = torch.get_num_threads()
        if self.session is None or threads == 1:
            yield
            return
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(threads)

    def decode(self, out: Tensor, beam: int | None = None, allowed: str | None = None,
               length_range: tuple[int, int] | None = None) -> tuple[list[str], Tensor]:
        with self._torch_quiet():
            return self._decode(out, beam, allowed, length_range)

    def _decode(self, out: Tensor, beam: int | None, allowed: str | None,
                length_range: tuple[int, int] | None) -> tuple[list[str], Tensor]:
        return self.config.head.read(out, self.config.charset, beam, allowed, length_range)

    def read(self, x: ImageLike | Sequence[ImageLike], batch_size: int = 256,
             beam: int | None = None, allowed: str | None = None,
             length_range: tuple[int, int] | None = None) -> Reading | list[Reading]:
        """The text in ``x``: one image -> a ``Reading``; a list or tuple of images (or a
        3-D/4-D torch tensor) -> a list of ``Reading`` in the same order. Images are
        preprocessed exactly as in training (``crnn.inputs``)."""
        images = to_batch(x, self.config.height, self.config.width)
        texts, conf = self.read_batch(images, batch_size, beam, allowed, length_range)
        readings = [Reading(t, float(c)) for t, c in zip(texts, conf.tolist())]
        return readings if is_batch(x) else readings[0]

    def read_batch(self, images: Tensor, batch_size: int = 256, beam: int | None = None,
                   allowed: str | None = None, length_range: tuple[int, int] | None = None,
                   progress: bool = False) -> tuple[list[str], Tensor]:
        """``(N, H, W)`` uint8 images at the model's size -> N texts and ``(N,)`` confidences.

        ``progress``: a bar on stderr (when it is a terminal) over the batches."""
        texts: list[str] = []
        confs: list[Tensor] = []
        with progress_bar(len(images), "reading", "img", enabled=progress) as bar:
            for i in range(0, len(images), batch_size):
                batch = images[i : i + batch_size]
                t, c = self.decode(self.forward(batch), beam, allowed, length_range)
                texts += t
                confs.append(c)
                bar.update(len(batch))
        return texts, torch.cat(confs) if confs else torch.zeros(0)


def fuse_for_inference(model: nn.Module) -> nn.Module:
    """Fold each batch norm into the convolution before it (same outputs, faster on the
    CPU: ``benchmarks/test_bench_forward.py``), and use channels-last memory."""
    from torch.fx.experimental.optimization import fuse

    model.eval()
    model.trunk = fuse(model.trunk)
    return model.to(memory_format=torch.channels_last)


def onnx_session(model: nn.Module, config: ModelConfig, threads: int | None = None,
                 graph: bytes | None = None):
    """An onnxruntime CPU session running ``model`` on ``threads`` (default: torch's);
    ``graph``: the model already exported (``crnn.export.onnx_bytes``)."""
    import onnxruntime as ort

    from crnn.export import onnx_bytes

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.log_severity_level = 3  # the exported LSTM's shape notices are expected
    return ort.InferenceSession(graph or onnx_bytes(model, config), options,
                                providers=["CPUExecutionProvider"])


def _amp_dtype(device: torch.device) -> torch.dtype:
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16

