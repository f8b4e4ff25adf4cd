"""The transfer benchmark: accuracy on real captchas against the number K of real labels.

(a) a model trained from scratch on K real images; (b) a model pretrained once on synthetic
captchas, drawn to the real set's own geometry (image size, charset and lengths read from
the data, nothing named), then fine-tuned on the same K images (K = 0: as pretrained). Both
arms get the same fine-tuning budget in steps (so results do not depend on machine load);
the test part is every real image not trained on, with 95% Wilson intervals; at the largest
K, the held-out images each arm misread are shown.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image

from captchagen import CaptchaSpec, DatasetJob
from captchagen.fonts import select_fonts
from captchagen.preview import save_image
from captchagen.style import STYLE_FONTS, STYLE_PRESETS
from crnn.bench.figures import _legend_outside, _pyplot, _save
from crnn.bench.report import Table
from crnn.bench.stats import wilson
from crnn.bench.suite import ModelPlan, TransferPlan, config_hash
from crnn.bench.transfer_labels import PRETRAINED, REST, SCRATCH, folds_label
from crnn.data.sources import Samples, folds, load_samples
from crnn.evaluate import mistakes_sheet
from crnn.metrics import score
from crnn.train import TrainConfig
from plumbing.errors import UsageError
from plumbing.files import atomic_write

if TYPE_CHECKING:
    from crnn.bench.runner import Bench, Run

SPLIT_SEED = 42  # the real set's usual split (scikit-learn's random_state=42)
MAX_MISREAD = 24  # images shown per arm: enough to see a pattern, few enough to read


@dataclass(frozen=True)
class RealShape:
    """What the synthetic data copies from a real set: read from its images and labels."""

    width: int
    height: int
    charset: str
    min_len: int
    max_len: int


def real_shape(samples: Samples) -> RealShape:
    """The most common image size, the symbols of the labels, the label lengths."""
    sizes = collections.Counter()
    for p in samples.paths:
        with Image.open(p) as im:
            sizes[im.size] += 1
    (width, height), _ = sizes.most_common(1)[0]
    lengths = [len(s) for s in samples.labels]
    return RealShape(width, height, "".join(sorted(set("".join(samples.labels)))),
                     min(lengths), max(lengths))


def pretrain_spec(shape: RealShape, style: str) -> CaptchaSpec:
    if style not in STYLE_PRESETS:
        raise UsageError(f"[transfer] style {style!r} is not one of {', '.join(STYLE_PRESETS)}")
    fonts = select_fonts(STYLE_FONTS.get(style, ()), shape.charset)
    return CaptchaSpec(charset=shape.charset, min_len=shape.min_len, max_len=shape.max_len,
                       width=shape.width, height=shape.height, fonts=fonts,
                       style=STYLE_PRESETS[style])


def k_values(plan: TransferPlan, pool: int) -> list[int]:
    """The K of the plan ("all" = the whole training part), within the pool, ascending."""
    ks = set()
    for k in plan.ks:
        if k == "all":
            ks.add(pool)
        elif isinstance(k, int) and k >= 0:
            ks.add(min(k, pool))
        else:
            raise UsageError(f"[transfer] ks: {k!r} is not a count >= 0 or 'all'")
    return sorted(ks)


@dataclass(frozen=True)
class Arm:
    """One way to start fine-tuning: from the pretrained checkpoint, or from scratch."""

    label: str
    name: str  # in file names
    init: Path | None


@dataclass(frozen=True)
class Reading:
    """What one arm read of one test part; readings of disjoint parts pool with ``+``."""

    paths: tuple[Path, ...]
    labels: tuple[str, ...]
    predictions: tuple[str, ...]
    steps: tuple[int, ...] = ()  # per fine-tuning run
    seconds: tuple[float, ...] = ()

    def __add__(self, other: Reading) -> Reading:
        return Reading(*(a + b for a, b in zip(dataclasses.astuple(self),
                                               dataclasses.astuple(other))))

    def misread(self) -> list[tuple[Path, str]]:
        return [(p, f"{t} -> {r or '(empty)'}") for p, t, r in
                zip(self.paths, self.labels, self.predictions) if t != r]

    def row(self, k: int, test: str, arm: str) -> dict:
        m = score(self.labels, self.predictions)
        correct = sum(t == r for t, r in zip(self.labels, self.predictions))
        lo, hi = wilson(correct, m["n"])
        return {"k": k, "test": test, "arm": arm, "n": m["n"], "correct": correct,
                "accuracy": m["sequence_accuracy"], "ci_low": lo, "ci_high": hi,
                "char_accuracy": m["char_accuracy"], "steps": max(self.steps, default=0),
                "train_seconds": sum(self.seconds) / max(len(self.seconds), 1)}


def section(b: Bench, real: Path, out: Path,
            ) -> tuple[list[Table], dict[str, list[tuple[str, str]]]]:
    """Pretrain once, fine-tune and train from scratch at every K, evaluate; tables + plot."""
    from crnn.bench.runner import Run, TestSet, copy_parts

    plan = b.suite.transfer
    assert plan is not None
    samples = load_samples(real)
    parts = folds(samples, plan.split, SPLIT_SEED, plan.folds)
    pool, held = parts[0]
    shape = real_shape(pool)
    pre_ckpt, cost = pretrain(b, plan, shape)
    key = config_hash([str(real.resolve()), len(samples), plan.split])
    # The pretrained arm first at every K, then the baseline: its figures come first.
    arms = [Arm(PRETRAINED, "pretrained", pre_ckpt), Arm(SCRATCH, "scratch", None)]

    def measure(arm: Arm, k: int, train: Samples, test: Samples, tag: str) -> Reading:
        root = b.cache / "data" / f"transfer-{key}" / tag
        copy_parts(root, {"train": train.paths[:k], "test": train.paths[k:] + test.paths})
        test_set = TestSet(f"real minus {k} trained on", root / "test", real=True)
        if k == 0:
            run, steps, seconds = Run(ModelPlan(plan.model, plan.size), "real",
                                      pre_ckpt.parent, pre_ckpt), (), ()
        else:
            run = finetune(b, plan, root / "train", test_set.path, k, arm)
            steps, seconds = (run.summary["steps"],), (run.summary["train_seconds"],)
        m = b.evaluate(run, test_set)
        return Reading(load_samples(test_set.path).paths, tuple(m["labels"]),
                       tuple(m["predictions"]), steps, seconds)

    readings: dict[tuple[int, str, str], Reading] = {}
    for arm, k in itertools.product(arms, k_values(plan, len(pool))):
        if k > 0 or arm.init is not None:  # K = 0 from scratch: nothing to train
            readings[k, REST, arm.label] = measure(arm, k, pool, held, f"k{k}")
    cv = folds_label(plan.folds)
    if plan.folds > 1:
        for arm in arms:  # fold 0 is the split, measured above
            pooled = readings[len(pool), REST, arm.label]
            for i, (train, test) in enumerate(parts[1:], 1):
                pooled += measure(arm, len(train), train, test, f"k{len(train)}-fold{i}")
            readings[len(pool), cv, arm.label] = pooled
    rows = sorted((r.row(*at) for at, r in readings.items()),
                  key=lambda r: (r["k"], r["test"] != REST))  # stable: pretrained first
    t = Table("transfer", "Transfer: accuracy on real captchas vs number of real labels K", [
        ("k", "K real labels", "d"), ("test", "test part", ""), ("arm", "model", ""),
        ("n", "n test", "d"), ("correct", "correct", "d"),
        ("accuracy", "sequence acc.", "pct"), ("ci_low", "95% CI low", "pct"),
        ("ci_high", "95% CI high", "pct"), ("char_accuracy", "char acc.", ".4f"),
        ("steps", "fine-tune steps", "d"), ("train_seconds", "fine-tune time (s)", ".0f")],
        rows=rows, keys=("k", "test", "arm"))
    t.notes += [
        f"Real set {real.name}: {len(samples)} images; training part = {len(pool)} "
        f"(split {1 - plan.split:.0%}/{plan.split:.0%}, seed {SPLIT_SEED}); K images are taken "
        f"from the start of the shuffled training part; the test part ({REST!r}) is every "
        "other image.",
        f"Both arms: {plan.model}-{plan.size} at {plan.height}x{plan.width}, "
        f"{plan.finetune_steps} steps of batch {plan.batch_size} (fewer images: batch K), "
        f"lr {plan.lr}, augmentation {plan.augment}; the final weights are evaluated.",
        "Intervals: Wilson score, 95%."]
    if plan.folds > 1:
        t.notes.append(
            f"{cv!r}: K = {len(pool)} measured {plan.folds} times, each holding out a "
            f"different {len(held)} images of the same shuffle (fold 0 is the split above"
            f"{remainder_note(parts)}) and training on the rest; the held-out readings are "
            "pooled, so n counts every held-out image and the interval is narrower than one "
            "test part's. Steps and time are per fold.")
    cost_table = Table("transfer_pretraining", "Transfer: synthetic pretraining (paid once)", [
        ("key", "what", ""), ("value", "value", "")], keys=("key",))
    cost_table.rows = [{"key": k, "value": str(v)} for k, v in cost.items()]
    figs = {t.key: [("Sequence accuracy on the real captchas not trained on, against the real "
                     "labels K used (95% Wilson intervals)",
                     plot_transfer(rows, out / "transfer.png"))]}
    top = max(r["k"] for r in rows)
    if top > 0:
        test = cv if plan.folds > 1 else REST
        wrong = {arm.label: readings[top, test, arm.label].misread() for arm in arms}
        where = f" in {cv}" if plan.folds > 1 else ""
        t.notes.append(misread_note(f"{top}{where}", wrong))
        figs[t.key] += misread_sheets(f"{top}{where}", f"k{top}{'_cv' if where else ''}",
                                      {arm.name: (arm.label, wrong[arm.label]) for arm in arms},
                                      out)
    return [t, cost_table], figs


def remainder_note(parts: list[tuple[Samples, Samples]]) -> str:
    """Where the last held-out part is the shorter remainder, say so."""
    n_last, n_first = len(parts[-1][1]), len(parts[0][1])
    return f"; the last holds out the remaining {n_last}" if n_last < n_first else ""


def misread_note(k: str, wrong: dict[str, list[tuple[Path, str]]]) -> str:
    """How many held-out images each arm misread at ``k``, and how many both did."""
    counts = "; ".join(f"{arm}: {len(items)}" for arm, items in wrong.items())
    both = set.intersection(*({p for p, _ in items} for items in wrong.values()))
    return f"Held-out images misread at K = {k}: {counts}; by every arm: {len(both)}."


def misread_sheets(k: str, stem: str, wrong: dict[str, tuple[str, list[tuple[Path, str]]]],
                   out: Path) -> list[tuple[str, str]]:
    """One sheet per arm of the held-out images it misread at ``k`` (file order, capped)."""
    figs = []
    for name, (label, items) in wrong.items():
        sheet = mistakes_sheet(items[:MAX_MISREAD])
        if sheet is None:
            continue
        save_image(sheet, out / f"misread_{stem}_{name}.png")
        shown = f"the first {MAX_MISREAD} of " if len(items) > MAX_MISREAD else ""
        figs.append((f"{label}, K = {k}: {shown}{len(items)} misread held-out images, "
                     "label -> reading", f"misread_{stem}_{name}.png"))
    return figs


def pretrain(b: Bench, plan: TransferPlan, shape: RealShape) -> tuple[Path, dict]:
    """The synthetic dataset and the pretrained run (both cached); returns the checkpoint
    and the pretraining cost (generation time measured when the data was drawn)."""
    job = DatasetJob(spec=pretrain_spec(shape, plan.style), n=plan.pretrain_images,
                     seed=b.suite.seed * 100 + 50)
    timing = b.cache / "data" / f"transfer-synthetic-{config_hash(job.spec.to_dict())}.json"
    t0 = time.perf_counter()
    data = b.write_cached("transfer-synthetic", job)
    if not timing.is_file():
        atomic_write(timing, json.dumps({"seconds": time.perf_counter() - t0}).encode())
    cfg = TrainConfig(
        data=str(data), out="", model=plan.model, size=plan.size, height=plan.height,
        width=plan.width, epochs=plan.pretrain_epochs, batch_size=plan.pretrain_batch_size,
        lr=plan.lr, val_split=0.02, augment="off", device=b.train_device,
        seed=b.suite.seed, progress=b.progress)
    path = b.train_cached(cfg, "transfer-pretrain", f"{plan.model}-{plan.size} on synthetic "
                          f"{plan.style} captchas")
    s = json.loads((path / "summary.json").read_text())
    cost = {"synthetic style": plan.style, "synthetic images": plan.pretrain_images,
            "image size (from the real set)": f"{shape.width}x{shape.height}",
            "charset (from the real labels)": shape.charset,
            "lengths (from the real labels)": f"{shape.min_len}-{shape.max_len}",
            "generation seconds": round(json.loads(timing.read_text())["seconds"], 1),
            "pretraining epochs": plan.pretrain_epochs, "pretraining steps": s["steps"],
            "pretraining seconds": round(s["train_seconds"], 1),
            "pretraining images/s": round(s["images_per_s"], 1),
            "synthetic validation accuracy": round(s["best_val_sequence_accuracy"], 4)}
    return path / "last.ckpt", cost


def finetune(b: Bench, plan: TransferPlan, train_dir: Path, test_dir: Path, k: int,
             arm: Arm) -> Run:
    """One arm at one K: ``finetune_steps`` steps (rounded up to whole epochs)."""
    from crnn.bench.runner import Run

    batch = min(plan.batch_size, k)
    per_epoch = max(1, k // batch)
    epochs = math.ceil(plan.finetune_steps / per_epoch)
    cfg = TrainConfig(
        data=str(train_dir), val=str(test_dir), out="", model=plan.model, size=plan.size,
        height=plan.height, width=plan.width, epochs=epochs, batch_size=batch, lr=plan.lr,
        eval_every=epochs * per_epoch, augment=plan.augment, device=b.train_device,
        seed=b.suite.seed, progress=b.progress, init=str(arm.init) if arm.init else None)
    name = f"transfer-{'finetune' if arm.init else 'scratch'}-{train_dir.parent.name}"
    path = b.train_cached(cfg, name, f"{arm.label} on {k} real images")
    return Run(ModelPlan(plan.model, plan.size), "real", path, path / "last.ckpt")


def plot_transfer(rows: list[dict], path: Path) -> str:
    """Accuracy against K, one curve per arm, with the Wilson intervals as error bars; pooled
    cross-validation rows as hollow diamonds just right of their K, in the arm's colour."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8.5, 3.8))
    for arm in dict.fromkeys(r["arm"] for r in rows):
        for test in dict.fromkeys(r["test"] for r in rows):
            pts = [r for r in rows if r["arm"] == arm and r["test"] == test]
            if not pts:
                continue
            acc = [r["accuracy"] for r in pts]
            err = [[a - r["ci_low"] for a, r in zip(acc, pts)],
                   [r["ci_high"] - a for a, r in zip(acc, pts)]]
            if test == REST:
                line = ax.errorbar([r["k"] for r in pts], acc, yerr=err, marker="o", capsize=3,
                                   label=arm)
                colour = line[0].get_color()
            else:  # shifted right so its interval does not hide the single split's
                ax.errorbar([r["k"] * 1.12 for r in pts], acc, yerr=err, marker="D",
                            fillstyle="none", linestyle="none", capsize=3, color=colour,
                            label=f"{arm}, {test}")
    ks = sorted({r["k"] for r in rows})
    ax.set_xscale("symlog", linthresh=50)
    ax.set_xticks(ks)
    ax.set_xticklabels([str(k) for k in ks])
    ax.set_title("Real captchas read, against the real labels used")
    ax.set_xlabel("real labelled images K")
    ax.set_ylabel("sequence accuracy on the held-out part")
    ax.set_ylim(0, 1.05)
    ax.grid(alpha=0.3)
    _legend_outside(ax, "start")
    return _save(fig, path)
