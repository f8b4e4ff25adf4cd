"""The README's headline numbers, rendered from the reports kept in ``docs/benchmarks``.

``crnn-bench headline --write README.md`` replaces the block between the two markers, so
the README never holds a number that a report did not measure; a test checks it is current.
"""

from __future__ import annotations

import json
from pathlib import Path

from plumbing.errors import UsageError

START, END = "<!-- headline:start -->", "<!-- headline:end -->"


def _load(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def _row(table: dict, **match) -> dict | None:
    return next((r for r in table["rows"] if all(r.get(k) == v for k, v in match.items())),
                None)


def _pct(v: float) -> str:
    return f"{100 * v:.2f}%"


def _acc(row: dict) -> str:
    """An accuracy with its 95% interval, as the report measured it (reports older than the
    intervals are quoted as they were, so the README keeps matching them)."""
    ci = row.get("ci")
    if not ci:
        return _pct(row["sequence_accuracy"])
    return f"{_pct(row['sequence_accuracy'])} [{100 * ci[0]:.1f}–{100 * ci[1]:.1f}]"


def headline(docs: Path) -> str:
    """Markdown bullets quoting the measured figures, each with the report it comes from."""
    lines: list[str] = []
    gen = _load(docs / "generator.json")
    if gen:
        g = gen["captchagen_make"]
        lines.append(
            f"- **Generator** ([report](docs/benchmarks/generator.md)): `captchagen make` writes "
            f"{g['images_per_s']:.0f} images/s on {gen['environment']['cpu_cores']} cores, "
            f"{gen['speedup']:.2f}x the tutorial loop "
            f"({gen['tutorial_loop']['images_per_s']:.0f} images/s); {g['images']:,} images in "
            f"{g['images'] / g['images_per_s']:.0f} s, peak memory {g['peak_rss_mib']:.0f} MiB "
            f"({gen['peak_rss_growth']:.2f}x that of a {gen['captchagen_make_small']['images']:,}"
            "-image run).")
    quick = _load(docs / "quick" / "report.json")
    if quick:
        lines.append(
            f"- **Quick suite** ([report](docs/benchmarks/quick/report.md)): generate, train "
            f"{len(quick['meta']['suite_config']['models'])} models, evaluate, measure and "
            f"report in {quick['meta']['wall_seconds'] / 60:.1f} min on "
            f"{quick['meta']['environment']['cpu_cores']} CPU cores.")
    std = _load(docs / "standard" / "report.json")
    if std:
        acc, meta = std["tables"]["accuracy"], std["meta"]
        cores = meta["environment"]["cpu_cores"]
        rows = [r for r in acc["rows"] if r["test_set"].startswith("in-dist")]
        test = rows[0]["test_set"]
        lines.append(
            f"- **Accuracy** ([standard suite](docs/benchmarks/standard/report.md), "
            f"{rows[0]['n']:,} unseen generated captchas, {cores} CPU cores"
            f"{'; [95% interval]' if rows[0].get('ci') else ''}): "
            + ", ".join(f"{r['model']} {_acc(r)}" for r in rows) + ".")
        second = _load(docs / "standard-seed1" / "report.json")
        if second:
            lines.append(_spread_line(acc, second, test))
        seven = [r for r in acc["rows"] if r["test_set"].startswith("length 7")]
        if seven:
            lines.append("- **Unseen length 7**: " + ", ".join(
                f"{r['model']} {_acc(r)}" for r in seven) + ".")
        real = [r for r in acc["rows"] if r["test_set"].startswith("real")]
        if real:
            lines.append(f"- **Real captchas** ({real[0]['test_set']}): " + ", ".join(
                f"{r['model']} {_acc(r)} in "
                f"{r['train_seconds'] / 60:.0f} min of CPU training" for r in real) + ".")
        tp = std["tables"]["throughput"]
        r32 = _row(tp, model="crnn-small", runtime="onnxruntime", batch_size=32)
        r1 = _row(tp, model="crnn-small", runtime="onnxruntime", batch_size=1)
        if r32:
            text = (f"- **Inference**, crnn-small on "
                    f"{meta['suite_config']['throughput']['threads']} CPU threads")
            if r1 and "code" in meta:  # reports with provenance also quote batch-1 latency
                text += (f": one image in {r1['p50_ms']:.2f} ms (p50, p95 {r1['p95_ms']:.2f} "
                         "ms, from PNG bytes); at batch 32 ")
            else:
                text += " at batch 32: "
            lines.append(text + f"{r32['model_images_per_s']:,.0f} images/s "
                         f"(forward + decoding), {r32['images_per_s']:,.0f} images/s from "
                         "PNG files.")
        h2h = std["tables"]["head_to_head"]
        ours = _row(h2h, solver="crnn-small")
        peer = next((r for r in h2h["rows"] if r["solver"].startswith("ddddocr")
                     and r.get("test_set") == (ours or {}).get("test_set")), None)
        if ours and peer:
            where = f" of {ours['test_set']}" if ours.get("test_set") else ""
            lines.append(
                f"- **Against ddddocr** (same {ours['n']} images{where}): crnn-small reads "
                f"{_acc(ours)} at {ours['p50_ms']:.1f} ms per image"
                f"{' (batch 1)' if ours.get('ci') else ''}; "
                f"{peer['solver']} {_acc(peer)} at {peer['p50_ms']:.1f} ms.")
    dec = _load(docs / "decoding.json")
    if dec:
        # The synthetic peaked logits' rows (the report also has a model's own outputs).
        rows = [r for r in dec["rows"] if r.get("logits", "synthetic peaked")
                == "synthetic peaked"]
        big = max(r["batch_size"] for r in rows)

        def speed(name: str) -> float | None:
            r = next((r for r in rows if r["batch_size"] == big
                      and r["implementation"] == name), None)
            return r["sequences_per_s"] if r else None

        greedy, loop = speed("ours greedy"), speed("reference loop")
        fcd = speed("fast-ctc-decode viterbi")
        beam_name = next(r["implementation"] for r in rows if r["implementation"]
                         .startswith("ours beam"))
        beam, fcd_beam = speed(beam_name), speed(beam_name.replace("ours", "fast-ctc-decode"))
        text = (f"- **CTC decoding** ([report](docs/benchmarks/decoding.md), {big:,} rows): "
                f"greedy {greedy:,.0f} sequences/s, {greedy / loop:.0f}x the per-frame loop")
        if fcd:
            text += f" and {greedy / fcd:.1f}x fast-ctc-decode"
        text += f"; {beam_name.replace('ours beam', 'beam search')} {beam:,.0f} sequences/s"
        if fcd_beam:
            text += f", {beam / fcd_beam:.1f}x fast-ctc-decode's"
        lines.append(text + ".")
    return "\n".join(lines) if lines else "- (no benchmark reports in docs/benchmarks yet)"


def _spread_line(first: dict, second_report: dict, test: str) -> str:
    """Both runs' in-distribution accuracy per model, the CRNN's margin and the spread."""
    def by_model(table: dict) -> dict[str, float]:
        return {r["model"]: r["sequence_accuracy"] for r in table["rows"]
                if r["test_set"] == test}

    a, b = by_model(first), by_model(second_report["tables"]["accuracy"])
    both = [m for m in a if m in b]
    seed = second_report["meta"]["suite_config"]["seed"]
    text = (f"- **Run to run** ([second run, seed {seed}]"
            "(docs/benchmarks/standard-seed1/report.md)): "
            + ", ".join(f"{m} {_pct(a[m])} then {_pct(b[m])}" for m in both))
    if both:
        spread = max(abs(a[m] - b[m]) for m in both)
        text += f"; largest spread {100 * spread:.2f} points"
    if "crnn-small" in both and "cnn-fixed-small" in both:
        margins = [r["crnn-small"] - r["cnn-fixed-small"] for r in (a, b)]
        text += (f"; CRNN over the CNN baseline by {100 * min(margins):.2f} points or more")
    return text + "."


def replace_block(readme: str, block: str) -> str:
    if START not in readme or END not in readme:
        raise UsageError(f"README has no {START} ... {END} block")
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{block}\n{END}{tail}"
