"""``crnn-bench run``: generate -> check for leakage -> train -> evaluate -> measure -> report.

Each step's result is cached under ``OUT/cache`` by a hash of its configuration and of the
code that computes it (``provenance.code_hash``), so an interrupted or repeated run picks up
where it stopped, Ctrl-C keeps what is finished, and an edited source file recomputes what
depends on it. The tables are built in ``tables.py``, the figures in ``figures.py``.
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

import numpy as np
import torch

from captchagen import CaptchaSpec, DatasetJob, parse_charset, write_dataset
from captchagen.manifest import INFO
from captchagen.spec import NOISE_PRESETS, parse_length
from crnn import leakage
from crnn.bench import figures, provenance, tables, transfer
from crnn.bench.environment import environment
from crnn.bench.report import Table, write_report
from crnn.bench.suite import ModelPlan, Suite, config_hash
from crnn.data.images import decode_images
from crnn.data.sources import load_samples, split
from crnn.evaluate import evaluate
from crnn.inference import Reader
from crnn.train import TrainConfig, train
from plumbing.errors import UsageError
from plumbing.files import atomic_write, write_json

DATA_CODE = ("captchagen", "plumbing")  # the packages that draw the datasets


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
    seed: int = 0

    @property
    def summary(self) -> dict:
        return json.loads((self.path / "summary.json").read_text())

    @property
    def provenance(self) -> dict:
        p = self.path / "provenance.json"
        return json.loads(p.read_text()) if p.is_file() else {}


class Bench:
    def __init__(self, suite: Suite, out: Path, device: str, real: Path | None,
                 progress: bool = True, seeds: int | None = None,
                 allow_overlap: bool = False) -> None:
        self.suite, self.out, self.real, self.progress = suite, out, real, progress
        self.seeds, self.allow_overlap = seeds, allow_overlap
        self.cache = out / "cache"
        self.cuda = torch.cuda.is_available()
        self.devices = [d for d in (("cpu", "cuda") if device == "all" else (device,))
                        if d == "cpu" or self.cuda]
        self.train_device = "cuda" if device in ("cuda", "all") and self.cuda else "cpu"
        self.code = provenance.code_version()
        self.data_code = provenance.code_hash(DATA_CODE)
        self.notes: list[str] = []
        self.warnings: list[str] = []
        self.overlaps: dict[str, int] = {}  # test set name -> images also in training
        if device in ("cuda", "all") and not self.cuda:
            self.notes.append("CUDA was asked for, but torch sees no CUDA device: "
                              "CPU figures only.")

    def log(self, message: str) -> None:
        print(f"crnn-bench: {message}", file=sys.stderr, flush=True)

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        self.log(f"warning: {message}")

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
        key = config_hash({"data": {k: v for k, v in info.items()
                                    if k not in ("version", "complete")},
                           "code": self.data_code})
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

    def hashes(self, folder: Path) -> np.ndarray:
        """Pixel hashes of a dataset's images (cached next to it: the data never changes)."""
        cached = self.cache / "hashes" / f"{folder.parent.name}-{folder.name}.npy"
        if cached.is_file():
            return np.load(cached)
        h = leakage.pixel_hashes(load_samples(folder).paths)
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_name(f".{cached.name}.tmp.npy")
        np.save(tmp, h)
        tmp.replace(cached)
        return h

    def check_leakage(self, train_dir: Path, others: list[TestSet]) -> None:
        """Refuse (unless --allow-overlap) validation or test sets sharing training images."""
        train_h = self.hashes(train_dir)
        for test in others:
            n = leakage.guard(f"{test.name} ({test.path})", self.hashes(test.path), train_h,
                              self.allow_overlap)
            self.overlaps[test.name] = n
            if n:
                self.warn(f"{test.name}: {n} images are also training images "
                          "(--allow-overlap): its accuracy is inflated")

    # 2. training -----------------------------------------------------------------------------

    def seeds_for(self, plan: ModelPlan) -> list[int]:
        count = self.seeds or plan.seeds or self.suite.train.seeds
        return [self.suite.seed + i for i in range(count)]

    def train_config(self, plan: ModelPlan, train_dir: Path, val_dir: Path, real: bool,
                     seed: int) -> TrainConfig:
        t, r = self.suite.train, self.suite.real
        images = r.images if real else (plan.images or t.images)
        eval_every = max(1, t.eval_images // t.batch_size) if images and t.eval_images else None
        return TrainConfig(
            data=str(train_dir), val=str(val_dir), out="", model=plan.name, size=plan.size,
            height=t.height, width=r.width if real else t.width, images=images,
            minutes=r.minutes if real else (plan.minutes or t.minutes),
            epochs=r.epochs if real else t.epochs, eval_every=eval_every,
            batch_size=t.batch_size, lr=t.lr, schedule=t.schedule, warmup=t.warmup,
            eval_seconds=t.eval_seconds, augment=r.augment if real else "off",
            device=self.train_device, seed=seed, progress=self.progress,
            allow_overlap=self.allow_overlap)

    def train_model(self, plan: ModelPlan, train_dir: Path, val_dir: Path, real: bool,
                    seed: int) -> Run:
        cfg = self.train_config(plan, train_dir, val_dir, real, seed)
        path = self.train_cached(cfg, f"{plan.title}{'-real' if real else ''}-s{seed}",
                                 f"{plan.title} (seed {seed}) on "
                                 f"{'real' if real else 'synthetic'} data")
        # The real set has no validation part of its own: its test split is only watched
        # during training, so the final weights are evaluated, not the best on that split.
        ckpt = path / ("last.ckpt" if real else "best.ckpt")
        run = Run(plan, "real" if real else "synthetic", path, ckpt, seed)
        if run.summary.get("first_correct_s") is None:
            self.warn(f"{plan.title} (seed {seed}, {run.data} data) never read a training "
                      "string correctly: it never left the blank plateau: give it more images")
        return run

    def train_cached(self, cfg: TrainConfig, name: str, what: str) -> Path:
        """Train ``cfg`` into a run directory under the cache keyed by its settings and the
        code (a finished run is reused, an interrupted one resumed)."""
        key = config_hash({**dataclasses.asdict(cfg), "out": None, "progress": None,
                           "allow_overlap": None, "code": self.code["code_hash"]})
        path = self.cache / "runs" / f"{name}-{key}"
        if not (path / "summary.json").is_file():
            resume = (path / "last.ckpt").is_file()
            budget = ", ".join(b for b in (
                f"{cfg.images:,} images" if cfg.images else "",
                f"{cfg.epochs} epochs" if cfg.epochs else "",
                f"cap {cfg.minutes} min" if cfg.minutes else "") if b)
            self.log(f"training {what} ({budget}{', resuming' if resume else ''}) "
                     f"on {self.train_device}")
            train(dataclasses.replace(cfg, out=str(path), resume=resume,
                                      overwrite=not resume))
            write_json(path / "provenance.json", {**self.code, "date": provenance.now()})
        return path

    # 3. evaluation ---------------------------------------------------------------------------

    def evaluate(self, run: Run, test: TestSet) -> dict:
        """Metrics, predictions, labels and per-image correctness of ``run`` on ``test``."""
        key = config_hash([str(run.path), test.name, str(test.path),
                           run.ckpt.stat().st_mtime, self.code["code_hash"]])
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
        result = {**ev.metrics, "predictions": ev.predictions, "labels": labels,
                  "correct": [p == t for p, t in zip(ev.predictions, labels)]}
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
              progress: bool = True, command: str = "", seeds: int | None = None,
              allow_overlap: bool = False) -> Path:
    """Run every step of ``suite`` (reusing cached ones) and write the report into ``out``."""
    start = time.perf_counter()
    env = environment()  # at the start: the commit and date the run was launched from
    b = Bench(suite, out, device, real, progress, seeds, allow_overlap)
    torch.manual_seed(suite.seed)
    if suite.transfer is not None and real is None:
        msg = "the [transfer] section measures on real captchas: add --real DIR"
        if not suite.models:
            raise UsageError(f"suite {suite.name}: {msg}")
        b.notes.append(f"Not measured: {msg}.")
    if not suite.models:  # a suite of the transfer section alone
        found, figs = transfer.section(b, real, out) if real is not None else ([], {})
        found.append(tables.environment_table(b, suite, env))
        return _write(b, out, command, env, start, found, figs)
    train_dir, val_dir, tests = b.datasets()
    b.check_leakage(train_dir, [TestSet("validation set", val_dir), *tests])
    runs = [b.train_model(m, train_dir, val_dir, False, s) for m in suite.models
            for s in b.seeds_for(m)]
    real_test = None
    if real is not None:
        real_train, real_test = b.real_split()
        b.check_leakage(real_train, [real_test])
        runs += [b.train_model(m, real_train, real_test.path, True, s) for m in suite.models
                 if not suite.real.models or m.named_in(suite.real.models)
                 for s in b.seeds_for(m)]

    b.log("evaluating")
    report_dir = out
    report_dir.mkdir(parents=True, exist_ok=True)
    colours = figures.model_colours([m.title for m in suite.models])
    acc = tables.accuracy_table(b, runs, tests, real_test)
    by_length = tables.length_table(b, runs, tests)
    found = [acc, tables.significance_table(b, runs, tests, real_test), by_length,
             tables.confusion_table(b, runs, tests, real_test),
             tables.training_table(runs), tables.provenance_table(runs, b.code)]
    b.log("measuring throughput and latency")
    tp = tables.throughput_table(b, runs, tests[0])
    found += [tp, tables.head_to_head_table(b, runs, [tests[0], real_test], tp)]
    transfer_figs: dict[str, list[tuple[str, str]]] = {}
    if suite.transfer is not None and real is not None:
        b.log("measuring transfer from synthetic to real captchas")
        transfer_tables, transfer_figs = transfer.section(b, real, report_dir)
        found += transfer_tables
    found.append(tables.environment_table(b, suite, env))
    figs = {**figures.report_figures(b, runs, tests, real_test, by_length, tp, colours,
                                     report_dir), **transfer_figs}

    b.log("measuring decoding speed")
    dec = tables.decoding_table(b, runs, tests[0])
    write_report(report_dir, {**_meta(b, command, env, start),
                              "title": "CTC decoding micro-benchmark",
                              "links": [("main report", "report")]},
                 [dec], figures.decoding_figures(dec, report_dir), stem="decoding")
    return _write(b, report_dir, command, env, start, found, figs,
                  links=[("CTC decoding micro-benchmark", "decoding")])


def _meta(b: Bench, command: str, env: dict, start: float) -> dict:
    suite = b.suite
    return {"suite": suite.name, "description": suite.description, "command": command,
            "suite_file": suite.source, "suite_config": suite.to_dict(),
            "environment": env, "code": b.code, "wall_seconds": time.perf_counter() - start,
            "notes": b.notes, "warnings": b.warnings}


def _write(b: Bench, report_dir: Path, command: str, env: dict, start: float,
           found: list[Table], figs: dict[str, list[tuple[str, str]]],
           links: list[tuple[str, str]] | None = None) -> Path:
    """The main report (Markdown, HTML, JSON, CSV) and the warnings on the terminal."""
    write_report(report_dir, {**_meta(b, command, env, start), "links": links or []},
                 found, figs)
    b.log(f"report written to {report_dir / 'report.md'} "
          f"({time.perf_counter() - start:.0f} s)")
    for w in b.warnings:
        b.log(f"warning: {w}")
    return report_dir

