"""The benchmark report: tables as Markdown, HTML, one CSV each, and JSON.

Every number comes from a table row measured in the run; Markdown and HTML are rendered
from one template (``templates/report.j2``), which lays the report out once and calls the
format's macros (``md.j2`` or ``html.j2``). ``fmt_cell`` is the single formatting rule,
which the tests reuse. The HTML is self-contained: its images are inlined as data URIs.
"""

from __future__ import annotations

import base64
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import pandas as pd

from plumbing.files import atomic_write

TEMPLATES = Path(__file__).with_name("templates")


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
    """How a table value is printed: ``None``/NaN as n/a, an interval ``[lo, hi]`` (spec
    ``ci``) as lo–hi, a range of large counts (spec ``range``) as lo–hi with thousands
    separators, numbers by their format spec."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if spec == "ci":
        return f"{value[0]:.4f}–{value[1]:.4f}"
    if spec == "range":
        return f"{value[0]:,.0f}–{value[1]:,.0f}"
    if spec == "pct":
        return f"{100 * value:.2f}%"
    if spec in ("", "s") or isinstance(value, str):
        return str(value)
    return format(value, spec)


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def render(fmt: str, out: Path, meta: dict, tables: list[Table],
           figures: dict[str, list[tuple[str, str]]]) -> str:
    """The report in ``fmt`` ("md" or "html"); figures are files in ``out``."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=False,
                             trim_blocks=True, lstrip_blocks=True,
                             undefined=jinja2.StrictUndefined)
    numeric = {"", "s"}
    sections = [{
        "title": t.title, "notes": t.notes,
        "headers": [h for _, h, _ in t.columns],
        "right": [s not in numeric for _, _, s in t.columns],
        "rows": [[fmt_cell(r.get(f), s) for f, _, s in t.columns] for r in t.rows],
        "figures": [(caption, name if fmt == "md" else _data_uri(out / name))
                    for caption, name in figures.get(t.key, [])],
    } for t in tables]
    env_ = meta["environment"]
    text = env.get_template("report.j2").render(
        fmt=fmt, title=meta.get("title") or f"Benchmark report: suite {meta['suite']}",
        intro=(f"Generated {env_['date']} on {env_['cpu']} ({env_['cpu_cores']} cores; GPU: "
               f"{env_['gpu']}), commit {env_['git_commit']}, in {meta['wall_seconds']:.0f} s."),
        command=meta["command"], description=meta.get("description", ""),
        warnings=meta.get("warnings", []),
        links=[(text, f"{stem}.{fmt}") for text, stem in meta.get("links", [])],
        sections=sections)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"  # macros leave blank runs


def write_report(out: Path, meta: dict, tables: list[Table],
                 figures: dict[str, list[tuple[str, str]]], stem: str = "report") -> None:
    """STEM.md, STEM.html, STEM.json and one CSV per table, each written atomically."""
    out.mkdir(parents=True, exist_ok=True)
    for t in tables:
        df = pd.DataFrame(t.rows, columns=[f for f, _, _ in t.columns])
        atomic_write(out / f"{t.key}.csv", df.to_csv(index=False).encode())
    doc = {"meta": meta, "tables": {t.key: t.to_dict() for t in tables},
           "figures": figures}
    atomic_write(out / f"{stem}.json", (json.dumps(doc, indent=2, default=_json) + "\n")
                 .encode())
    for fmt in ("md", "html"):
        atomic_write(out / f"{stem}.{fmt}", render(fmt, out, meta, tables, figures).encode())


def _json(v):
    if hasattr(v, "item"):
        return v.item()
    return str(v)
