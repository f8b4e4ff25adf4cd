"""crnn-bench: the tiny suite end to end, report tables, Markdown = JSON, compare."""

from __future__ import annotations

import itertools
import json
import re
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from crnn.bench.report import fmt_cell
from crnn.bench.suite import load_suite

KAGGLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "captcha_images_v2"
MODELS = {"cnn-fixed-tiny", "cnn-ctc-tiny", "crnn-tiny"}


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """The tiny suite, run once for this module (with a small real folder when present)."""
    from crnn.bench.runner import run_suite

    out = tmp_path_factory.mktemp("bench")
    real = None
    if KAGGLE.is_dir():
        real = out / "real"
        real.mkdir()
        for p in sorted(KAGGLE.iterdir())[:60]:
            (real / p.name).write_bytes(p.read_bytes())
    run_suite(load_suite("tiny"), out, "cpu", real, progress=False, command="test")
    return out


def _tables(report: Path) -> dict:
    return json.loads((report / "report.json").read_text())["tables"]


def _decoding(report: Path) -> dict:
    """The CTC decoding micro-benchmark: a report of its own, linked from the main one."""
    return json.loads((report / "decoding.json").read_text())["tables"]["decoding"]


def test_every_table_exists_with_its_rows_and_columns(report):
    t = _tables(report)
    assert {"accuracy", "significance", "by_length", "confusions", "training", "provenance",
            "throughput", "head_to_head", "environment"} <= set(t)
    t["decoding"] = _decoding(report)
    for key, table in t.items():
        assert (report / f"{key}.csv").is_file()
        fields = [c["field"] for c in table["columns"]]
        assert table["rows"], key
        assert all(set(r) <= set(fields) | {"note"} for r in table["rows"]), key
    acc = t["accuracy"]["rows"]
    assert {r["model"] for r in acc} == MODELS
    sets = {r["test_set"] for r in acc if not r["test_set"].startswith("real")}
    assert sets == {"in-distribution (4-6)", "fixed length 5", "length 3 (unseen)",
                    "length 7 (unseen)"}
    seven = next(r for r in acc if r["model"] == "cnn-fixed-tiny"
                 and r["test_set"] == "length 7 (unseen)")
    assert seven["sequence_accuracy"] == 0 and "cannot emit" in seven["note"]
    lengths = {(r["model"], r["length"]) for r in t["by_length"]["rows"]}
    assert {(m, n) for m in MODELS for n in (3, 4, 5, 6, 7)} == lengths
    impls = {r["implementation"] for r in t["decoding"]["rows"]}
    assert any("reference" in i for i in impls) and any("greedy" in i for i in impls)
    assert any("beam" in i for i in impls)
    tp = t["throughput"]["rows"]
    assert {(r["model"], r["runtime"], r["batch_size"]) for r in tp} == {
        (m, rt, b) for m in MODELS for rt in ("torch", "onnxruntime") for b in (1, 8)}
    assert {r["solver"] for r in t["head_to_head"]["rows"]} >= MODELS
    assert {r["test_set"] for r in t["head_to_head"]["rows"]} >= {"in-distribution (4-6)"}
    for name in ("report.md", "report.html", "decoding.md", "decoding.html", "by_length.png",
                 "training_curves.png", "throughput.png", "decoding.png"):
        assert (report / name).is_file(), name
    assert list(report.glob("samples-*.png")) and list(report.glob("misreads-*.png"))


def test_every_accuracy_has_its_interval_and_pairs_their_test(report):
    from crnn.bench.stats import wilson

    t = _tables(report)
    for key in ("accuracy", "by_length", "head_to_head"):
        for r in t[key]["rows"]:
            lo, hi = r["ci"]
            assert lo <= r["sequence_accuracy"] <= hi, (key, r)
    for r in t["accuracy"]["rows"]:
        k = round(r["sequence_accuracy"] * r["n"])
        assert r["ci"] == pytest.approx(wilson(k, r["n"])) and r["seeds"] == 1
        assert r["seed_std"] is None and r["overlap"] == 0
    pairs = {(r["test_set"], r["model_a"], r["model_b"]) for r in t["significance"]["rows"]}
    assert ("in-distribution (4-6)", "cnn-fixed-tiny", "crnn-tiny") in pairs
    for r in t["significance"]["rows"]:
        assert 0 <= r["p_value"] <= 1
        assert ("within the noise" in r["verdict"]) == (r["p_value"] >= 0.05)


def test_a_never_correct_model_is_flagged(report):
    t = _tables(report)
    md = (report / "report.md").read_text()
    for r in t["training"]["rows"]:
        assert (r["first_correct_s"] is None) == ("never left the blank plateau" in r["status"])
        if r["first_correct_s"] is None:
            acc = [a for a in t["accuracy"]["rows"] if a["model"] == r["model"]]
            assert all("never left the blank plateau" in a["note"] for a in acc)
            assert "## Warnings" in md and f"{r['model']} (seed 0" in md


def test_provenance_names_the_code_of_every_model(report):
    from crnn.bench.provenance import code_hash

    rows = _tables(report)["provenance"]["rows"]
    assert {r["model"] for r in rows} >= MODELS
    for r in rows:
        assert r["code_hash"] == code_hash() and r["status"].startswith("this commit")
        assert r["trained"].endswith("UTC") and r["commit"] != "unknown"


def test_the_html_report_is_self_contained(report):
    html = (report / "report.html").read_text()
    assert "http://" not in html and "https://" not in html
    srcs = re.findall(r"""src=["']([^"']*)""", html)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "url(" not in html and "<link" not in html and "@import" not in html
    hrefs = re.findall(r"""href=["']([^"']*)""", html)
    assert hrefs == ["decoding.html"] and (report / hrefs[0]).is_file()
    assert "misreads on" in html and "Samples of" in html


def test_numbers_are_sane(report):
    t = {**_tables(report), "decoding": _decoding(report)}
    for r in t["accuracy"]["rows"]:
        for k in ("sequence_accuracy", "char_accuracy", "ned"):
            assert 0 <= r[k] <= 1, (k, r)
        assert r["parameters"] > 0 and r["mmacs"] > 0 and r["size_mb"] > 0
    for r in t["training"]["rows"]:
        assert r["train_seconds"] > 0 and r["images_per_s"] > 0 and r["images_seen"] > 0
    for r in t["decoding"]["rows"]:
        assert r["sequences_per_s"] > 0 and r["us_per_sequence"] > 0
        assert 0 <= r["agreement_with_reference"] <= 1
    for r in t["throughput"]["rows"]:
        assert r["images_per_s"] > 0 and 0 < r["p50_ms"] <= r["p95_ms"] + 1e-9
        assert r["forward_ms"] > 0 and r["preprocess_ms"] > 0
    greedy = [r for r in t["decoding"]["rows"] if "greedy" in r["implementation"]]
    assert all(r["agreement_with_reference"] == 1.0 for r in greedy)


def _markdown_tables(md: str) -> dict[str, list[list[str]]]:
    tables, title, rows = {}, None, []
    for line in md.splitlines():
        if line.startswith("## "):
            title, rows = line[3:], []
            tables[title] = rows
        elif line.startswith("| ") and title and not set(line) <= set("|-: "):
            rows.append([c.strip() for c in line.strip("|").split("|")])
    return tables


def test_markdown_renders_the_same_numbers_as_the_json(report):
    md = _markdown_tables((report / "report.md").read_text())
    for table in _tables(report).values():
        if "95% CI" in [c["header"] for c in table["columns"]]:
            assert any("–" in cell for line in md[table["title"]][1:] for cell in line)
        cells = md[table["title"]][1:]  # without the header row
        assert len(cells) == len(table["rows"])
        for line, row in zip(cells, table["rows"]):
            want = [fmt_cell(row.get(c["field"]), c["format"]) for c in table["columns"]]
            assert line == want


def test_a_second_run_reuses_every_cached_step(report, capsys):
    from crnn.bench.runner import run_suite

    before = {p: p.stat().st_mtime for p in (report / "cache").rglob("*.ckpt")}
    run_suite(load_suite("tiny"), report, "cpu", None, progress=False, command="again")
    err = capsys.readouterr().err
    assert "crnn-bench: training" not in err and "crnn-bench: generating" not in err
    assert {p: p.stat().st_mtime for p in (report / "cache").rglob("*.ckpt")} == before


def test_compare_shows_ratios(report, cli_run, tmp_path):
    from crnn.bench.cli import cli

    code, out, err = cli_run(cli, "crnn-bench", "compare", report, report,
                             "-o", tmp_path / "c.md")
    assert code == 0, err
    ratios = re.findall(r"\| ([0-9.]+) \| [^|]* \|$", out, flags=re.M)
    assert ratios and all(float(r) == 1.0 for r in ratios)
    acc = [line for line in out.splitlines() if "| sequence acc. |" in line]
    assert acc and all("within the noise" in line for line in acc)


def test_suite_files_load_and_bad_ones_are_refused(tmp_path, cli_run):
    from crnn.bench.cli import cli

    for name in ("tiny", "quick", "standard", "full"):
        s = load_suite(name)
        assert s.models and s.name == name
    bad = tmp_path / "bad.toml"
    bad.write_text("[train]\nminutez = 3\n")
    code, _, err = cli_run(cli, "crnn-bench", "run", "--suite", bad, "--out", tmp_path / "o")
    assert code == 2 and "minutez" in err
    code, _, err = cli_run(cli, "crnn-bench", "run", "--suite", "nope")
    assert code == 2 and "unknown suite" in err


def test_models_picks_a_subset_of_the_suite(tmp_path, cli_run):
    from crnn.bench.cli import cli
    from crnn.bench.suite import select_models

    standard = load_suite("standard")
    picked = select_models(standard, ["cnn-fixed-small", "crnn"])
    assert [m.name for m in picked.models] == ["cnn-fixed", "crnn", "crnn"]
    code, _, err = cli_run(cli, "crnn-bench", "run", "--suite", "tiny", "--models", "rnn",
                           "--out", tmp_path / "o")
    assert code == 2 and "unknown model(s) rnn" in err and not (tmp_path / "o").exists()


def test_decode_speed_writes_a_dated_report(tmp_path, capsys):
    from crnn.bench import decode_speed

    out = tmp_path / "docs" / "decoding"
    decode_speed.main(["--rows", "32", "--frames", "12", "--min-seconds", "0.01",
                       "--repeats", "3", "--no-model", "--out", str(out)])
    doc = json.loads(out.with_suffix(".json").read_text())
    assert doc["environment"]["date"] and "--rows 32" in doc["command"]
    greedy = [r for r in doc["rows"] if r["implementation"] == "ours greedy"]
    assert greedy and all(r["sequences_per_s"] > 0 for r in greedy)
    for r in doc["rows"]:  # a median of the rounds, and their range
        rounds = r["rounds_sequences_per_s"]
        assert len(rounds) == 3 and r["sequences_per_s"] == statistics.median(rounds)
        assert r["sequences_per_s_range"] == [min(rounds), max(rounds)]
    md = out.with_suffix(".md").read_text()
    assert md.startswith("# CTC decoding speed") and doc["command"] in md
    assert not list(out.parent.glob(".*.tmp"))  # written atomically


def test_decoding_targets_are_met_only_by_a_whole_interval():
    """Ratios are paired round by round; a target counts as met only when the interval of
    their geometric mean clears it, missed only when it lies wholly below."""
    from crnn.bench.decode_speed import target_ratios

    def row(name: str, rounds: list[float], b: int = 1) -> dict:
        return {"logits": "model outputs", "implementation": name, "batch_size": b,
                "rounds_sequences_per_s": rounds}

    peer = [100.0, 50.0, 100.0]  # a slow second round hits both sides alike
    rows = [row("ours greedy", [150.0, 75.0, 150.0]), row("fast-ctc-decode viterbi", peer),
            row("ours beam (w=4)", [101.0, 49.0, 96.0]),
            row("fast-ctc-decode beam (w=4)", peer)]
    rows += [{**r, "batch_size": 8, "rounds_sequences_per_s": [
        x / 2 if r["implementation"].startswith("ours") else x
        for x in r["rounds_sequences_per_s"]]} for r in rows]
    got = {(r["batch_size"], r["ours"]): r for r in target_ratios(rows, 4)}
    assert len(got) == 4
    greedy = got[1, "ours greedy"]
    assert (greedy["ratio"], greedy["low"], greedy["high"]) == pytest.approx((1.5, 1.5, 1.5))
    assert greedy["verdict"] == "meets" and greedy["target"] == 1.0
    beam = got[1, "ours beam (w=4)"]
    assert beam["low"] < 1.0 < beam["high"] and beam["verdict"] == "unresolved"
    assert beam["ratio"] == pytest.approx((1.01 * 0.98 * 0.96) ** (1 / 3))
    assert got[8, "ours greedy"]["verdict"] == "MISSES"  # 0.75x in every round
    peaked = [{**r, "logits": "synthetic peaked"} for r in rows]
    assert {r["target"] for r in target_ratios(peaked, 4) if "beam" in r["ours"]} == {10.0}


def test_decode_speed_times_the_contenders_in_turns(monkeypatch):
    """A slow spell of the machine must fall on every contender, not on the one being timed:
    the contenders alternate, and each gets its own median. A fake clock that each call
    advances by its cost keeps the test independent of how busy the machine is."""
    from crnn.bench import decode_speed

    clock = [0.0]
    monkeypatch.setattr(decode_speed.time, "perf_counter", lambda: clock[0])
    order: list[str] = []

    def contender(name: str, seconds: float):
        def call(i: int) -> None:
            order.append(name)
            clock[0] += seconds
        return call

    got = decode_speed._interleaved_seconds_per_call(
        [(contender("a", 0.002), 2), (contender("b", 0.004), 1)], min_seconds=0.05,
        turn_seconds=0.01)
    assert got == pytest.approx([0.002, 0.004])
    switches = sum(x != y for x, y in itertools.pairwise(order))
    assert switches >= 4  # several turns each, not one block per contender
    assert order.count("a") >= 3 * 2 and order.count("b") >= 3


def test_decode_speed_decodes_a_models_outputs_and_times_bytes_end_to_end(tmp_path):
    from crnn.bench import decode_speed
    from crnn.checkpoint import save_checkpoint
    from crnn.models import ModelConfig, create_model

    config = ModelConfig(name="crnn", charset="0123456789abcdefghijklmnopqrstuvwxyz"
                         "ABCDEFGHIJKLMNOPQRSTUVWXYZ", size="tiny")
    ckpt = tmp_path / "m.ckpt"
    save_checkpoint(ckpt, create_model(config), config, {})
    out = tmp_path / "decoding"
    decode_speed.main(["--rows", "64", "--min-seconds", "0.01", "--checkpoint", str(ckpt),
                       "--test-images", "16", "--cache", str(tmp_path / "cache"),
                       "--out", str(out)])
    doc = json.loads(out.with_suffix(".json").read_text())
    sources = {r["logits"] for r in doc["rows"]}
    assert sources == {"crnn-tiny outputs", "synthetic peaked"}
    model_rows = [r for r in doc["rows"] if r["logits"] == "crnn-tiny outputs"]
    assert {r["batch_size"] for r in model_rows} == {1, 32, 64}
    assert all(r["agreement_with_reference"] == 1.0 for r in model_rows
               if r["implementation"] == "ours greedy")
    e2e = doc["end_to_end"]
    assert e2e["batch_size"] == 32 and e2e["pipelined_images_per_s"] > 0
    assert e2e["pipelined_vs_model"] == pytest.approx(
        e2e["pipelined_images_per_s"] / e2e["model_images_per_s"])
    assert e2e["pool_images_per_s"] > 0 and e2e["pool_model_images_per_s"] > 0
    assert e2e["bytes_vs_model"] == pytest.approx(max(
        e2e["pipelined_images_per_s"], e2e["pool_images_per_s"]) / e2e["model_images_per_s"])
    assert "End to end at batch 32" in out.with_suffix(".md").read_text()


def test_headline_write_replaces_only_the_block(tmp_path, cli_run):
    from crnn.bench.cli import cli

    readme = tmp_path / "README.md"
    readme.write_text("# x\n<!-- headline:start -->\nstale block\n<!-- headline:end -->\ntail\n")
    docs = Path(__file__).resolve().parents[1] / "docs" / "benchmarks"
    code, _, err = cli_run(cli, "crnn-bench", "headline", "--docs", docs, "--write", readme)
    text = readme.read_text()
    assert code == 0, err
    assert "stale block" not in text and "**CTC decoding**" in text and text.endswith("tail\n")
    readme.write_text("no markers\n")
    code, _, err = cli_run(cli, "crnn-bench", "headline", "--write", readme)
    assert code == 2 and "headline:start" in err and readme.read_text() == "no markers\n"


def test_code_hash_follows_the_package_sources(tmp_path):
    from crnn.bench.provenance import code_hash

    for pkg in ("captchagen", "crnn", "plumbing"):
        (tmp_path / pkg).mkdir()
        (tmp_path / pkg / "a.py").write_text("x = 1\n")
    h, data_h = code_hash(root=tmp_path), code_hash(("captchagen",), tmp_path)
    (tmp_path / "crnn" / "notes.txt").write_text("not code")
    assert code_hash(root=tmp_path) == h
    (tmp_path / "crnn" / "a.py").write_text("x = 2\n")
    assert code_hash(root=tmp_path) != h and code_hash(("captchagen",), tmp_path) == data_h


def test_a_changed_source_retrains_and_an_unchanged_one_reuses(report, monkeypatch, capsys):
    from crnn.bench import provenance
    from crnn.bench.runner import Bench

    suite = load_suite("tiny")
    plan = suite.models[0]
    b = Bench(suite, report, "cpu", None, progress=False)
    train_dir, val_dir, _ = b.datasets()
    run = b.train_model(plan, train_dir, val_dir, False, suite.seed)
    err = capsys.readouterr().err
    assert "crnn-bench: generating" not in err and "crnn-bench: training" not in err
    real = provenance.code_hash
    monkeypatch.setattr(provenance, "code_hash", lambda packages=provenance.PACKAGES,
                        root=provenance.ROOT: real(packages, root)
                        + ("-edited" if "crnn" in packages else ""))
    b = Bench(suite, report, "cpu", None, progress=False)
    assert (train_dir, val_dir) == b.datasets()[:2]  # the data's code did not change
    edited = b.train_model(plan, train_dir, val_dir, False, suite.seed)
    err = capsys.readouterr().err
    assert "crnn-bench: generating" not in err and f"crnn-bench: training {plan.title}" in err
    assert edited.path != run.path and edited.provenance["code_hash"].endswith("-edited")


def test_seeds_per_model_and_from_the_command_line(tmp_path, cli_run):
    from crnn.bench.cli import cli
    from crnn.bench.runner import Bench

    s = load_suite("standard")
    b = Bench(s, tmp_path, "cpu", None, progress=False)
    assert {m.title: len(b.seeds_for(m)) for m in s.models} == {
        "cnn-fixed-small": 2, "cnn-ctc-small": 1, "crnn-small": 2,
        "crnn-small (108k images)": 1}
    assert all(Bench(s, tmp_path, "cpu", None, False, seeds=3).seeds_for(m) == [0, 1, 2]
               for m in s.models)
    cfg = b.train_config(s.models[0], tmp_path, tmp_path, False, 1)
    assert (cfg.images, cfg.minutes, cfg.eval_every, cfg.seed) == (216_000, None, 250, 1)
    code, _, err = cli_run(cli, "crnn-bench", "run", "--suite", "tiny", "--seeds", "0",
                           "--out", tmp_path / "o")
    assert code == 2 and "--seeds" in err


def test_pooled_accuracy_interval_and_spread_over_seeds():
    from crnn.bench.stats import wilson
    from crnn.bench.tables import pooled

    evals = [{"correct": [True, True, False, True], "sequence_accuracy": 0.75},
             {"correct": [True, False, False, True], "sequence_accuracy": 0.5}]
    p = pooled(evals)
    assert p["sequence_accuracy"] == 5 / 8 and p["ci"] == list(wilson(5, 8))
    assert p["seeds"] == 2 and p["seed_mean"] == 0.625
    assert p["seed_std"] == pytest.approx(0.1767767, rel=1e-6)


def test_budget_status_flags_a_cut_short_or_never_correct_run(tmp_path):
    from crnn.bench.runner import Run
    from crnn.bench.suite import ModelPlan
    from crnn.bench.tables import NEVER_CORRECT, budget_status

    run = Run(ModelPlan("crnn"), "synthetic", tmp_path, tmp_path / "best.ckpt")
    (tmp_path / "config.json").write_text(json.dumps(
        {"train": {"images": 1000, "minutes": 2.0}}))
    (tmp_path / "summary.json").write_text(json.dumps(
        {"images_seen": 640, "first_correct_s": None}))
    status = budget_status(run)
    assert "cut short by the 2-minute cap after 640 of 1,000 images" in status
    assert NEVER_CORRECT in status
    (tmp_path / "summary.json").write_text(json.dumps(
        {"images_seen": 1024, "first_correct_s": 3.5}))
    assert budget_status(run) == ""


def test_an_image_budget_stops_training_after_that_many_images(tmp_path, tiny_dataset):
    from crnn.train import TrainConfig, train

    s = train(TrainConfig(data=str(tiny_dataset), out=str(tmp_path / "r"), model="cnn-ctc",
                          size="tiny", images=100, batch_size=16, progress=False))
    assert s["steps"] == 7 and s["images_seen"] == 112  # ceil(100 / 16) batches of 16


def test_the_headline_imports_without_torch():
    """`crnn-bench headline` only reads JSON: it must not pay for torch and the trainer."""
    code = "import sys, crnn.bench.headline; print(sorted({'torch', 'PIL'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_headline_quotes_intervals_and_batch_1_latency(tmp_path):
    from crnn.bench.headline import headline

    row = {"model": "crnn-small", "test_set": "in-distribution (4-6)", "n": 2000,
           "sequence_accuracy": 0.99, "ci": [0.9852, 0.9933]}
    tp = [{"model": "crnn-small", "runtime": "onnxruntime", "batch_size": b, "p50_ms": 3.1,
           "p95_ms": 3.6, "images_per_s": 500.0, "model_images_per_s": 700.0} for b in (1, 32)]
    h2h = [{"test_set": "in-distribution (4-6)", "solver": s, "n": 500, "p50_ms": ms,
            "sequence_accuracy": acc, "ci": ci} for s, ms, acc, ci in (
                ("crnn-small", 3.1, 0.998, [0.989, 1.0]), ("ddddocr 1.6", 9.0, 0.7, [0.66, 0.74]))]
    doc = {"meta": {"environment": {"cpu_cores": 2}, "code": {"code_hash": "x"},
                    "suite_config": {"seed": 0, "throughput": {"threads": 2}}},
           "tables": {"accuracy": {"rows": [row]}, "throughput": {"rows": tp},
                      "head_to_head": {"rows": h2h}}}
    (tmp_path / "standard").mkdir()
    (tmp_path / "standard" / "report.json").write_text(json.dumps(doc))
    text = headline(tmp_path)
    assert "crnn-small 99.00% [98.5–99.3]" in text and "[95% interval]" in text
    assert "one image in 3.10 ms (p50, p95 3.60 ms" in text
    assert "of in-distribution (4-6)): crnn-small reads 99.80% [98.9–100.0]" in text
    assert "ddddocr 1.6 70.00% [66.0–74.0]" in text


def test_headline_quotes_speed_ratios_with_their_intervals(tmp_path):
    from crnn.bench.headline import headline

    gen = {"environment": {"cpu_cores": 2}, "tutorial_loop": {"images_per_s": 280.0},
           "captchagen_make": {"images": 50000, "images_per_s": 1500.0, "peak_rss_mib": 44.0},
           "captchagen_make_small": {"images": 5000}, "peak_rss_growth": 1.0,
           "speedup": 5.36, "speedup_low": 5.1, "speedup_high": 5.62}
    rows = [{"logits": src, "implementation": name, "batch_size": b, "sequences_per_s": v}
            for src in ("crnn-small outputs", "synthetic peaked") for b in (1, 2048)
            for name, v in (("reference loop", 1e4), ("ours greedy", 5e5),
                            ("ours beam (w=10)", 2e4), ("fast-ctc-decode viterbi", 3e5),
                            ("fast-ctc-decode beam (w=10)", 2e3))]
    ratios = [{"logits": src, "batch_size": b, "ours": ours, "ratio": x, "low": x - 0.2,
               "high": x + 0.3} for src in ("crnn-small outputs", "synthetic peaked")
              for b in (1, 2048) for ours, x in (("ours greedy", 1.6),
                                                 ("ours beam (w=10)", 13.5))]
    (tmp_path / "generator.json").write_text(json.dumps(gen))
    (tmp_path / "decoding.json").write_text(json.dumps({"rows": rows, "ratios": ratios}))
    text = headline(tmp_path)
    assert "5.36x [5.10–5.62] the tutorial loop (280 images/s)" in text
    assert "greedy 500,000 sequences/s, 50x the per-frame loop and 1.6x [1.4–1.9] " in text
    assert "beam search (w=10) 20,000 sequences/s, 13.5x [13.3–13.8] fast-ctc-decode's" in text
    assert "greedy 2.0 µs per sequence (1.60x [1.40–1.90] fast-ctc-decode)" in text


def test_generator_speed_pairs_its_rounds_and_quotes_the_interval(tmp_path):
    """benchmarks/generator_speed.py: the loop and captchagen make alternate in rounds; the
    speed-up is the geometric mean of the per-round ratios, with their t interval."""
    from crnn.bench.stats import ratio_interval

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "generator_speed.py"
    out = tmp_path / "generator"
    subprocess.run([sys.executable, str(script), "--n", "24", "--baseline-n", "8",
                    "--small-n", "12", "--repeats", "2", "--out", str(out)],
                   check=True, capture_output=True)
    doc = json.loads(out.with_suffix(".json").read_text())
    loops, makes = doc["tutorial_loop"]["rounds"], doc["captchagen_make"]["rounds"]
    assert len(loops) == len(makes) == 2 and doc["repeats"] == 2
    assert doc["ratios"] == pytest.approx([m / x for m, x in zip(makes, loops)])
    speedup, low, high = ratio_interval(doc["ratios"])
    assert (doc["speedup"], doc["speedup_low"], doc["speedup_high"]) == pytest.approx(
        (speedup, low, high))
    assert low <= speedup <= high
    assert doc["captchagen_make"]["images_per_s"] == statistics.median(makes)
    md = out.with_suffix(".md").read_text()
    assert f"**{speedup:.2f}x**" in md and f"95% interval {low:.2f}-{high:.2f}" in md
    assert not list(tmp_path.glob(".*.tmp"))
    bad = subprocess.run([sys.executable, str(script), "--repeats", "0", "--out", str(out)],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "must be >= 1" in bad.stderr


def test_train_speed_quotes_a_t_interval_of_its_paired_ratios():
    """benchmarks/train_speed.py: new/old per repeat, geometric mean, 95% t interval (with 3
    repeats 4.30 standard errors, not 2)."""
    import argparse
    import importlib.util
    import math

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "train_speed.py"
    spec = importlib.util.spec_from_file_location("train_speed", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    runs = [{"side": side, "images_per_s": v, "best_val_sequence_accuracy": 0.9, "steps": 10}
            for old, new in ((100.0, 100.0), (100.0, 200.0), (100.0, 400.0))
            for side, v in (("old", old), ("new", new))]
    got = module._summarise(runs, argparse.Namespace(batch_size=64))
    half = 4.303 * math.log(2) / math.sqrt(3)  # logs 0, ln 2, ln 4: sd ln 2
    assert got["ratios"] == [1.0, 2.0, 4.0] and got["ratio"] == pytest.approx(2.0)
    assert (got["ratio_low"], got["ratio_high"]) == pytest.approx(
        (2 * math.exp(-half), 2 * math.exp(half)))
    assert got["images_per_s"] == {"old": 100.0, "new": 200.0} and got["images_seen"] == 640
