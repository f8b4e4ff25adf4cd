"""The benchmark report: tables as Markdown, HTML, one CSV each, and JSON; plus plots.

Every number comes from a table row measured in the run; Markdown and HTML only format
what the JSON holds (``fmt_cell`` is the single formatting rule, which the tests reuse).
"""

from __future__ import annotations

import html
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from plumbing.files import atomic_write


@dataclass
class Table:
    key: str  # file stem: accuracy -> accuracy.csv
    title: str
    columns: list[tuple[str, str, str]]  # (field, header, format spec)
    rows: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    keys: tuple[str, ...] = ()  # the fields that name a row (matched by ``compare``)

    def to_dict(self) -> dict:
        return {"title": self.title, "keys": list(self.keys),
                "columns": [{"field": f, "header": h, "format": s} for f, h, s in self.columns],
                "rows": self.rows, "notes": self.notes}


def fmt_cell(value, spec: str) -> str:
    """How a table value is printed: ``None``/NaN as n/a, numbers by their format spec."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if spec == "pct":
        return f"{100 * value:.2f}%"
    if spec in ("", "s") or isinstance(value, str):
        return str(value)
    return format(value, spec)


def markdown_table(t: Table) -> str:
    head = "| " + " | ".join(h for _, h, _ in t.columns) + " |"
    align = "|" + "|".join("---" if s in ("", "s") else "---:" for _, _, s in t.columns) + "|"
    body = ["| " + " | ".join(fmt_cell(r.get(f), s) for f, _, s in t.columns) + " |"
            for r in t.rows]
    return "\n".join([head, align, *body])


def render_markdown(meta: dict, tables: list[Table], plots: dict[str, str]) -> str:
    parts = [f"# Benchmark report: suite `{meta['suite']}`", "",
             f"Generated {meta['environment']['date']} on {meta['environment']['cpu']} "
             f"({meta['environment']['cpu_cores']} cores; GPU: {meta['environment']['gpu']}), "
             f"commit {meta['environment']['git_commit']}, in {meta['wall_seconds']:.0f} s.",
             "", f"Command: `{meta['command']}`", ""]
    if meta.get("description"):
        parts += [meta["description"], ""]
    for t in tables:
        parts += [f"## {t.title}", "", markdown_table(t), ""]
        parts += [f"- {n}" for n in t.notes]
        if t.notes:
            parts.append("")
        for name, path in plots.items():
            if name.startswith(t.key):
                parts += [f"![{name}]({path})", ""]
    return "\n".join(parts)


def render_html(meta: dict, tables: list[Table], plots: dict[str, str]) -> str:
    def table_html(t: Table) -> str:
        head = "".join(f"<th>{html.escape(h)}</th>" for _, h, _ in t.columns)
        rows = "".join(
            "<tr>" + "".join(f"<td class='{'t' if s in ('', 's') else 'n'}'>"
                             f"{html.escape(fmt_cell(r.get(f), s))}</td>"
                             for f, _, s in t.columns) + "</tr>"
            for r in t.rows)
        notes = "".join(f"<li>{html.escape(n)}</li>" for n in t.notes)
        figs = "".join(f"<img src='{html.escape(p)}' alt='{html.escape(k)}'>"
                       for k, p in plots.items() if k.startswith(t.key))
        return (f"<h2>{html.escape(t.title)}</h2><table><tr>{head}</tr>{rows}</table>"
                f"<ul>{notes}</ul>{figs}")

    env = meta["environment"]
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>crnn-bench: {html.escape(meta['suite'])}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:3px 8px}}
td.n{{text-align:right;font-variant-numeric:tabular-nums}}img{{max-width:100%}}</style>
</head><body><h1>Benchmark report: suite {html.escape(meta['suite'])}</h1>
<p>Generated {html.escape(env['date'])} on {html.escape(env['cpu'])}, GPU:
{html.escape(env['gpu'])}, commit {html.escape(env['git_commit'])}.</p>
<p>Command: <code>{html.escape(meta['command'])}</code></p>
{''.join(table_html(t) for t in tables)}</body></html>
"""


def write_report(out: Path, meta: dict, tables: list[Table], plots: dict[str, str]) -> None:
    """report.md, report.html, report.json and one CSV per table, each written atomically."""
    out.mkdir(parents=True, exist_ok=True)
    for t in tables:
        df = pd.DataFrame(t.rows, columns=[f for f, _, _ in t.columns])
        atomic_write(out / f"{t.key}.csv", df.to_csv(index=False).encode())
    doc = {"meta": meta, "tables": {t.key: t.to_dict() for t in tables}, "plots": plots}
    atomic_write(out / "report.json", (json.dumps(doc, indent=2, default=_json) + "\n").encode())
    atomic_write(out / "report.md", render_markdown(meta, tables, plots).encode())
    atomic_write(out / "report.html", render_html(meta, tables, plots).encode())


def _json(v):
    if hasattr(v, "item"):
        return v.item()
    return str(v)


# Plots --------------------------------------------------------------------------------------

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


def plot_by_length(rows: list[dict], path: Path) -> str:
    """Grouped bars: sequence accuracy per label length, one colour per model."""
    plt = _pyplot()
    df = pd.DataFrame(rows)
    pivot = df.pivot(index="length", columns="model", values="sequence_accuracy")
    fig, ax = plt.subplots(figsize=(7, 3.5))
    pivot.plot.bar(ax=ax, rot=0)
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("sequence accuracy")
    ax.set_xlabel("label length")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_curves(curves: dict[str, pd.DataFrame], path: Path) -> str:
    """Validation sequence accuracy against training time, per model."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for name, df in curves.items():
        ax.plot(df["elapsed_s"] / 60, df["val_sequence_accuracy"], marker=".", label=name)
    return save_accuracy_plot(fig, ax, "training time (min)", "validation sequence accuracy",
                              path)


def save_accuracy_plot(fig, ax, xlabel: str, ylabel: str, path: Path) -> str:
    """Label an accuracy plot (0..1, grid, legend) and save it; returns the file name."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_bars(rows: list[dict], x: str, y: str, hue: str, path: Path, ylabel: str,
              log: bool = False) -> str:
    plt = _pyplot()
    df = pd.DataFrame(rows)
    pivot = df.pivot_table(index=x, columns=hue, values=y, aggfunc="first")
    fig, ax = plt.subplots(figsize=(7, 3.5))
    pivot.plot.bar(ax=ax, rot=0, logy=log)
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, path)
