"""``crnn-bench run``: generate -> train -> evaluate -> measure speed -> report.

Each step's result is cached under ``OUT/cache`` by a hash of its configuration, so an
interrupted or repeated run picks up where it stopped and Ctrl-C keeps what is finished.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from captchagen import CaptchaSpec, DatasetJob, parse_charset, write_dataset
from captchagen.manifest import INFO
from captchagen.spec import NOISE_PRESETS, parse_length
from crnn.bench import complexity, peer_ocr, throughput, transfer
from crnn.bench.environment import environment
from crnn.bench.report import Table, plot_bars, plot_by_length, plot_curves, write_report
from crnn.bench.suite import ModelPlan, Suite, config_hash
from crnn.checkpoint import load_model
from crnn.data.images import decode_images
from crnn.data.sources import load_samples, split
from crnn.evaluate import evaluate
from crnn.inference import Reader
from crnn.metrics import score
from crnn.train import TrainConfig, train
from plumbing.errors import UsageError
from plumbing.files import atomic_write


@dataclass(frozen=True)
class TestSet:
    name: str
    path: Path
    real: bool = False


@dataclass(frozen=True)
class Run:
    """A trained model: its run directory and the checkpoint that is evaluated."""

    plan: ModelPlan
    data: str  # "synthetic" or "real"
    path: Path
    ckpt: Path


class Bench:
    def __init__(self, suite: Suite, out: Path, device: str, real: Path | None,
                 progress: bool = True) -> None:
        self.suite, self.out, self.real, self.progress = suite, out, real, progress
        self.cache = out / "cache"
        self.cuda = torch.cuda.is_available()
        self.devices = [d for d in (("cpu", "cuda") if device == "all" else (device,))
                        if d == "cpu" or self.cuda]
        self.train_device = "cuda" if device in ("cuda", "all") and self.cuda else "cpu"
        self.notes: list[str] = []
        if device in ("cuda", "all") and not self.cuda:
            self.notes.append("CUDA was asked for, but torch sees no CUDA device: "
                              "CPU figures only.")

    def log(self, message: str) -> None:
        print(f"crnn-bench: {message}", file=sys.stderr, flush=True)

    # 1. data ---------------------------------------------------------------------------------

    def spec(self, length: str) -> CaptchaSpec:
        """The suite's look at ``length``. Texts longer than the training ones keep the canvas
        and get proportionally smaller fonts, so that they fit it (as a site would do)."""
        d = self.suite.data
        lo, hi = parse_length(length)
        base = CaptchaSpec(charset=parse_charset(d.charset), min_len=lo, max_len=hi,
                           width=d.width, height=d.height, noise=NOISE_PRESETS[d.noise])
        longest = parse_length(d.train_len)[1]
        if hi <= longest:
            return base
        sizes = tuple(max(4, round(s * longest / hi)) for s in base.font_sizes)
        return dataclasses.replace(base, font_sizes=sizes)

    def dataset(self, name: str, length: str, n: int, seed: int) -> Path:
        return self.write_cached(name, DatasetJob(spec=self.spec(length), n=n, seed=seed))

    def write_cached(self, name: str, job: DatasetJob) -> Path:
        """The dataset of ``job`` under the cache (written, or finished, once)."""
        info = job.info(0, False)
        key = config_hash({k: v for k, v in info.items() if k not in ("version", "complete")})
        path = self.cache / "data" / f"{name}-{key}"
        done = path / INFO
        if not (done.is_file() and json.loads(done.read_text())["complete"]):
            self.log(f"generating {name}: {job.n} images, length "
                     f"{job.spec.min_len}-{job.spec.max_len}")
            write_dataset(job, path, resume=path.exists())
        return path

    def datasets(self) -> tuple[Path, Path, list[TestSet]]:
        d, seed = self.suite.data, self.suite.seed
        train_dir = self.dataset("train", d.train_len, d.train, seed * 100 + 1)
        val_dir = self.dataset("val", d.train_len, d.val, seed * 100 + 2)
        tests = [TestSet(f"in-distribution ({d.train_len})",
                         self.dataset("test", d.train_len, d.test, seed * 100 + 3))]
        tests.append(TestSet(f"fixed length {d.fixed_len}",
                             self.dataset(f"test-len{d.fixed_len}", str(d.fixed_len), d.test,
                                          seed * 100 + 4)))
        for length in d.unseen_lens:
            tests.append(TestSet(f"length {length} (unseen)", self.dataset(
                f"test-len{length}", str(length), d.unseen_n, seed * 100 + 10 + length)))
        return train_dir, val_dir, tests

    def real_split(self) -> tuple[Path, TestSet]:
        """The real set's 90/10 split as two folders (copies), as published notebooks do."""
        assert self.real is not None
        samples = load_samples(self.real)
        key = config_hash([str(self.real.resolve()), len(samples), self.suite.real.val_split])
        root = self.cache / "data" / f"real-{key}"
        parts = split(samples, self.suite.real.val_split, 42)
        copy_parts(root, {"train": parts[0].paths, "test": parts[1].paths})
        return root / "train", TestSet(f"real: {self.real.name} ({len(parts[1])} test)",
                                       root / "test", real=True)

    # 2. training -----------------------------------------------------------------------------

    def train_model(self, plan: ModelPlan, train_dir: Path, val_dir: Path, real: bool) -> Run:
        t, r = self.suite.train, self.suite.real
        cfg = TrainConfig(
            data=str(train_dir), val=str(val_dir), out="", model=plan.name, size=plan.size,
            height=t.height, width=r.width if real else t.width,
            minutes=r.minutes if real else (plan.minutes or t.minutes),
            epochs=r.epochs if real else t.epochs,
            batch_size=t.batch_size, lr=t.lr, schedule=t.schedule, warmup=t.warmup,
            eval_seconds=t.eval_seconds, augment=r.augment if real else "off",
            device=self.train_device, seed=self.suite.seed, progress=self.progress)
        path = self.train_cached(cfg, f"{plan.title}{'-real' if real else ''}",
                                 f"{plan.title} on {'real' if real else 'synthetic'} data")
        # The real set has no validation part of its own: its test split is only watched
        # during training, so the final weights are evaluated, not the best on that split.
        ckpt = path / ("last.ckpt" if real else "best.ckpt")
        return Run(plan, "real" if real else "synthetic", path, ckpt)

    def train_cached(self, cfg: TrainConfig, name: str, what: str) -> Path:
        """Train ``cfg`` into a run directory under the cache keyed by its settings (a finished
        run is reused, an interrupted one resumed)."""
        key = config_hash({**dataclasses.asdict(cfg), "out": None, "progress": None})
        path = self.cache / "runs" / f"{name}-{key}"
        if not (path / "summary.json").is_file():
            resume = (path / "last.ckpt").is_file()
            budget = f"{cfg.minutes} min" if cfg.minutes else f"{cfg.epochs} epochs"
            self.log(f"training {what} ({budget}{', resuming' if resume else ''}) "
                     f"on {self.train_device}")
            train(dataclasses.replace(cfg, out=str(path), resume=resume,
                                      overwrite=not resume))
        return path

    # 3. evaluation ---------------------------------------------------------------------------

    def evaluate(self, run: Run, test: TestSet) -> dict:
        key = config_hash([str(run.path), test.name, str(test.path), run.ckpt.stat().st_mtime])
        cached = self.cache / "evals" / f"{key}.json"
        if cached.is_file():
            return json.loads(cached.read_text())
        reader = Reader.from_checkpoint(run.ckpt, "cuda" if self.train_device == "cuda"
                                        else "cpu")
        samples = load_samples(test.path)
        cfg = reader.config
        images, _ = decode_images(samples.paths, cfg.height, cfg.width)
        labels = list(samples.labels)
        ev = evaluate(reader, images, labels)
        result = {**ev.metrics, "predictions": ev.predictions, "labels": labels}
        cached.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(cached, json.dumps(result).encode())
        return result


def copy_parts(root: Path, parts: dict[str, Sequence[Path]]) -> None:
    """Copy each part's images into ``root/NAME`` once (``root/done`` marks a finished copy)."""
    if (root / "done").is_file():
        return
    for name, paths in parts.items():
        folder = root / name
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for p in paths:
            shutil.copyfile(p, folder / p.name)
    (root / "done").write_text("ok\n")


def run_suite(suite: Suite, out: Path, device: str = "cpu", real: Path | None = None,
              progress: bool = True, command: str = "") -> Path:
    """Run every step of ``suite`` (reusing cached ones) and write the report into ``out``."""
    start = time.perf_counter()
    env = environment()  # at the start: the commit and date the run was launched from
    b = Bench(suite, out, device, real, progress)
    torch.manual_seed(suite.seed)
    if suite.transfer is not None and real is None:
        msg = "the [transfer] section measures on real captchas: add --real DIR"
        if not suite.models:
            raise UsageError(f"suite {suite.name}: {msg}")
        b.notes.append(f"Not measured: {msg}.")
    if not suite.models:  # a suite of the transfer section alone
        tables, plots = transfer.section(b, real, out) if real is not None else ([], {})
        tables.append(environment_table(b, suite, env))
        return _write(b, out, command, env, start, tables, plots)
    train_dir, val_dir, tests = b.datasets()
    runs = [b.train_model(m, train_dir, val_dir, real=False) for m in suite.models]
    real_test = None
    if real is not None:
        real_train, real_test = b.real_split()
        runs += [b.train_model(m, real_train, real_test.path, real=True) for m in suite.models
                 if not suite.real.models or m.named_in(suite.real.models)]

    b.log("evaluating")
    tables = [accuracy_table(b, runs, tests, real_test)]
    by_length = length_table(b, runs, tests)
    tables += [by_length, training_table(runs)]
    b.log("measuring decoding speed")
    tables.append(decoding_table(b, runs, tests[0]))
    b.log("measuring throughput and latency")
    tp = throughput_table(b, runs, tests[0])
    tables += [tp, head_to_head_table(b, runs, tests[0], tp)]
    plots = {}
    if suite.transfer is not None and real is not None:
        transfer_tables, plots = transfer.section(b, real, out)
        tables += transfer_tables
    tables.append(environment_table(b, suite, env))

    report_dir = out
    report_dir.mkdir(parents=True, exist_ok=True)
    if by_length.rows:
        plots["by_length"] = plot_by_length(by_length.rows, report_dir / "by_length.png")
    curves = {f"{r.plan.title} ({r.data})": pd.read_csv(r.path / "metrics.csv") for r in runs
              if (r.path / "metrics.csv").is_file()}
    if curves:
        plots["training_curves"] = plot_curves(curves, report_dir / "training_curves.png")
    dec = next(t for t in tables if t.key == "decoding")
    if dec.rows:
        rows = [r for r in dec.rows if r["logits"] == "synthetic peaked"]
        plots["decoding"] = plot_bars(rows, "batch_size", "sequences_per_s",
                                      "implementation", report_dir / "decoding.png",
                                      "sequences/s (synthetic peaked logits)", log=True)
    if tp.rows:
        rows = [{**r, "model": f"{r['model']} ({r['runtime']}, {r['device']})"} for r in tp.rows]
        plots["throughput"] = plot_bars(rows, "batch_size", "model_images_per_s", "model",
                                        report_dir / "throughput.png",
                                        "images/s (forward + decoding)")
    return _write(b, report_dir, command, env, start, tables, plots)


def _write(b: Bench, report_dir: Path, command: str, env: dict, start: float,
           tables: list[Table], plots: dict[str, str]) -> Path:
    suite = b.suite
    meta = {"suite": suite.name, "description": suite.description, "command": command,
            "suite_file": suite.source, "suite_config": suite.to_dict(),
            "environment": env, "wall_seconds": time.perf_counter() - start,
            "notes": b.notes}
    write_report(report_dir, meta, tables, plots)
    b.log(f"report written to {report_dir / 'report.md'} "
          f"({time.perf_counter() - start:.0f} s)")
    return report_dir


# Tables ------------------------------------------------------------------------------------

def _model_costs(run: Run) -> dict:
    model, cfg, _ = load_model(run.ckpt)
    return {"parameters": complexity.count_parameters(model),
            "mmacs": complexity.count_macs(model, cfg.height, cfg.width) / 1e6,
            "size_mb": complexity.size_mb(model)}


def accuracy_table(b: Bench, runs: list[Run], tests: list[TestSet],
                   real_test: TestSet | None) -> Table:
    t = Table("accuracy", "1. Accuracy: model x test set", [
        ("model", "model", ""), ("test_set", "test set", ""), ("n", "n", "d"),
        ("sequence_accuracy", "sequence acc.", ".4f"), ("char_accuracy", "char acc.", ".4f"),
        ("ned", "NED", ".4f"), ("parameters", "params", ","), ("mmacs", "MMACs", ".1f"),
        ("size_mb", "size (MB)", ".2f"), ("train_seconds", "train time (s)", ".0f"),
        ("train_images_per_s", "train img/s", ".0f"), ("note", "note", "")],
        keys=("model", "test_set"))
    for run in runs:
        costs = _model_costs(run)
        summary = json.loads((run.path / "summary.json").read_text())
        sets = [real_test] if run.data == "real" and real_test else tests
        for test in sets:
            m = b.evaluate(run, test)
            note = ""
            longest = max(len(s) for s in m["labels"])
            if run.plan.name == "cnn-fixed" and longest > _max_len(run):
                note = f"cannot emit more than {_max_len(run)} characters"
            t.rows.append({"model": run.plan.title, "test_set": test.name, "n": m["n"],
                           "sequence_accuracy": m["sequence_accuracy"],
                           "char_accuracy": m["char_accuracy"], "ned": m["ned"], **costs,
                           "train_seconds": summary["train_seconds"],
                           "train_images_per_s": summary.get("images_per_s"), "note": note})
    t.notes.append("Each model is trained with the same budget on the same images; "
                   "synthetic models are evaluated at their best validation checkpoint, "
                   "real-set models at their final weights.")
    if real_test:
        t.notes.append("Real set: scikit-learn's train_test_split(test_size=0.1, "
                       "random_state=42) on the sorted file list; the test part is watched "
                       "during training but never used to choose weights.")
    return t


def _max_len(run: Run) -> int:
    return json.loads((run.path / "config.json").read_text())["model"]["max_len"]


def length_table(b: Bench, runs: list[Run], tests: list[TestSet]) -> Table:
    t = Table("by_length", "2. Accuracy by label length", [
        ("model", "model", ""), ("length", "length", "d"), ("n", "n", "d"),
        ("sequence_accuracy", "sequence acc.", ".4f")], keys=("model", "length"))
    for run in (r for r in runs if r.data == "synthetic"):
        labels, preds = [], []
        for test in tests[:1] + tests[2:]:  # the fixed-length set repeats a training length
            m = b.evaluate(run, test)
            labels += m["labels"]
            preds += m["predictions"]
        for length, v in score(labels, preds)["by_length"].items():
            t.rows.append({"model": run.plan.title, "length": int(length), "n": v["n"],
                           "sequence_accuracy": v["sequence_accuracy"]})
    t.notes.append("Lengths from the in-distribution test set and the unseen-length sets; "
                   "texts longer than the training ones are drawn with fonts scaled by "
                   "(longest training length / length) so that they fit the same canvas.")
    return t


def training_table(runs: list[Run]) -> Table:
    t = Table("training", "Training runs", [
        ("model", "model", ""), ("data", "data", ""), ("device", "device", ""),
        ("steps", "steps", "d"), ("train_seconds", "train time (s)", ".0f"),
        ("images_per_s", "images/s", ".0f"), ("data_wait_fraction", "data wait", ".3f"),
        ("first_correct_s", "first correct (s)", ".1f"),
        ("best_val_sequence_accuracy", "best val acc.", ".4f")], keys=("model", "data"))
    for run in runs:
        s = json.loads((run.path / "summary.json").read_text())
        t.rows.append({"model": run.plan.title, "data": run.data, **{
            k: s.get(k) for k in ("device", "steps", "train_seconds", "images_per_s",
                                  "data_wait_fraction", "first_correct_s",
                                  "best_val_sequence_accuracy")}})
    t.notes += ["first correct: training time until a training batch first held a "
                "correctly read string (how long the CTC blank plateau lasted).",
                "data wait: share of the training time spent waiting for the next batch "
                "(near 0: the device, not data loading, sets the pace)."]
    return t


def _ctc_run(runs: list[Run]) -> Run | None:
    ctc = [r for r in runs if r.data == "synthetic" and r.plan.name in ("crnn", "cnn-ctc")]
    return next((r for r in ctc if r.plan.name == "crnn"), ctc[0] if ctc else None)


def decoding_table(b: Bench, runs: list[Run], test: TestSet) -> Table:
    """Decoders on two kinds of log-probabilities: a trained CTC model's own outputs on the
    test images, and the synthetic peaked 2048 x 40 x 37 logits the decoding targets use."""
    from crnn.bench import decode_speed

    t = Table("decoding", "3. CTC decoding: implementation x batch size", [
        ("logits", "logits", ""), ("implementation", "implementation", ""),
        ("device", "device", ""), ("batch_size", "batch", "d"),
        ("sequences_per_s", "sequences/s", ",.0f"), ("us_per_sequence", "µs/sequence", ".2f"),
        ("speedup_vs_reference", "speed-up vs loop", ".1f"),
        ("agreement_with_reference", "agreement with loop", ".4f"),
        ("agreement_with_pyctcdecode", "agreement with pyctcdecode", ".4f"),
        ("note", "note", "")], keys=("logits", "implementation", "device", "batch_size"))
    p = b.suite.decode
    run = _ctc_run(runs)
    for device in b.devices:
        sources = []
        if run is not None:
            reader = Reader.from_checkpoint(run.ckpt, device)
            samples = load_samples(test.path)
            images, _ = decode_images(samples.paths, reader.config.height, reader.config.width)
            lp = reader.forward(images).to(device)
            lp = lp.repeat(1, -(-p.rows // lp.shape[1]), 1)[:, : p.rows].contiguous()
            sources.append((f"{run.plan.title} outputs", lp, reader.config.charset))
        synthetic = decode_speed.peaked_log_probs(p.rows, device=device)
        charset = decode_speed.default_charset(synthetic.shape[2] - 1)
        sources.append(("synthetic peaked", synthetic, charset))
        for name, lp, charset in sources:
            rows = decode_speed.run_decode_benchmark(lp, charset, batch_sizes=p.batch_sizes,
                                                     beam_width=p.beam_width,
                                                     min_seconds=p.min_seconds)
            t.rows += [{"logits": name, **r} for r in rows]
            t.notes.append(f"{device}, {name}: log-probabilities of shape {tuple(lp.shape)} "
                           "(T, N, C).")
    if run is not None:
        t.notes.append(f"{run.plan.title} outputs: the model's log-probabilities on "
                       f"{test.name}, repeated to fill the rows.")
    t.notes.append("synthetic peaked: decode_speed.peaked_log_probs, 4-6 symbols per row, "
                   "moderately sharp (the logits of the decoding speed targets).")
    missing = decode_speed.missing_peers()
    if missing:
        t.notes.append(f"Not installed, so not measured: {', '.join(missing)} "
                       "(pip install '.[peers]').")
    return t


RUNTIMES = {"cpu": [("torch", {"backend": "torch"}), ("onnxruntime", {"backend": "onnx"})],
            "cuda": [("torch fp32", {"backend": "torch"}),
                     ("torch amp", {"backend": "torch", "amp": True})]}


def throughput_table(b: Bench, runs: list[Run], test: TestSet) -> Table:
    p = b.suite.throughput
    t = Table("throughput", "4. Throughput and latency: model x device x batch size", [
        ("model", "model", ""), ("device", "device", ""), ("runtime", "runtime", ""),
        ("batch_size", "batch", "d"), ("images_per_s", "images/s", ",.0f"),
        ("model_images_per_s", "images/s (model only)", ",.0f"), ("p50_ms", "p50 ms", ".2f"),
        ("p95_ms", "p95 ms", ".2f"), ("preprocess_ms", "preprocess ms", ".2f"),
        ("forward_ms", "forward ms", ".2f"), ("decode_ms", "decode ms", ".2f"),
        ("warmup", "warm-up", "d"), ("repeats", "repeats", "d")],
        keys=("model", "device", "runtime", "batch_size"))
    blobs = [pth.read_bytes() for pth in load_samples(test.path).paths[:512]]
    threads = torch.get_num_threads()
    torch.set_num_threads(p.threads)
    try:
        for run in (r for r in runs if r.data == "synthetic"):
            for device in b.devices:
                for runtime, kw in RUNTIMES[device]:
                    reader = Reader.from_checkpoint(run.ckpt, device, threads=p.threads, **kw)
                    for bs in p.batch_sizes:
                        row = throughput.measure_reader(
                            reader, blobs, bs, throughput.repeats_for(bs, p.warmup),
                            throughput.repeats_for(bs, p.repeats))
                        t.rows.append({"model": run.plan.title, "device": device,
                                       "runtime": runtime, **row})
    finally:
        torch.set_num_threads(threads)
    t.notes += [f"CPU rows use {p.threads} threads. Each call reads encoded PNG files to "
                "strings: preprocessing (PNG decoding, grayscale, resize), forward pass and "
                "greedy decoding are timed apart; images/s counts all three, 'model only' "
                "the forward pass and decoding.",
                "torch: eager PyTorch with batch norms folded into the convolutions, "
                "channels-last; onnxruntime: the exported ONNX graph (crnn export), the "
                "default for CPU inference. CUDA rows are timed with CUDA events; "
                "amp = bf16/fp16 autocast."]
    return t


def head_to_head_table(b: Bench, runs: list[Run], test: TestSet, tp: Table) -> Table:
    t = Table("head_to_head", "5. Head-to-head with a ready-made solver (same test images)", [
        ("solver", "solver", ""), ("n", "n", "d"),
        ("sequence_accuracy", "sequence acc.", ".4f"), ("p50_ms", "p50 ms/image", ".2f"),
        ("p95_ms", "p95 ms/image", ".2f"), ("note", "note", "")], keys=("solver",))
    n = b.suite.ddddocr_n
    samples = load_samples(test.path)
    labels = list(samples.labels[:n])
    for run in (r for r in runs if r.data == "synthetic"):
        m = b.evaluate(run, test)
        lat = next((r for r in tp.rows if r["model"] == run.plan.title and r["device"] == "cpu"
                    and r["runtime"] == "onnxruntime" and r["batch_size"] == 1), None)
        acc = sum(p == s for p, s in zip(m["predictions"][:n], labels)) / len(labels)
        t.rows.append({"solver": run.plan.title, "n": len(labels), "sequence_accuracy": acc,
                       "p50_ms": lat["p50_ms"] if lat else None,
                       "p95_ms": lat["p95_ms"] if lat else None,
                       "note": "batch 1 on CPU (onnxruntime), from PNG bytes"})
    version = peer_ocr.ddddocr_version()
    if version is None:
        t.notes.append("ddddocr is not installed, so it is not measured "
                       "(pip install '.[peers]').")
        return t
    blobs = [pth.read_bytes() for pth in samples.paths[:n]]
    threads = torch.get_num_threads()
    r = peer_ocr.run_ddddocr(blobs, labels)
    torch.set_num_threads(threads)
    t.rows.append({"solver": f"ddddocr {version}", "n": r["n"],
                   "sequence_accuracy": r["sequence_accuracy"], "p50_ms": r["p50_ms"],
                   "p95_ms": r["p95_ms"],
                   "note": f"case-folded accuracy {r['sequence_accuracy_casefold']:.4f}; "
                           "from PNG bytes"})
    return t


def environment_table(b: Bench, suite: Suite, env: dict) -> Table:
    t = Table("environment", "6. Environment", [("key", "what", ""), ("value", "value", "")],
              keys=("key",))
    t.rows = [{"key": k, "value": str(v)} for k, v in env.items()]
    t.rows += [{"key": "seed", "value": str(suite.seed)},
               {"key": "suite file", "value": suite.source},
               {"key": "training device", "value": b.train_device},
               {"key": "measured devices", "value": ", ".join(b.devices)}]
    t.notes += b.notes
    return t

