"""The report's figures: plots (one colour per model in every one of them, titled axes,
legends outside the data) and image sheets (test-set samples, each model's misreads)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from PIL import Image

from captchagen.preview import contact_sheet, save_image
from crnn.bench.report import Table
from crnn.data.sources import load_samples

if TYPE_CHECKING:
    from crnn.bench.runner import Bench, Run, TestSet

Figures = dict[str, list[tuple[str, str]]]  # table key -> [(caption, file name)]


def model_colours(titles: list[str]) -> dict[str, str]:
    """A fixed colour per model (suite order), the same in every plot of the report."""
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
               "#7f7f7f", "#bcbd22", "#17becf"]
    return {t: palette[i % len(palette)] for i, t in enumerate(titles)}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> str:
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=100, bbox_inches="tight")
    _pyplot().close(fig)
    os.replace(tmp, path)
    return path.name


def _legend_outside(ax, title: str | None = None) -> None:
    """The legend right of the axes, where it can cover no data."""
    ax.legend(fontsize=8, title=title, loc="upper left", bbox_to_anchor=(1.01, 1.0),
              borderaxespad=0)


def plot_by_length(rows: list[dict], path: Path, colours: dict[str, str]) -> str:
    """Grouped bars with their 95% intervals: sequence accuracy per label length."""
    plt = _pyplot()
    df = pd.DataFrame(rows)
    models = list(dict.fromkeys(df["model"]))
    lengths = sorted(df["length"].unique())
    width = 0.8 / len(models)
    fig, ax = plt.subplots(figsize=(8, 3.6))
    for i, m in enumerate(models):
        d = df[df["model"] == m].set_index("length").reindex(lengths)
        acc = d["sequence_accuracy"].fillna(0)
        lo = [a - c[0] if isinstance(c, list) else 0 for a, c in zip(acc, d["ci"])]
        hi = [c[1] - a if isinstance(c, list) else 0 for a, c in zip(acc, d["ci"])]
        xs = [x + (i - (len(models) - 1) / 2) * width for x in range(len(lengths))]
        ax.bar(xs, acc, width, yerr=[lo, hi], capsize=2, label=m, color=colours.get(m))
    ax.set_xticks(range(len(lengths)), [str(n) for n in lengths])
    ax.set_ylim(0, 1.05)
    ax.set_title("Sequence accuracy by label length (bars: 95% interval)")
    ax.set_ylabel("sequence accuracy")
    ax.set_xlabel("label length (characters)")
    ax.grid(axis="y", alpha=0.3)
    _legend_outside(ax, "model")
    return _save(fig, path)


def plot_curves(runs: list[Run], path: Path, colours: dict[str, str]) -> str:
    """Validation sequence accuracy against training images seen, per run."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 3.6))
    labelled: set[str] = set()
    for run in runs:
        log = run.path / "metrics.csv"
        if not log.is_file():
            continue
        df = pd.read_csv(log)
        batch = json.loads((run.path / "config.json").read_text())["train"]["batch_size"]
        name = f"{run.plan.title} ({run.data})"
        ax.plot(df["step"] * batch, df["val_sequence_accuracy"], marker=".",
                color=colours.get(run.plan.title), ls="--" if run.data == "real" else "-",
                label=None if name in labelled else name)
        labelled.add(name)
    ax.set_title("Validation accuracy during training (one line per seed)")
    ax.set_xlabel("training images seen")
    ax.set_ylabel("validation sequence accuracy")
    ax.set_ylim(0, 1.05)
    ax.grid(alpha=0.3)
    _legend_outside(ax, "model (data)")
    return _save(fig, path)


def plot_throughput(rows: list[dict], path: Path, colours: dict[str, str]) -> str:
    """images/s by batch size: one panel per runtime, one colour per model."""
    plt = _pyplot()
    df = pd.DataFrame(rows)
    runtimes = list(dict.fromkeys(df["runtime"] + " (" + df["device"] + ")"))
    fig, axes = plt.subplots(1, len(runtimes), figsize=(4 * len(runtimes) + 1.5, 3.4),
                             squeeze=False)
    df["panel"] = df["runtime"] + " (" + df["device"] + ")"
    for ax, panel in zip(axes[0], runtimes):
        pivot = df[df["panel"] == panel].pivot_table(index="batch_size", columns="model",
                                                     values="model_images_per_s")
        pivot.plot.bar(ax=ax, rot=0, logy=True, legend=False,
                       color=[colours.get(m, "#777777") for m in pivot.columns])
        ax.set_title(panel)
        ax.set_xlabel("batch size")
        ax.set_ylabel("images/s (forward + decoding)")
        ax.grid(axis="y", alpha=0.3)
    _legend_outside(axes[0][-1], "model")
    return _save(fig, path)


def plot_bars(rows: list[dict], x: str, y: str, hue: str, path: Path, ylabel: str,
              title: str, xlabel: str, log: bool = False) -> str:
    plt = _pyplot()
    df = pd.DataFrame(rows)
    pivot = df.pivot_table(index=x, columns=hue, values=y, aggfunc="first")
    fig, ax = plt.subplots(figsize=(8, 3.6))
    pivot.plot.bar(ax=ax, rot=0, logy=log)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)
    _legend_outside(ax, hue)
    return _save(fig, path)


def _sheet(items: list[tuple[Image.Image, str]], path: Path) -> str:
    save_image(contact_sheet(items, columns=4), path)
    return path.name


def sample_sheet(test: TestSet, path: Path, k: int = 8) -> str:
    """The first ``k`` images of a test set with their labels."""
    samples = load_samples(test.path)
    items = []
    for p, label in list(zip(samples.paths, samples.labels))[:k]:
        with Image.open(p) as im:
            items.append((im.convert("RGB"), label))
    return _sheet(items, path)


def misread_sheet(b: Bench, run: Run, test: TestSet, path: Path, k: int = 12) -> str | None:
    """Up to ``k`` images the model misread, captioned 'truth -> reading'."""
    m = b.evaluate(run, test)
    paths = load_samples(test.path).paths
    wrong = [i for i, ok in enumerate(m["correct"]) if not ok][:k]
    if not wrong:
        return None
    items = []
    for i in wrong:
        with Image.open(paths[i]) as im:
            items.append((im.convert("RGB"),
                          f"{m['labels'][i]} -> {m['predictions'][i] or '(empty)'}"))
    return _sheet(items, path)


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")


def report_figures(b: Bench, runs: list[Run], tests: list[TestSet], real_test: TestSet | None,
                   by_length: Table, tp: Table, colours: dict[str, str], out: Path
                   ) -> Figures:
    """Every figure of the main report, written into ``out``, by the table they follow."""
    from crnn.bench.tables import by_model, test_sets

    figs: Figures = {"accuracy": [], "confusions": [], "by_length": [], "training": [],
                     "throughput": []}
    for test in [*tests, *([real_test] if real_test else [])]:
        name = sample_sheet(test, out / f"samples-{_slug(test.name)}.png")
        figs["accuracy"].append((f"Samples of {test.name}", name))
    for group in by_model(runs):
        test = test_sets(group, tests, real_test)[0]
        title = group[0].plan.title
        name = misread_sheet(b, group[0], test, out / f"misreads-{_slug(title)}-"
                             f"{group[0].data}.png")
        if name:
            figs["confusions"].append((f"{title} misreads on {test.name} "
                                       "(truth -> reading)", name))
    if by_length.rows:
        figs["by_length"].append(("Accuracy by label length", plot_by_length(
            by_length.rows, out / "by_length.png", colours)))
    if any((r.path / "metrics.csv").is_file() for r in runs):
        figs["training"].append(("Training curves", plot_curves(
            runs, out / "training_curves.png", colours)))
    if tp.rows:
        figs["throughput"].append(("Throughput", plot_throughput(
            tp.rows, out / "throughput.png", colours)))
    return figs


def decoding_figures(dec: Table, out: Path) -> Figures:
    rows = [r for r in dec.rows if r["logits"] == "synthetic peaked"]
    if not rows:
        return {}
    return {"decoding": [("Decoding speed", plot_bars(
        rows, "batch_size", "sequences_per_s", "implementation", out / "decoding.png",
        "sequences/s (log scale)", "CTC decoding speed on synthetic peaked logits",
        "batch size", log=True))]}
