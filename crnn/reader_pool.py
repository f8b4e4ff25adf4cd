"""Many batches of encoded images -> texts on the CPU, one model session per core.

A single onnxruntime session splits each operator over the cores. Decoding the next batch's
bytes beside it (:meth:`crnn.data.decode_bytes.BytesDecoder.stream`) takes a core away in
the middle of those parallel operators, and the others wait for it. :class:`ReaderPool`
splits the work by batch instead: each worker thread owns a single-threaded session and
takes a whole batch through bytes -> pixels -> forward -> texts, so decoding and the
forward pass share the cores without interrupting each other. It serves throughput (a
queue of batches); one batch at a time is still fastest on a :class:`Reader` with every
core. ``python -m crnn.bench.decode_speed`` measures both ways side by side.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import torch

from crnn.data.images import gray_batch
from crnn.export import onnx_bytes
from crnn.inference import Reader, onnx_session
from plumbing.errors import UsageError


class ReaderPool:
    """``with ReaderPool(reader) as pool: pool.map(batches)``: texts per batch, in order.

    ``reader``: a CPU :class:`Reader` whose model each worker runs in its own
    single-threaded onnxruntime session; ``workers``: threads (default: the cores torch
    uses). While the pool is open torch runs single-threaded (the workers are the
    parallelism); closing restores its thread count.
    """

    def __init__(self, reader: Reader, workers: int | None = None) -> None:
        if reader.device.type != "cpu":
            raise UsageError("ReaderPool runs on the CPU; on CUDA use Reader.read_batch")
        self.reader = reader
        self.workers = max(1, workers or torch.get_num_threads())
        self._local = threading.local()
        # Exported once, here: the TorchScript-based exporter is not for concurrent use.
        self._graph = onnx_bytes(reader.model, reader.config)
        self._threads = torch.get_num_threads()
        torch.set_num_threads(1)
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="reader")

    def __enter__(self) -> ReaderPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        torch.set_num_threads(self._threads)

    def _worker_reader(self) -> Reader:
        reader = getattr(self._local, "reader", None)
        if reader is None:
            r = self.reader
            reader = Reader(r.model, r.config, r.device,
                            session=onnx_session(r.model, r.config, 1, self._graph))
            self._local.reader = reader
        return reader

    def images(self, blobs: Sequence[bytes]) -> torch.Tensor:
        """Encoded images -> ``(N, H, W)`` uint8 at the model's size, on the calling thread."""
        cfg = self.reader.config
        return torch.from_numpy(gray_batch(blobs, cfg.height, cfg.width))

    def _read(self, batch: Sequence[bytes] | torch.Tensor) -> list[str]:
        reader = self._worker_reader()
        images = batch if isinstance(batch, torch.Tensor) else self.images(batch)
        return reader.decode(reader.forward(images))[0]

    def warm(self) -> None:
        """Build every worker's session now (each exports and loads the model once)."""
        barrier = threading.Barrier(self.workers)

        def build() -> None:
            self._worker_reader()
            barrier.wait()  # one task per thread: no thread takes two

        for f in [self._pool.submit(build) for _ in range(self.workers)]:
            f.result()

    def map(self, batches: Iterable[Sequence[bytes] | torch.Tensor]) -> Iterator[list[str]]:
        """Each batch's texts, in order; a batch is encoded images (bytes) or ``(N, H, W)``
        uint8 images already at the model's size. At most two batches per worker are in
        flight, so a long iterable is not read ahead."""
        pending: collections.deque[Future] = collections.deque()
        for batch in batches:
            pending.append(self._pool.submit(self._read, batch))
            if len(pending) >= 2 * self.workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()

