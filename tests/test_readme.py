"""The README's promises: its test command is what CI runs; its figures come from reports."""

from __future__ import annotations

from pathlib import Path

from crnn.bench.headline import END, START, headline

ROOT = Path(__file__).resolve().parents[1]


def test_readme_opens_with_the_two_commands_and_ci_runs_the_test_one():
    lines = (ROOT / "README.md").read_text().splitlines()[:12]
    commands = [line for line in lines if line.startswith("python3 -m venv")]
    assert len(commands) == 2
    assert "crnn-bench run" in commands[0] and "pytest" in commands[1]
    assert commands[1] in (ROOT / ".ci" / "run").read_text()


def test_readme_headline_is_rendered_from_the_kept_reports():
    readme = (ROOT / "README.md").read_text()
    block = readme.split(START, 1)[1].split(END, 1)[0].strip()
    assert block == headline(ROOT / "docs" / "benchmarks").strip()
    assert "%" in block or "images/s" in block  # it quotes measured figures


def test_headline_reports_both_runs_and_the_margin(tmp_path):
    import json

    def report(crnn: float, cnn: float, seed: int) -> dict:
        rows = [{"model": m, "test_set": "in-distribution (4-6)", "n": 2000,
                 "sequence_accuracy": acc} for m, acc in (("crnn-small", crnn),
                                                          ("cnn-fixed-small", cnn))]
        empty = {"rows": []}
        meta = {"environment": {"cpu_cores": 3}, "suite_config": {"seed": seed}}
        return {"meta": meta, "tables": {"accuracy": {"rows": rows}, "throughput": empty,
                                         "head_to_head": empty}}

    for name, r in (("standard", report(0.99, 0.97, 0)),
                    ("standard-seed1", report(0.985, 0.975, 7))):
        (tmp_path / name).mkdir()
        (tmp_path / name / "report.json").write_text(json.dumps(r))
    text = headline(tmp_path)
    assert "2,000 unseen generated captchas, 3 CPU cores" in text  # from the report
    assert "crnn-small 99.00%, cnn-fixed-small 97.00%" in text
    assert "second run, seed 7" in text and "crnn-small 99.00% then 98.50%" in text
    assert "largest spread 0.50 points" in text and "by 1.00 points or more" in text
