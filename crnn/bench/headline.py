"""The README's headline numbers, rendered from the reports kept in ``docs/benchmarks``.

``crnn-bench headline --write README.md`` replaces the block between the two markers, so
the README never holds a number that a report did not measure; a test checks it is current.
"""

from __future__ import annotations

import json
from pathlib import Path

from crnn.bench.transfer_labels import PRETRAINED, REST, SCRATCH
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


def _interval(low: float | None, high: float | None) -> str:
    """`` [low–high]`` for a ratio's 95% interval; nothing where the report has none."""
    return "" if low is None or high is None else f" [{low:.2f}–{high:.2f}]"


def headline(docs: Path) -> str:
    """Markdown bullets quoting the measured figures, each with the report it comes from."""
    lines: list[str] = []
    gen = _load(docs / "generator.json")
    if gen:
        g = gen["captchagen_make"]
        lines.append(
            f"- **Generator** ([report](docs/benchmarks/generator.md)): `captchagen make` writes "
            f"{g['images_per_s']:.0f} images/s on {gen['environment']['cpu_cores']} cores, "
            f"{gen['speedup']:.2f}x{_interval(gen.get('speedup_low'), gen.get('speedup_high'))} "
            "the tutorial loop "
            f"({gen['tutorial_loop']['images_per_s']:.0f} images/s); {g['images']:,} images in "
            f"{g['images'] / g['images_per_s']:.0f} s, peak memory {g['peak_rss_mib']:.0f} MiB "
            f"({gen['peak_rss_growth']:.2f}x that of a {gen['captchagen_make_small']['images']:,}"
            "-image run).")
    suites = [(name, r) for name in ("standard", "quick")
              if (r := _load(docs / name / "report.json"))]
    quick = dict(suites).get("quick")
    if quick:
        lines.append(
            f"- **Quick suite** ([report](docs/benchmarks/quick/report.md)): generate, train "
            f"{len(quick['meta']['suite_config']['models'])} models, evaluate, measure and "
            f"report in {quick['meta']['wall_seconds'] / 60:.1f} min on "
            f"{quick['meta']['environment']['cpu_cores']} CPU cores.")
    for name, report in suites:
        lines.append(_accuracy_line(name, report))
    if suites:
        lines += _details(*suites[0])  # the larger suite's
    transfer = _load(docs / "transfer" / "report.json")
    if transfer and "transfer" in transfer["tables"]:
        lines.append(_transfer_line(transfer))
    dec = _load(docs / "decoding.json")
    if dec:
        lines.append(_decoding_line(dec))
    return "\n".join(lines) if lines else "- (no benchmark reports in docs/benchmarks yet)"


def _accuracy_line(name: str, report: dict) -> str:
    """In-distribution accuracy per model with its interval (and seeds' spread)."""
    acc, meta = report["tables"]["accuracy"], report["meta"]
    rows = [r for r in acc["rows"] if r["test_set"].startswith("in-dist")]
    images = meta["suite_config"].get("train", {}).get("images")
    budget = f", {images:,} training images per model" if images else ""
    return (f"- **Accuracy, {name} suite** ([report](docs/benchmarks/{name}/report.md), "
            f"{rows[0]['n']:,} unseen generated captchas{budget}"
            f"{'; [95% interval]' if rows[0].get('ci') else ''}): "
            + ", ".join(f"{r['model']} {_acc(r)}{_seeds(r)}" for r in rows) + ".")


def _seeds(row: dict) -> str:
    if (row.get("seeds") or 1) < 2 or row.get("seed_std") is None:
        return ""
    return (f" ({row['seeds']} seeds: {_pct(row['seed_mean'])} ± "
            f"{100 * row['seed_std']:.2f} points)")


def _details(name: str, report: dict) -> list[str]:
    """Unseen length 7, the real set, latency and throughput, ddddocr: from one suite."""
    acc, meta, lines = report["tables"]["accuracy"], report["meta"], []
    seven = [r for r in acc["rows"] if r["test_set"].startswith("length 7")]
    if seven:
        lines.append(f"- **Unseen length 7** ({name} suite): " + ", ".join(
            f"{r['model']} {_acc(r)}" for r in seven) + ".")
    real = [r for r in acc["rows"] if r["test_set"].startswith("real")]
    if real:
        lines.append(f"- **Real captchas** ({real[0]['test_set']}): " + ", ".join(
            f"{r['model']} {_acc(r)}" for r in real) + ".")
    tp = report["tables"]["throughput"]
    r32 = _row(tp, model="crnn-small", runtime="onnxruntime", batch_size=32)
    r1 = _row(tp, model="crnn-small", runtime="onnxruntime", batch_size=1)
    if r32:
        text = (f"- **Inference** ({name} suite), crnn-small on "
                f"{meta['suite_config']['throughput']['threads']} CPU threads")
        if r1 and "code" in meta:  # reports with provenance also quote batch-1 latency
            text += (f": one image in {r1['p50_ms']:.2f} ms (p50, p95 {r1['p95_ms']:.2f} "
                     "ms, from PNG bytes); at batch 32 ")
        else:
            text += " at batch 32: "
        lines.append(text + f"{r32['model_images_per_s']:,.0f} images/s "
                     f"(forward + decoding), {r32['images_per_s']:,.0f} images/s from "
                     "PNG files.")
    h2h = report["tables"]["head_to_head"]
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
    return lines


def _transfer_line(report: dict) -> str:
    """Pretrained + fine-tuned against from scratch at each K, and the pretraining cost."""
    rows = report["tables"]["transfer"]["rows"]
    cost = {r["key"]: r["value"] for r in report["tables"]["transfer_pretraining"]["rows"]}

    def acc(r: dict) -> str:
        return _acc({"sequence_accuracy": r["accuracy"], "ci": [r["ci_low"], r["ci_high"]]})

    parts = []
    # Reports before the "test" column held only the single split (REST).
    for k, test in dict.fromkeys((r["k"], r.get("test", REST)) for r in rows):
        at = [r for r in rows if (r["k"], r.get("test", REST)) == (k, test)]
        pre = next((r for r in at if r["arm"] == PRETRAINED), None)
        scratch = next((r for r in at if r["arm"] == SCRATCH), None)
        where = f" in {test} ({at[0]['n']:,} held-out readings pooled)" if (
            test != REST) else ""
        if pre and k == 0:
            parts.append(f"zero-shot {acc(pre)}")
        elif pre:
            parts.append(f"K = {k}{where}: {acc(pre)}"
                         + (f" ({SCRATCH} {acc(scratch)})" if scratch else ""))
    minutes = float(cost.get("pretraining seconds", "nan")) / 60
    images = cost.get("synthetic images", "?")  # the table holds its values as text
    images = f"{int(images):,}" if images.isdigit() else images
    return ("- **Synthetic to real** ([transfer report](docs/benchmarks/transfer/report.md), "
            "held-out real captchas read after fine-tuning on K real labels; [95% interval]): "
            + "; ".join(parts) + f". Pretraining: {images} synthetic "
            f"`{cost.get('synthetic style')}` captchas, {minutes:.0f} min on the CPU, paid once.")


def _decoding_line(dec: dict) -> str:
    """Greedy and beam against the loop and fast-ctc-decode: batch 1 and the largest batch."""
    def speed(rows: list[dict], batch: int, name: str) -> float:
        return next(r["sequences_per_s"] for r in rows
                    if r["batch_size"] == batch and r["implementation"] == name)

    # The synthetic peaked logits' rows (the report also has a model's own outputs).
    def ratio(source: str, batch: int, ours: str, digits: int) -> str | None:
        """Ours over fast-ctc-decode with the report's interval over rounds."""
        r = next((r for r in dec.get("ratios", []) if r["logits"] == source
                  and r["batch_size"] == batch and r["ours"] == ours), None)
        if r is None:
            return None
        return f"{r['ratio']:.{digits}f}x [{r['low']:.{digits}f}–{r['high']:.{digits}f}]"

    # The synthetic peaked logits' rows (the report also has a model's own outputs).
    peaked = "synthetic peaked"
    rows = [r for r in dec["rows"] if r.get("logits", peaked) == peaked]
    big = max(r["batch_size"] for r in rows)
    beam_name = next(r["implementation"] for r in rows
                     if r["implementation"].startswith("ours beam"))
    greedy, loop = speed(rows, big, "ours greedy"), speed(rows, big, "reference loop")
    beam = speed(rows, big, beam_name)
    text = (f"- **CTC decoding** ([report](docs/benchmarks/decoding.md), {big:,} rows, medians "
            "of rounds; ratios to fast-ctc-decode [95% interval]): "
            f"greedy {greedy:,.0f} sequences/s, {greedy / loop:.0f}x the per-frame loop")
    if fcd := ratio(peaked, big, "ours greedy", 1):
        text += f" and {fcd} fast-ctc-decode"
    text += f"; {beam_name.replace('ours beam', 'beam search')} {beam:,.0f} sequences/s"
    if fcd_beam := ratio(peaked, big, beam_name, 1):
        text += f", {fcd_beam} fast-ctc-decode's"
    model = next((r["logits"] for r in dec["rows"] if r.get("logits", "").endswith("outputs")),
                 None)
    one = {n: ratio(model, 1, n, 2) for n in ("ours greedy", beam_name)} if model else {}
    if model and all(one.values()):
        at = [r for r in dec["rows"] if r.get("logits") == model]
        text += (f". At batch 1 on {model}: greedy {1e6 / speed(at, 1, 'ours greedy'):.1f} µs "
                 f"per sequence ({one['ours greedy']} fast-ctc-decode), beam "
                 f"{1e6 / speed(at, 1, beam_name):.1f} µs ({one[beam_name]})")
    return text + "."


def replace_block(readme: str, block: str) -> str:
    if START not in readme or END not in readme:
        raise UsageError(f"README has no {START} ... {END} block")
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{block}\n{END}{tail}"
