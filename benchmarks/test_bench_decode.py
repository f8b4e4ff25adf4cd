"""CTC decoding side by side on one batch of peaked logits (40 frames x 2048 rows x 37 classes).

    pytest benchmarks/test_bench_decode.py --benchmark-only

The per-row decoders (the loop, the peers' beam searches) run on the first 128 rows only,
so compare them per sequence: the ``ops`` column times 128 or 2048 as the test name says.
Peers that are not installed are skipped (pip install '.[peers]').
"""

from __future__ import annotations

import logging

import pytest
import torch

from crnn.bench.decode_speed import default_charset, peaked_log_probs
from crnn.decode import beam, greedy, reference

ROWS, SLOW_ROWS, WIDTH = 2048, 128, 10
LOG_PROBS = peaked_log_probs(ROWS)  # (T, N, C)
CHARSET = default_charset(LOG_PROBS.shape[2] - 1)
PER_ROW = LOG_PROBS.transpose(0, 1).contiguous()  # (N, T, C), what the peers take


def test_reference_loop_128_rows(benchmark):
    texts = benchmark(reference, LOG_PROBS[:, :SLOW_ROWS], CHARSET)
    assert len(texts) == SLOW_ROWS


def test_ours_greedy_2048_rows(benchmark):
    texts = benchmark(greedy, LOG_PROBS, CHARSET)
    assert texts[:SLOW_ROWS] == reference(LOG_PROBS[:, :SLOW_ROWS], CHARSET)


def test_ours_beam_2048_rows(benchmark):
    texts = benchmark.pedantic(beam, (LOG_PROBS, CHARSET, WIDTH), rounds=5, warmup_rounds=1)
    assert len(texts) == ROWS


def test_fast_ctc_decode_viterbi_2048_rows(benchmark):
    fast_ctc_decode = pytest.importorskip("fast_ctc_decode")
    probs, alphabet = PER_ROW.exp().numpy(), ["", *CHARSET]

    def run():
        return [fast_ctc_decode.viterbi_search(p, alphabet)[0] for p in probs]

    assert benchmark(run)[:SLOW_ROWS] == reference(LOG_PROBS[:, :SLOW_ROWS], CHARSET)


def test_fast_ctc_decode_beam_128_rows(benchmark):
    fast_ctc_decode = pytest.importorskip("fast_ctc_decode")
    probs, alphabet = PER_ROW[:SLOW_ROWS].exp().numpy(), ["", *CHARSET]

    def run():
        return [fast_ctc_decode.beam_search(p, alphabet, WIDTH, 1e-3)[0] for p in probs]

    texts = benchmark.pedantic(run, rounds=5, warmup_rounds=1)
    assert len(texts) == SLOW_ROWS


def test_pyctcdecode_beam_128_rows(benchmark):
    pytest.importorskip("pyctcdecode")
    logging.getLogger("pyctcdecode").setLevel(logging.ERROR)  # kenlm and space-token notes
    from pyctcdecode import build_ctcdecoder

    decoder = build_ctcdecoder(["", *CHARSET])
    rows = PER_ROW[:SLOW_ROWS].numpy()

    def run():
        return [decoder.decode(r, beam_width=WIDTH) for r in rows]

    texts = benchmark.pedantic(run, rounds=3, warmup_rounds=1)
    ours = beam(LOG_PROBS[:, :SLOW_ROWS], CHARSET, WIDTH)
    assert sum(a == b for a, b in zip(texts, ours)) >= 0.95 * SLOW_ROWS


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_ours_greedy_cuda_2048_rows(benchmark):
    gpu = LOG_PROBS.cuda()
    assert benchmark(greedy, gpu, CHARSET) == greedy(LOG_PROBS, CHARSET)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_ours_beam_cuda_2048_rows(benchmark):
    gpu = LOG_PROBS.cuda()
    texts = benchmark.pedantic(beam, (gpu, CHARSET, WIDTH), rounds=5, warmup_rounds=1)
    assert len(texts) == ROWS
