"""crnn-bench: the tiny suite end to end, report tables, Markdown = JSON, compare."""

from __future__ import annotations

import json
import re
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


def test_every_table_exists_with_its_rows_and_columns(report):
    t = _tables(report)
    assert {"accuracy", "by_length", "training", "decoding", "throughput", "head_to_head",
            "environment"} <= set(t)
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
    for name in ("report.md", "report.html", "by_length.png", "training_curves.png"):
        assert (report / name).is_file(), name


def test_numbers_are_sane(report):
    t = _tables(report)
    for r in t["accuracy"]["rows"]:
        for k in ("sequence_accuracy", "char_accuracy", "ned"):
            assert 0 <= r[k] <= 1, (k, r)
        assert r["parameters"] > 0 and r["mmacs"] > 0 and r["size_mb"] > 0
        assert r["train_seconds"] > 0 and r["train_images_per_s"] > 0
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
    assert "training" not in err and "generating" not in err
    assert {p: p.stat().st_mtime for p in (report / "cache").rglob("*.ckpt")} == before


def test_compare_shows_ratios(report, cli_run, tmp_path):
    from crnn.bench.cli import cli

    code, out, err = cli_run(cli, "crnn-bench", "compare", report, report,
                             "-o", tmp_path / "c.md")
    assert code == 0, err
    ratios = re.findall(r"\| ([0-9.]+) \|$", out, flags=re.M)
    assert ratios and all(float(r) == 1.0 for r in ratios)


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
                       "--no-model", "--out", str(out)])
    doc = json.loads(out.with_suffix(".json").read_text())
    assert doc["environment"]["date"] and "--rows 32" in doc["command"]
    greedy = [r for r in doc["rows"] if r["implementation"] == "ours greedy"]
    assert greedy and all(r["sequences_per_s"] > 0 for r in greedy)
    md = out.with_suffix(".md").read_text()
    assert md.startswith("# CTC decoding speed") and doc["command"] in md
    assert not list(out.parent.glob(".*.tmp"))  # written atomically

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
    assert "End to end at batch 32" in out.with_suffix(".md").read_text()


def test_headline_write_replaces_only_the_block(tmp_path, cli_run):
    from crnn.bench.cli import cli

    readme = tmp_path / "README.md"
    readme.write_text("# x\n<!-- headline:start -->\nold\n<!-- headline:end -->\ntail\n")
    docs = Path(__file__).resolve().parents[1] / "docs" / "benchmarks"
    code, _, err = cli_run(cli, "crnn-bench", "headline", "--docs", docs, "--write", readme)
    text = readme.read_text()
    assert code == 0, err
    assert "old" not in text and "**CTC decoding**" in text and text.endswith("tail\n")
    readme.write_text("no markers\n")
    code, _, err = cli_run(cli, "crnn-bench", "headline", "--write", readme)
    assert code == 2 and "headline:start" in err and readme.read_text() == "no markers\n"
