"""``crnn-bench compare A B``: two reports side by side, as ratios B / A."""

from __future__ import annotations

import json
from pathlib import Path

from crnn.bench.report import fmt_cell
from crnn.bench.stats import overlap
from plumbing.errors import UsageError


def report_file(path: str | Path) -> Path:
    """The report.json that ``path`` names (itself, or inside the folder)."""
    p = Path(path)
    p = p / "report.json" if p.is_dir() else p
    if not p.is_file():
        raise UsageError(f"no report at {path} (expected a report.json or its folder)")
    return p


def load_report(path: str | Path) -> dict:
    """A crnn-bench report, its structure checked before use."""
    p = report_file(path)
    try:
        report = json.loads(p.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise UsageError(f"{p} is not a crnn-bench report (not JSON)") from None
    problem = _report_problem(report)
    if problem:
        raise UsageError(f"{p} is not a crnn-bench report: {problem}")
    return report


def _report_problem(r) -> str | None:
    """What is wrong with a report's structure, or None."""
    if not isinstance(r, dict) or not isinstance(r.get("tables"), dict):
        return "no 'tables'"
    env = r.get("meta", {}).get("environment") if isinstance(r.get("meta"), dict) else None
    if not isinstance(env, dict) or not {"date", "git_commit"} <= set(env):
        return "no meta.environment date and git_commit"
    for key, t in r["tables"].items():
        if not (isinstance(t, dict) and isinstance(t.get("title"), str)
                and isinstance(t.get("rows"), list) and isinstance(t.get("columns"), list)
                and all(isinstance(row, dict) for row in t["rows"])
                and all(isinstance(c, dict) and {"field", "format", "header"} <= set(c)
                        for c in t["columns"])
                and isinstance(t.get("keys") or [], list)):
            return f"table {key!r} lacks title, columns or rows"
    return None


def compare(a: dict, b: dict) -> list[dict]:
    """Rows matched on their text columns; every numeric column as A, B and B/A."""
    out = []
    for key, ta in a["tables"].items():
        tb = b["tables"].get(key)
        if tb is None or key == "environment":
            continue
        cols = ta["columns"]
        text = ta.get("keys") or [c["field"] for c in cols if c["format"] in ("", "s")]
        nums = [c for c in cols if c["format"] not in ("", "s") and c["field"] not in text]
        index = {tuple(r.get(f) for f in text): r for r in tb["rows"]}
        for ra in ta["rows"]:
            rb = index.get(tuple(ra.get(f) for f in text))
            if rb is None:
                continue
            for c in nums:
                va, vb = ra.get(c["field"]), rb.get(c["field"])
                if not isinstance(va, int | float) or not isinstance(vb, int | float):
                    continue
                out.append({"table": ta["title"], "row": " / ".join(str(ra.get(f)) for f in text),
                            "metric": c["header"], "a": fmt_cell(va, c["format"]),
                            "b": fmt_cell(vb, c["format"]),
                            "ratio": vb / va if va else None,
                            "noise": noise_mark(c["field"], ra, rb)})
    return out


def noise_mark(field: str, ra: dict, rb: dict) -> str:
    """For an accuracy with 95% intervals in both reports: whether the change is noise."""
    if field != "sequence_accuracy" or not (ra.get("ci") and rb.get("ci")):
        return ""
    if overlap(ra["ci"], rb["ci"]):
        return "within the noise (95% intervals overlap)"
    return "significant (95% intervals apart)"


def compare_markdown(a: dict, b: dict, name_a: str, name_b: str) -> str:
    rows = compare(a, b)
    lines = [f"# {name_b} vs {name_a}", "",
             f"A: {a['meta']['environment']['date']}, commit "
             f"{a['meta']['environment']['git_commit']}; B: {b['meta']['environment']['date']}, "
             f"commit {b['meta']['environment']['git_commit']}", ""]
    table = None
    for r in rows:
        if r["table"] != table:
            table = r["table"]
            lines += ["", f"## {table}", "", "| row | metric | A | B | B/A | noise |",
                      "|---|---|---:|---:|---:|---|"]
        ratio = "n/a" if r["ratio"] is None else f"{r['ratio']:.3f}"
        lines.append(f"| {r['row']} | {r['metric']} | {r['a']} | {r['b']} | {ratio} | "
                     f"{r['noise']} |")
    return "\n".join(lines) + "\n"
