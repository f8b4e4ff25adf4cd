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


def test_headline_quotes_each_suite_its_seeds_and_the_transfer_curve(tmp_path):
    import json

    def report(crnn: float, cnn: float, images: int, seeds: int) -> dict:
        rows = [{"model": m, "test_set": "in-distribution (4-6)", "n": 2000,
                 "sequence_accuracy": acc, "ci": [acc - 0.01, acc + 0.005], "seeds": seeds,
                 "seed_mean": acc, "seed_std": 0.002 if seeds > 1 else None}
                for m, acc in (("crnn-small", crnn), ("cnn-fixed-small", cnn))]
        empty = {"rows": []}
        meta = {"environment": {"cpu_cores": 3}, "wall_seconds": 60,
                "suite_config": {"seed": 0, "models": [1, 2], "train": {"images": images}}}
        return {"meta": meta, "tables": {"accuracy": {"rows": rows}, "throughput": empty,
                                         "head_to_head": empty}}

    transfer = {"tables": {
        "transfer": {"rows": [
            {"k": 0, "arm": "pretrained + fine-tuned", "accuracy": 0.25, "ci_low": 0.2,
             "ci_high": 0.3},
            {"k": 100, "arm": "pretrained + fine-tuned", "accuracy": 0.93, "ci_low": 0.91,
             "ci_high": 0.95},
            {"k": 100, "arm": "from scratch", "accuracy": 0.0, "ci_low": 0.0, "ci_high": 0.01},
            {"k": 100, "test": "10 folds", "arm": "pretrained + fine-tuned", "n": 1040,
             "accuracy": 0.99, "ci_low": 0.98, "ci_high": 0.995},
            {"k": 100, "test": "10 folds", "arm": "from scratch", "n": 1040,
             "accuracy": 0.5, "ci_low": 0.47, "ci_high": 0.53}]},
        "transfer_pretraining": {"rows": [{"key": "pretraining seconds", "value": "600.0"},
                                          {"key": "synthetic images", "value": "40000"},
                                          {"key": "synthetic style", "value": "random"}]}}}
    for name, r in (("standard", report(0.99, 0.97, 216_000, 2)),
                    ("quick", report(0.96, 0.07, 22_000, 1)), ("transfer", transfer)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "report.json").write_text(json.dumps(r))
    text = headline(tmp_path)
    assert ("Accuracy, standard suite** ([report](docs/benchmarks/standard/report.md), 2,000 "
            "unseen generated captchas, 216,000 training images per model") in text
    assert "crnn-small 99.00% [98.0–99.5] (2 seeds: 99.00% ± 0.20 points)" in text
    assert "Accuracy, quick suite" in text and "cnn-fixed-small 7.00% [6.0–7.5]." in text
    assert "zero-shot 25.00% [20.0–30.0]; K = 100: 93.00% [91.0–95.0] (from scratch 0.00%" in text
    assert ("K = 100 in 10 folds (1,040 held-out readings pooled): 99.00% [98.0–99.5] "
            "(from scratch 50.00% [47.0–53.0])") in text
    assert "40,000 synthetic `random` captchas, 10 min" in text


def _kept(name: str) -> dict:
    import json

    return json.loads((ROOT / "docs" / "benchmarks" / name).read_text())


def test_kept_suite_reports_were_produced_by_this_code():
    """Every kept suite report names the package code it ran (hash over captchagen, crnn and
    plumbing): it must be this checkout's, from a clean tree. A source change fails this
    until the reports are run again."""
    from crnn.bench.provenance import code_hash

    reports = sorted((ROOT / "docs" / "benchmarks").glob("*/report.json"))
    # quick, quick-loaded, transfer; standard (two hours) when it has been run at this code
    assert {p.parent.name for p in reports} >= {"quick", "quick-loaded", "transfer"}
    for path in reports:
        code = _kept(str(path.relative_to(ROOT / "docs" / "benchmarks")))["meta"]["code"]
        assert code["code_hash"] == code_hash() and not code["dirty"], path


def test_kept_speed_reports_ran_at_a_clean_commit_with_this_package_code():
    """The speed reports record a commit, not a hash: the package sources at that commit must
    be this checkout's (skipped where git or that commit is not at hand)."""
    import shutil
    import subprocess

    import pytest

    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    for name in ("decoding.json", "generator.json", "training_speed.json"):
        commit = _kept(name)["environment"]["git_commit"]
        assert not commit.endswith("+dirty"), name
        if subprocess.run(["git", "cat-file", "-e", f"{commit}^{{commit}}"], cwd=ROOT,
                          capture_output=True).returncode:
            pytest.skip(f"commit {commit} is not in this clone")
        # Suite TOMLs configure other reports (the accuracy suites), not these three.
        same = subprocess.run(["git", "diff", "--quiet", commit, "--", "captchagen", "crnn",
                               "plumbing", ":(exclude)crnn/bench/suites"], cwd=ROOT)
        assert same.returncode == 0, f"{name} ran at {commit}, whose package code differs"


def test_the_loaded_quick_run_reads_exactly_what_the_quiet_one_reads():
    """What the README says of quick-loaded/: the same accuracies on a busy machine, later."""
    quiet, loaded = (_kept(f"{n}/report.json") for n in ("quick", "quick-loaded"))

    def accuracies(r: dict) -> dict:
        return {(a["model"], a["test_set"]): (a["n"], a["sequence_accuracy"])
                for a in r["tables"]["accuracy"]["rows"]}

    assert accuracies(loaded) == accuracies(quiet) and len(accuracies(quiet)) >= 9
    assert loaded["meta"]["wall_seconds"] > quiet["meta"]["wall_seconds"]
