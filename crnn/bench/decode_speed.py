"""CTC decoding speed: our decoders against the per-frame loop and the installed peers.

Run standalone: ``python -m crnn.bench.decode_speed [--rows 2048 --frames 40 --classes 37
--width 10 --device cpu|cuda --checkpoint CKPT]``: a crnn-small's own outputs (trained once
and cached unless ``--checkpoint``) and the synthetic peaked logits, at batch 1 to 2,048,
with the peers side by side, and the PNG end-to-end row; ``crnn-bench`` calls
:func:`run_decode_benchmark`.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import math
import os
import statistics
import string
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from crnn.bench.environment import environment
from crnn.bench.provenance import code_hash
from crnn.bench.stats import ratio_interval
from crnn.decode import beam, greedy, reference
from plumbing.files import atomic_write, write_json


def peaked_log_probs(
    n: int,
    t: int = 40,
    c: int = 37,
    seed: int = 0,
    device: str | torch.device = "cpu",
    peak: float = 6.0,
    noise: float = 0.7,
) -> torch.Tensor:
    """Log-probabilities that look like a trained CRNN's output: ``-> (T, N, C)``, blank = 0.

    Each row reads a random label of 4-6 symbols: every symbol holds for 1-3 frames, blanks
    sit around and between symbols (always between two equal ones). Every logit is Gaussian
    noise (sd ``noise``) and the frame's class gets ``peak`` more, which leaves it 0.87 of
    the probability on average and spreads the rest thinly over the other classes, as label
    smoothing does. One frame in 20 is uncertain: a rival class comes within N(1.75, 1)
    logits of the frame's class, and overtakes it 4% of the time.

    The defaults make the peers' speeds relative to one another match the issue's figures
    (the peers' cost grows with the number of classes above their thresholds), and leave
    enough ambiguity that beam search differs from greedy on about 1% of the rows; decoders
    that are right then agree with pyctcdecode on 99.4-99.6% of them. Deterministic per
    ``seed`` (generated on the CPU, then moved to ``device``).
    """
    if c < 2:
        raise ValueError(f"need at least one symbol besides the blank, got c={c}")
    g = torch.Generator().manual_seed(seed)
    max_len = 6
    lengths = torch.randint(4, max_len + 1, (n,), generator=g)
    labels = torch.randint(1, c, (n, max_len), generator=g)
    durations = torch.randint(1, 4, (n, max_len), generator=g)
    gaps = torch.randint(0, 3, (n, max_len), generator=g)
    # A repeated symbol needs a blank between its runs, or CTC would merge them.
    repeat = torch.zeros(n, max_len, dtype=torch.bool)
    repeat[:, 1:] = labels[:, 1:] == labels[:, :-1]
    gaps[:, 0] = 0
    gaps = torch.where(repeat & (gaps == 0), torch.ones_like(gaps), gaps)
    used = (torch.arange(max_len) < lengths[:, None]).long()
    span = ((durations + gaps) * used).sum(1)
    lead = (torch.rand(n, generator=g) * (t - span + 1).clamp(min=1)).long()
    ends = lead[:, None] + (gaps + durations).cumsum(1)
    starts = ends - durations

    frames = torch.arange(t)
    target = torch.zeros(n, t, dtype=torch.long)
    for i in range(max_len):  # over label positions, a handful of steps
        inside = (frames >= starts[:, i : i + 1]) & (frames < ends[:, i : i + 1])
        inside &= (i < lengths)[:, None]
        target = torch.where(inside, labels[:, i : i + 1], target)

    logits = noise * torch.randn(n, t, c, generator=g)
    logits.scatter_add_(2, target[..., None], torch.full((n, t, 1), peak))
    uncertain = torch.rand(n, t, generator=g) < 0.05
    rival = torch.randint(0, c, (n, t), generator=g)
    rival_logit = (
        logits.gather(2, target[..., None])[..., 0] - 1.75 + torch.randn(n, t, generator=g)
    )
    current = logits.gather(2, rival[..., None])[..., 0]
    logits.scatter_(2, rival[..., None], torch.where(uncertain, rival_logit, current)[..., None])
    return logits.log_softmax(-1).transpose(0, 1).contiguous().to(device)


def default_charset(symbols: int) -> str:
    """``symbols`` distinct printable characters: digits, then lower- and upper-case letters."""
    pool = string.digits + string.ascii_lowercase + string.ascii_uppercase + string.punctuation
    extra = "".join(chr(0x100 + i) for i in range(max(0, symbols - len(pool))))
    return (pool + extra)[:symbols]


# Optional peers: pip package, import name.
_PEERS = {"fast-ctc-decode": "fast_ctc_decode", "pyctcdecode": "pyctcdecode"}


def available_peers() -> dict[str, bool]:
    """Whether each optional peer decoder is importable, by pip package name."""
    return {name: importlib.util.find_spec(module) is not None for name, module in _PEERS.items()}


def missing_peers() -> list[str]:
    """The peer decoders that are not installed (``pip install '.[peers]'``)."""
    return [name for name, present in available_peers().items() if not present]


@dataclass
class _Contender:
    name: str
    decode: Callable[[int, int], list[str]]  # (first row i, b) -> texts of rows i .. i + b - 1
    device: str
    decode_tensor: Callable[[torch.Tensor], list[str]] | None = None  # ours: a (T, b, C) slice
    slow: bool = False  # a per-row Python decoder: timed on a few rows, then scaled


def run_decode_benchmark(
    log_probs: torch.Tensor,
    charset: str,
    batch_sizes: Sequence[int] = (1, 32, 256, 2048),
    beam_width: int = 10,
    min_seconds: float = 0.2,
    slow_rows: int = 128,
    agreement_rows: int = 2048,
    repeats: int = 5,
) -> list[dict]:
    """Time every decoder on the first b rows of ``log_probs`` (T, N, C) for each batch size b.

    One row per (implementation, batch size) with ``implementation``, ``batch_size``,
    ``sequences_per_s``, ``us_per_sequence``, ``speedup_vs_reference``,
    ``agreement_with_reference`` (share of rows whose text equals the per-frame loop's),
    ``agreement_with_pyctcdecode`` (beam searches, when pyctcdecode is installed), ``device``
    and ``note``; agreement is counted on the first ``agreement_rows`` rows at most.
    ``sequences_per_s`` is the median of ``repeats`` rounds, each listed in
    ``rounds_sequences_per_s``: a ratio of two contenders is then taken round by round
    (:func:`target_ratios`), and its spread over rounds gives it an interval.

    At batch b every contender decodes consecutive slices of b rows, a call per slice, as a
    caller with b images at a time would: ours get each slice as the contiguous (T, b, C)
    tensor a model returns at that batch, the peers get it already converted to what they
    take (per-row numpy probabilities or log-probabilities), both prepared outside the
    timing. The calls cycle over the slices (at batch 1, every row in turn, so rows that
    need a real search count at their share), and the time per call is the median over
    cycles, the contenders taking turns until each ran for ``min_seconds`` after a warm-up
    (:func:`_interleaved_seconds_per_call`), once per round. The per-row Python
    decoders (the loop, the peers' beam searches) cycle over at most ``slow_rows`` rows and
    are timed on at most that many per call, scaled, which the note says.
    """
    n = log_probs.shape[1]
    sizes = [b for b in batch_sizes if b <= n]
    host = log_probs.detach().float().cpu()
    contenders = _contenders(log_probs, host, charset, beam_width)
    checked = min(n, agreement_rows)
    texts = {c.name: c.decode(0, checked) for c in contenders}  # doubles as a warm-up
    truth = {"reference": texts["reference loop"]}
    if f"pyctcdecode beam (w={beam_width})" in texts:
        truth["pyctcdecode"] = texts[f"pyctcdecode beam (w={beam_width})"]

    rows: list[dict] = []
    for b in sizes:
        slices = [log_probs[:, i : i + b].contiguous() for i in range(0, n - b + 1, b)]
        timed = [min(b, slow_rows) if c.slow else b for c in contenders]
        calls = [
            (_caller(c, slices, b, rows_timed),
             max(1, min(len(slices), slow_rows // b)) if c.slow else len(slices))
            for c, rows_timed in zip(contenders, timed)
        ]
        rounds = [_interleaved_seconds_per_call(calls, min_seconds) for _ in range(repeats)]
        reference_speed = None
        for k, (c, rows_timed) in enumerate(zip(contenders, timed)):
            speeds = [rows_timed / seconds[k] for seconds in rounds]
            speed = statistics.median(speeds)
            if c.name == "reference loop":
                reference_speed = speed
            row = {
                "implementation": c.name,
                "batch_size": b,
                "sequences_per_s": speed,
                "rounds_sequences_per_s": speeds,
                "sequences_per_s_range": [min(speeds), max(speeds)],
                "us_per_sequence": 1e6 / speed,
                "speedup_vs_reference": speed / reference_speed if reference_speed else None,
                "agreement_with_reference": _agreement(texts[c.name], truth["reference"], b),
                "device": c.device,
                "note": f"timed on {rows_timed} of {b} rows, scaled" if rows_timed < b else "",
            }
            if "beam" in c.name and "pyctcdecode" in truth:
                row["agreement_with_pyctcdecode"] = _agreement(
                    texts[c.name], truth["pyctcdecode"], b
                )
            rows.append(row)
    return rows


def _caller(c: _Contender, slices: list[torch.Tensor], b: int, timed: int
            ) -> Callable[[int], list[str]]:
    """Call i of contender ``c`` at batch ``b``: slice i (its first ``timed`` rows)."""
    if c.decode_tensor is not None:
        return lambda i: c.decode_tensor(slices[i])
    return lambda i: c.decode(i * b, timed)


def _contenders(
    log_probs: torch.Tensor, host: torch.Tensor, charset: str, width: int
) -> list[_Contender]:
    device = log_probs.device.type
    found = available_peers()
    contenders = [
        _Contender("reference loop", lambda i, b: reference(host[:, i : i + b], charset), "cpu",
                   slow=True),
        _Contender("ours greedy", lambda i, b: greedy(log_probs[:, i : i + b], charset), device,
                   lambda x: greedy(x, charset)),
        _Contender(
            f"ours beam (w={width})", lambda i, b: beam(log_probs[:, i : i + b], charset, width),
            device, lambda x: beam(x, charset, width),
        ),
    ]
    if found["fast-ctc-decode"]:
        import fast_ctc_decode

        probs = host.exp().transpose(0, 1).contiguous().numpy()  # (N, T, C), blank first
        alphabet = ["", *charset]
        contenders += [
            _Contender(
                "fast-ctc-decode viterbi",
                lambda i, b: [fast_ctc_decode.viterbi_search(p, alphabet)[0]
                              for p in probs[i : i + b]],
                "cpu",
            ),
            _Contender(
                f"fast-ctc-decode beam (w={width})",
                lambda i, b: [
                    fast_ctc_decode.beam_search(p, alphabet, width, 1e-3)[0]
                    for p in probs[i : i + b]
                ],
                "cpu",
                slow=True,
            ),
        ]
    if found["pyctcdecode"]:
        decoder = _pyctcdecode_decoder(charset)
        rows = host.transpose(0, 1).contiguous().numpy()  # (N, T, C) log-probabilities
        contenders.append(
            _Contender(
                f"pyctcdecode beam (w={width})",
                lambda i, b: [decoder.decode(r, beam_width=width) for r in rows[i : i + b]],
                "cpu",
                slow=True,
            )
        )
    return contenders


def _pyctcdecode_decoder(charset: str):
    # pyctcdecode logs warnings about kenlm and a missing space token: neither applies here.
    logger = logging.getLogger("pyctcdecode")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        from pyctcdecode import build_ctcdecoder

        return build_ctcdecoder(["", *charset])
    finally:
        logger.setLevel(level)


def _interleaved_seconds_per_call(calls: Sequence[tuple[Callable[[int], object], int]],
                                  min_seconds: float, turn_seconds: float = 0.05
                                  ) -> list[float]:
    """Per ``(call, count)``: the median over cycles of the mean time of ``call(0) ..
    call(count - 1)``.

    The contenders take turns: each round gives every one of them cycles for about
    ``turn_seconds`` (one cycle at least), and rounds go on until each has run for
    ``min_seconds`` and three cycles. A slow spell of the machine (other work on the cores)
    then falls on all of them alike instead of on whichever was being timed, so their
    ratios hold on a busy machine too.
    """
    for call, _ in calls:
        call(0)  # warm-up
    cycles: list[list[float]] = [[] for _ in calls]
    spent = [0.0] * len(calls)
    while any(len(c) < 3 or s < min_seconds for c, s in zip(cycles, spent)):
        for k, (call, count) in enumerate(calls):
            turn = 0.0
            while turn < turn_seconds or not cycles[k]:
                begin = time.perf_counter()
                for i in range(count):
                    call(i)
                took = time.perf_counter() - begin
                cycles[k].append(took / count)
                turn += took
                if turn >= turn_seconds:
                    break
            spent[k] += turn
    return [statistics.median(c) for c in cycles]


def _agreement(texts: list[str], truth: list[str], b: int) -> float:
    rows = min(b, len(truth))
    return sum(x == y for x, y in zip(texts[:rows], truth[:rows])) / rows


def model_outputs(checkpoint: str | Path | None, rows: int, seed: int, cache: Path,
                  images: int, test_images: int = 2048
                  ) -> tuple[torch.Tensor, str, list[bytes], Path, str]:
    """A CRNN's ``(T, rows, C)`` log-probabilities on freshly rendered test captchas.

    Without ``checkpoint``, trains crnn-small on ``images`` rendered captchas (4-6 symbols of
    alnum, as the suites use) once. The rendered data and the model are kept in ``cache``
    under the hash of the code that made them: another version of the code makes its own.
    Returns the log-probabilities (the test images' outputs repeated to fill ``rows``), the
    charset, the test images' PNG bytes, the checkpoint used and the model's title
    (name-size). The forward pass runs in chunks.
    """
    from captchagen import CaptchaSpec, DatasetJob, parse_charset, write_dataset
    from crnn.data.images import decode_images
    from crnn.data.sources import load_samples
    from crnn.inference import Reader
    from crnn.train import TrainConfig, train

    cache = cache / code_hash()  # data and model of this version of the code
    spec = CaptchaSpec(charset=parse_charset("alnum"), min_len=4, max_len=6)
    test = cache / f"test-{seed}-{test_images}"
    if not test.exists():
        write_dataset(DatasetJob(spec=spec, n=test_images, seed=seed + 1), test)
    if checkpoint is None:
        run = cache / f"crnn-small-{images}images-seed{seed}"
        if not (run / "summary.json").is_file():
            data = cache / f"train-{seed}"
            if not data.exists():
                write_dataset(DatasetJob(spec=spec, n=40_000, seed=seed), data)
            train(TrainConfig(data=str(data), out=str(run), model="crnn", size="small",
                              images=images, seed=seed, progress=False, overwrite=True))
        checkpoint = run / "best.ckpt"
    reader = Reader.from_checkpoint(checkpoint, "cpu", backend="torch")
    samples = load_samples(test)
    images, _ = decode_images(samples.paths, reader.config.height, reader.config.width)
    lp = torch.cat([reader.forward(images[i : i + 256]) for i in range(0, len(images), 256)], 1)
    lp = lp.repeat(1, -(-rows // lp.shape[1]), 1)[:, :rows].contiguous()
    blobs = [p.read_bytes() for p in samples.paths[:256]]
    title = f"{reader.config.name}-{reader.config.size}"
    return lp, reader.config.charset, blobs, Path(checkpoint), title


def end_to_end(checkpoint: Path, blobs: list[bytes], batch: int = 32,
               min_seconds: float = 2.0, calls: int = 24, rounds: int = 5) -> dict:
    """From PNG bytes to texts at ``batch`` on the CPU, against forward + decoding alone.

    :func:`crnn.bench.throughput.measure_stages`'s row (onnxruntime, the CPU default: the
    stages one by one), with four rates measured in alternating rounds of ``calls`` batches
    (medians over ``rounds``), so that a slow spell of the machine hits them alike:
    ``model_images_per_s`` (the Reader's forward + decoding on images decoded beforehand),
    ``pipelined_images_per_s`` (bytes -> texts, the next batch decoding on a thread pool
    during this one's forward), ``pool_images_per_s`` (bytes -> texts on a
    :class:`crnn.reader_pool.ReaderPool`: a single-threaded session per core, each worker
    taking whole batches) and ``pool_model_images_per_s`` (the pool on decoded images).
    ``bytes_vs_model``: the faster way from bytes over ``model_images_per_s``.
    """
    from crnn.bench.throughput import measure_stages, with_rates
    from crnn.data.decode_bytes import BytesDecoder
    from crnn.inference import Reader
    from crnn.reader_pool import ReaderPool

    reader = Reader.from_checkpoint(checkpoint, "cpu")
    work = [blobs[i % len(blobs)] for i in range(batch)]
    cfg = reader.config
    with BytesDecoder(cfg.height, cfg.width) as decoder:
        # The stages before the pool opens: it runs torch single-threaded while open.
        row = measure_stages(reader, decoder, work, warmup=5, repeats=20,
                             min_seconds=min_seconds)
        with ReaderPool(reader) as pool:
            images = pool.images(work)
            pool.warm()

            def model() -> None:
                for _ in range(calls):
                    reader.decode(reader.forward(images))

            def pipelined() -> None:
                for x in decoder.stream([work] * calls):
                    reader.decode(reader.forward(x))

            ways = {"model": model, "pipelined": pipelined,
                    "pool": lambda: list(pool.map([work] * calls)),
                    "pool_model": lambda: list(pool.map([images] * calls))}
            rates: dict[str, list[float]] = {name: [] for name in ways}
            for way in ways.values():
                way()  # warm-up
            for _ in range(rounds):
                for name, way in ways.items():
                    start = time.perf_counter()
                    way()
                    rates[name].append(batch * calls / (time.perf_counter() - start))
    med = {f"{name}_images_per_s": statistics.median(v) for name, v in rates.items()}
    best = max(med["pipelined_images_per_s"], med["pool_images_per_s"])
    return {**with_rates(row, med["model_images_per_s"], med["pipelined_images_per_s"]),
            "pool_images_per_s": med["pool_images_per_s"],
            "pool_model_images_per_s": med["pool_model_images_per_s"],
            "rounds": rounds, "calls_per_round": calls,
            "pool_vs_model": med["pool_images_per_s"] / med["model_images_per_s"],
            "pool_vs_pool_model": med["pool_images_per_s"] / med["pool_model_images_per_s"],
            "bytes_vs_model": best / med["model_images_per_s"]}


def _default_cache() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "captcha-crnn" / "decode_speed"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2048)
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--classes", type=int, default=37)
    parser.add_argument("--width", type=int, default=10)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--min-seconds", type=float, default=0.2,
                        help="each contender's time per round")
    parser.add_argument("--repeats", type=int, default=5,
                        help="rounds; the ratios' intervals come from their spread")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint", default=None,
                        help="a crnn-small checkpoint for the model-output rows (default: "
                        "train one on --model-images, cached in --cache)")
    parser.add_argument("--model-images", type=int, default=60_000,
                        help="training images seen by the default crnn-small (~6 minutes "
                        "on 2 CPU cores)")
    parser.add_argument("--test-images", type=int, default=2048,
                        help="rendered captchas whose outputs are decoded")
    parser.add_argument("--cache", type=Path, default=_default_cache())
    parser.add_argument("--no-model", action="store_true", help="synthetic logits only")
    parser.add_argument(
        "--out", default=None, help="also write OUT.md and OUT.json (e.g. docs/benchmarks/decoding)"
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    charset = default_charset(args.classes - 1)
    big = 65_536 if args.device == "cuda" else args.rows
    lp = peaked_log_probs(max(args.rows, big), args.frames, args.classes, args.seed, args.device)
    sizes = sorted({1, 32, 256, args.rows, big})
    sources = []
    e2e = None
    if not args.no_model:
        model_lp, model_charset, blobs, ckpt, title = model_outputs(
            args.checkpoint, max(args.rows, big), args.seed, args.cache, args.model_images,
            args.test_images)
        sources.append((f"{title} outputs", model_lp.to(args.device), model_charset))
        e2e = end_to_end(ckpt, blobs)
    sources.append(("synthetic peaked", lp, charset))
    rows = []
    for name, logits, symbols in sources:
        found = run_decode_benchmark(logits, symbols, sizes, args.width, args.min_seconds,
                                     repeats=args.repeats)
        rows += [{"logits": name, **r} for r in found]

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    lines = [
        f"CTC decoding; torch {torch.__version__}, {torch.get_num_threads()} CPU threads, "
        f"device {args.device}; load average after the run {load} (other work on the CPU "
        "slows torch's multi-threaded operations most)",
        "",
        *[f"- {name}: log-probabilities of shape {tuple(x.shape)} (T, N, C)"
          for name, x, _ in sources],
        f"- {sources[0][0]}: the model's log-probabilities on {args.test_images:,} rendered "
        "captchas (4-6 symbols of alnum), repeated to fill the rows "
        f"({ckpt.parent.name}/{ckpt.name})"
        if e2e is not None else "- model outputs: not measured (--no-model)",
        f"- synthetic peaked: peaked_log_probs, ({args.frames}, N, {args.classes}), "
        f"seed {args.seed}",
        "",
        _markdown(rows),
    ]
    missing = missing_peers()
    if missing:
        lines += [
            "",
            f"Not installed, so not measured: {', '.join(missing)} (pip install '.[peers]').",
        ]
    ratios = target_ratios(rows, args.width)
    lines += ["", f"Ours over the peer, the geometric mean of {args.repeats} rounds' ratios "
              "[95% t interval]; a target is met when the whole interval reaches it:", "",
              *[f"- {line}" for line in _ratio_lines(rows, ratios, args.width)]]
    if e2e is not None:
        lines += [
            "",
            f"End to end at batch 32 ({title}, onnxruntime on the CPU), images/s, medians of "
            f"{e2e['rounds']} alternating rounds of {e2e['calls_per_round']} batches:",
            "",
            f"- forward + decoding alone (the Reader: one session on {torch.get_num_threads()} "
            f"threads, images decoded beforehand): {e2e['model_images_per_s']:,.0f}",
            "- PNG bytes -> texts, the next batch decoding on a thread pool during this one's "
            f"forward: {e2e['pipelined_images_per_s']:,.0f} "
            f"({e2e['pipelined_vs_model']:.2f} of the Reader alone)",
            "- PNG bytes -> texts on a ReaderPool (a single-threaded session per core, each "
            f"worker taking whole batches): {e2e['pool_images_per_s']:,.0f} "
            f"({e2e['pool_vs_model']:.2f} of the Reader alone); the pool on decoded images: "
            f"{e2e['pool_model_images_per_s']:,.0f} (so reading the bytes costs it "
            f"{1 - e2e['pool_vs_pool_model']:.0%})",
            f"- bytes -> texts, the faster way, over forward + decoding alone: "
            f"**{e2e['bytes_vs_model']:.2f}** (target 0.9: "
            f"{'meets' if e2e['bytes_vs_model'] >= 0.9 else 'MISSES'})",
            "",
            f"Serial, stage by stage ({e2e['repeats']} calls): preprocess "
            f"{e2e['preprocess_ms']:.2f} ms, forward {e2e['forward_ms']:.2f} ms, decode "
            f"{e2e['decode_ms']:.2f} ms.",
        ]
    if args.device == "cuda":
        lines += [
            f"- {r['logits']}, {r['implementation']} at {big:,} rows on cuda: "
            f"{r['sequences_per_s']:,.0f} sequences/s"
            for r in rows
            if r["batch_size"] == big and r["implementation"].startswith("ours")
        ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        _write(args.out, text, rows, argv, e2e, ratios)


def _write(out: str, text: str, rows: list[dict], argv: Sequence[str] | None,
           e2e: dict | None = None, ratios: list[dict] | None = None) -> None:
    """The table as Markdown (with date, machine and command) and JSON, next to each other."""
    env = environment()
    command = "python -m crnn.bench.decode_speed " + " ".join(argv or sys.argv[1:])
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    head = (
        f"# CTC decoding speed\n\n{env['date']} on {env['cpu']} ({env['cpu_cores']} cores, "
        f"GPU: {env['gpu']}), commit {env['git_commit']}.\nCommand: `{command}`\n\n"
    )
    atomic_write(path.with_suffix(".md"), (head + text + "\n").encode())
    write_json(path.with_suffix(".json"),
               {"command": command, "environment": env, "rows": rows, "ratios": ratios or [],
                "end_to_end": e2e})


def _markdown(rows: list[dict]) -> str:
    header = [
        "logits",
        "implementation",
        "device",
        "batch",
        "sequences/s",
        "range over rounds",
        "µs/sequence",
        "vs loop",
        "agrees with loop",
        "agrees with pyctcdecode",
        "note",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        speedup = r["speedup_vs_reference"]
        pyctc = r.get("agreement_with_pyctcdecode")
        cells = [
            r.get("logits", ""),
            r["implementation"],
            r["device"],
            str(r["batch_size"]),
            f"{r['sequences_per_s']:,.0f}",
            "{:,.0f}-{:,.0f}".format(*r["sequences_per_s_range"]),
            f"{r['us_per_sequence']:.2f}",
            "" if speedup is None else f"{speedup:.1f}x",
            f"{r['agreement_with_reference']:.4f}",
            "" if pyctc is None else f"{pyctc:.4f}",
            r["note"],
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def target_ratios(rows: list[dict], width: int) -> list[dict]:
    """Ours over the peer on the issue's targets, per logits source and batch size.

    Each ratio is taken round by round (both timed in the same round), then summarised by
    :func:`crnn.bench.stats.ratio_interval`: ``ratio`` (geometric mean), ``low``, ``high``
    (95% interval), ``target`` and ``verdict``: "meets" only when the whole interval is at
    or above the target, "MISSES" when it is wholly below, "unresolved" when it spans it.
    """
    beam_name = f"ours beam (w={width})"
    found = []
    for source in dict.fromkeys(r.get("logits", "") for r in rows):
        # On the peaked logits, where the peers' beam searches slow down, beam search is
        # held to 10x the peer's speed.
        pairs = [("ours greedy", "fast-ctc-decode viterbi", 1.0),
                 (beam_name, f"fast-ctc-decode beam (w={width})",
                  10.0 if source == "synthetic peaked" else 1.0)]
        for b in dict.fromkeys(r["batch_size"] for r in rows):
            speed = {r["implementation"]: r for r in rows
                     if r.get("logits", "") == source and r["batch_size"] == b}
            for ours, peer, target in pairs:
                if peer not in speed:
                    continue
                ratio, low, high = ratio_interval([
                    x / y for x, y in zip(speed[ours]["rounds_sequences_per_s"],
                                          speed[peer]["rounds_sequences_per_s"])])
                verdict = ("unresolved" if math.isnan(low) or low < target <= high
                           else "meets" if low >= target else "MISSES")
                found.append({"logits": source, "batch_size": b, "ours": ours, "peer": peer,
                              "ratio": ratio, "low": low, "high": high, "target": target,
                              "verdict": verdict})
    return found


def _ratio_lines(rows: list[dict], ratios: list[dict], width: int) -> list[str]:
    """The targets as sentences, then beam search's agreement with pyctcdecode."""
    beam_name = f"ours beam (w={width})"
    lines = [f"{r['logits']}, batch {r['batch_size']}: {r['ours']} / {r['peer']}: "
             f"{r['ratio']:.2f}x [{r['low']:.2f}-{r['high']:.2f}] ({r['verdict']} "
             f"{r['target']:g}x)" for r in ratios]
    for source in dict.fromkeys(r.get("logits", "") for r in rows):
        top = max(r["batch_size"] for r in rows)
        agreement = next((r.get("agreement_with_pyctcdecode") for r in rows
                          if r.get("logits", "") == source and r["batch_size"] == top
                          and r["implementation"] == beam_name), None)
        if agreement is not None:
            verdict = "meets" if agreement >= 0.995 else "MISSES"
            lines.append(f"{source}: {beam_name} top-1 agreement with pyctcdecode: "
                         f"{agreement:.2%} ({verdict} the 99.5% target)")
    return lines


if __name__ == "__main__":
    main()
