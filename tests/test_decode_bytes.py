"""crnn.data.decode_bytes: the pixels of to_gray for every mode, batches in order."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from crnn.data.decode_bytes import BytesDecoder, gray_from_bytes
from crnn.data.images import to_gray


def encoded(mode: str, size: tuple[int, int], seed: int, fmt: str = "PNG") -> bytes:
    rng = np.random.default_rng(seed)
    rgba = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 4), dtype=np.uint8), "RGBA")
    image = rgba.convert("RGB").convert("P") if mode == "P" else rgba.convert(mode)
    buf = io.BytesIO()
    image.save(buf, fmt)
    return buf.getvalue()


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "LA", "P", "I;16"])
@pytest.mark.parametrize("size", [(160, 60), (128, 32)])
def test_same_pixels_as_to_gray(mode, size):
    blob = encoded(mode, size, seed=len(mode))
    with Image.open(io.BytesIO(blob)) as im:
        expected = to_gray(im, 32, 128)
    got = gray_from_bytes(blob, 32, 128)
    assert got.dtype == np.uint8 and got.shape == (32, 128)
    assert np.array_equal(got, expected)


def test_jpeg_takes_the_same_path():
    blob = encoded("RGB", (160, 60), seed=3, fmt="JPEG")
    with Image.open(io.BytesIO(blob)) as im:
        assert np.array_equal(gray_from_bytes(blob, 32, 128), to_gray(im, 32, 128))


def test_batches_decode_in_order_and_stream_one_ahead():
    blobs = [encoded("RGB", (160, 60), seed=i) for i in range(7)]
    expected = np.stack([gray_from_bytes(b, 32, 128) for b in blobs])
    with BytesDecoder(32, 128, threads=2) as decoder:
        assert np.array_equal(decoder.decode(blobs).numpy(), expected)
        batches = [blobs[:3], blobs[3:6], blobs[6:], []]
        out = list(decoder.stream(batches))
    assert [tuple(t.shape) for t in out] == [(3, 32, 128), (3, 32, 128), (1, 32, 128),
                                            (0, 32, 128)]
    assert np.array_equal(np.concatenate([t.numpy() for t in out]), expected)


def test_a_corrupt_image_raises_from_the_batch():
    with BytesDecoder(32, 128, threads=2) as decoder, pytest.raises(OSError):
        decoder.decode([encoded("RGB", (160, 60), seed=0), b"not an image"])


def test_reader_pool_reads_what_the_reader_reads_in_order_and_restores_torch_threads(
        tmp_path):
    import torch

    from crnn.checkpoint import save_checkpoint
    from crnn.inference import Reader
    from crnn.models import ModelConfig, create_model
    from crnn.reader_pool import ReaderPool

    torch.manual_seed(0)
    config = ModelConfig(name="crnn", charset="0123456789abc", size="tiny")
    save_checkpoint(tmp_path / "m.ckpt", create_model(config), config, {})
    reader = Reader.from_checkpoint(tmp_path / "m.ckpt", "cpu")
    blobs = [encoded("RGB", (160, 60), seed=i) for i in range(11)]
    batches = [blobs[:4], blobs[4:8], blobs[8:], blobs[2:5], blobs[:1]]
    expected = [[r.text for r in reader.read(b)] for b in batches]
    assert len({t for texts in expected for t in texts}) > 1  # not all one reading
    threads = torch.get_num_threads()
    with ReaderPool(reader, workers=2) as pool:
        assert torch.get_num_threads() == 1
        assert list(pool.map(batches)) == expected
        images = [pool.images(b) for b in batches]
        assert list(pool.map(images)) == expected  # decoded images take the same path
    assert torch.get_num_threads() == threads
    with ReaderPool(reader, workers=2) as pool, pytest.raises(OSError):
        list(pool.map([blobs[:2], [b"not an image"]]))
