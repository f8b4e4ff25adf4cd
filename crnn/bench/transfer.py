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
from crnn.data.sources import Samples, load_samples, split
from crnn.evaluate import mistakes_sheet
from crnn.train import TrainConfig
from plumbing.errors import UsageError
from plumbing.files import atomic_write

if TYPE_CHECKING:
    from crnn.bench.runner import Bench

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


def section(b: Bench, real: Path, out: Path,
            ) -> tuple[list[Table], dict[str, list[tuple[str, str]]]]:
    """Pretrain once, fine-tune and train from scratch at every K, evaluate; tables + plot."""
    from crnn.bench.runner import Run, TestSet, copy_parts

    plan = b.suite.transfer
    assert plan is not None
    samples = load_samples(real)
    pool, held = split(samples, plan.split, SPLIT_SEED)
    shape = real_shape(pool)
    pre_ckpt, cost = pretrain(b, plan, shape)
    model = ModelPlan(plan.model, plan.size)
    key = config_hash([str(real.resolve()), len(samples), plan.split])
    rows, misread = [], {}
    # The pretrained arm first at every K, then the baseline: its figures come first.
    arms = [("pretrained + fine-tuned", pre_ckpt), ("from scratch", None)]
    for (arm, init), k in itertools.product(arms, k_values(plan, len(pool))):
        if k == 0 and init is None:
            continue  # nothing to train from scratch on
        root = b.cache / "data" / f"transfer-{key}" / f"k{k}"
        copy_parts(root, {"train": pool.paths[:k], "test": pool.paths[k:] + held.paths})
        test = TestSet(f"real minus {k} trained on", root / "test", real=True)
        if k == 0:
            run = Run(model, "real", pre_ckpt.parent, pre_ckpt)
        else:
            run = finetune(b, plan, root / "train", root / "test", k, init, arm)
        m = b.evaluate(run, test)
        misread[k, arm] = [(p, f"{t} -> {r or '(empty)'}") for p, t, r in zip(
            load_samples(test.path).paths, m["labels"], m["predictions"]) if t != r]
        summary = json.loads((run.path / "summary.json").read_text())
        correct = round(m["sequence_accuracy"] * m["n"])
        lo, hi = wilson(correct, m["n"])
        rows.append({"k": k, "arm": arm, "n": m["n"], "correct": correct,
                     "accuracy": m["sequence_accuracy"], "ci_low": lo, "ci_high": hi,
                     "char_accuracy": m["char_accuracy"],
                     "steps": summary["steps"] if k else 0,
                     "train_seconds": summary["train_seconds"] if k else 0.0})
    rows.sort(key=lambda r: r["k"])  # stable: the pretrained arm first at each K
    t = Table("transfer", "Transfer: accuracy on real captchas vs number of real labels K", [
        ("k", "K real labels", "d"), ("arm", "model", ""), ("n", "n test", "d"),
        ("correct", "correct", "d"), ("accuracy", "sequence acc.", "pct"),
        ("ci_low", "95% CI low", "pct"), ("ci_high", "95% CI high", "pct"),
        ("char_accuracy", "char acc.", ".4f"), ("steps", "fine-tune steps", "d"),
        ("train_seconds", "fine-tune time (s)", ".0f")], rows=rows, keys=("k", "arm"))
    t.notes += [
        f"Real set {real.name}: {len(samples)} images; training part = {len(pool)} "
        f"(split {1 - plan.split:.0%}/{plan.split:.0%}, seed {SPLIT_SEED}); K images are taken "
        "from the start of the shuffled training part; the test part is every other image.",
        f"Both arms: {plan.model}-{plan.size} at {plan.height}x{plan.width}, "
        f"{plan.finetune_steps} steps of batch {plan.batch_size} (fewer images: batch K), "
        f"lr {plan.lr}, augmentation {plan.augment}; the final weights are evaluated.",
        "Intervals: Wilson score, 95%."]
    cost_table = Table("transfer_pretraining", "Transfer: synthetic pretraining (paid once)", [
        ("key", "what", ""), ("value", "value", "")], keys=("key",))
    cost_table.rows = [{"key": k, "value": str(v)} for k, v in cost.items()]
    figs = {t.key: [("Sequence accuracy on the real captchas not trained on, against the real "
                     "labels K used (95% Wilson intervals)",
                     plot_transfer(rows, out / "transfer.png"))]}
    top = max(r["k"] for r in rows)
    if top > 0:
        t.notes.append(misread_note(top, {arm: misread[top, arm] for arm, _ in arms}))
        figs[t.key] += misread_sheets(top, misread, out)
    return [t, cost_table], figs


def misread_note(k: int, wrong: dict[str, list[tuple[Path, str]]]) -> str:
    """How many held-out images each arm misread at ``k``, and how many both did."""
    counts = "; ".join(f"{arm}: {len(items)}" for arm, items in wrong.items())
    both = set.intersection(*({p for p, _ in items} for items in wrong.values()))
    return f"Held-out images misread at K = {k}: {counts}; by every arm: {len(both)}."


def misread_sheets(k: int, misread: dict[tuple[int, str], list[tuple[Path, str]]], out: Path
                   ) -> list[tuple[str, str]]:
    """One sheet per arm of the held-out images it misread at ``k`` (file order, capped)."""
    figs = []
    for (kk, arm), items in misread.items():
        sheet = mistakes_sheet(items[:MAX_MISREAD]) if kk == k else None
        if sheet is None:
            continue
        name = f"misread_k{k}_{'scratch' if arm == 'from scratch' else 'pretrained'}.png"
        save_image(sheet, out / name)
        shown = f"the first {MAX_MISREAD} of " if len(items) > MAX_MISREAD else ""
        figs.append((f"{arm}, K = {k}: {shown}{len(items)} misread held-out images, "
                     "label -> reading", name))
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
             init: Path | None, arm: str):
    """One arm at one K: ``finetune_steps`` steps (rounded up to whole epochs)."""
    from crnn.bench.runner import Run

    batch = min(plan.batch_size, k)
    per_epoch = max(1, k // batch)
    epochs = math.ceil(plan.finetune_steps / per_epoch)
    cfg = TrainConfig(
        data=str(train_dir), val=str(test_dir), out="", model=plan.model, size=plan.size,
        height=plan.height, width=plan.width, epochs=epochs, batch_size=batch, lr=plan.lr,
        eval_every=epochs * per_epoch, augment=plan.augment, device=b.train_device,
        seed=b.suite.seed, progress=b.progress, init=str(init) if init else None)
    name = f"transfer-{'finetune' if init else 'scratch'}-k{k}"
    path = b.train_cached(cfg, name, f"{arm} on {k} real images")
    return Run(ModelPlan(plan.model, plan.size), "real", path, path / "last.ckpt")


def plot_transfer(rows: list[dict], path: Path) -> str:
    """Accuracy against K, one curve per arm, with the Wilson intervals as error bars."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8.5, 3.8))
    for arm in dict.fromkeys(r["arm"] for r in rows):
        pts = [r for r in rows if r["arm"] == arm]
        ks = [r["k"] for r in pts]
        acc = [r["accuracy"] for r in pts]
        err = [[a - r["ci_low"] for a, r in zip(acc, pts)],
               [r["ci_high"] - a for a, r in zip(acc, pts)]]
        ax.errorbar(ks, acc, yerr=err, marker="o", capsize=3, label=arm)
    ax.set_xscale("symlog", linthresh=50)
    ax.set_xticks(sorted({r["k"] for r in rows}))
    ax.set_xticklabels([str(k) for k in sorted({r["k"] for r in rows})])
    ax.set_title("Real captchas read, against the real labels used")
    ax.set_xlabel("real labelled images K")
    ax.set_ylabel("sequence accuracy on the rest")
    ax.set_ylim(0, 1.05)
    ax.grid(alpha=0.3)
    _legend_outside(ax, "start")
    return _save(fig, path)
