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
