"""The [transfer] section: both arms at every K with the same budget, the test part is every
image not trained on, the synthetic data copies the real set's geometry from the data."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from crnn.bench.stats import wilson
from crnn.bench.suite import TransferPlan, load_suite
from crnn.bench.transfer import k_values, remainder_note
from crnn.data.sources import Samples, folds
from plumbing.errors import UsageError

SUITE = """
name = "transfer-test"
[transfer]
ks = [0, 10, "all"]
split = 0.25
folds = 2
model = "cnn-ctc"
size = "tiny"
pretrain_images = 48
pretrain_epochs = 1
pretrain_batch_size = 16
finetune_steps = 2
batch_size = 8
"""


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """A stand-in "real" set (another look, named by label) and the section run on it."""
    from captchagen.cli import cli
    from crnn.bench.runner import run_suite
    from plumbing.cli import run_cli

    root = tmp_path_factory.mktemp("transfer")
    real = root / "real"
    assert run_cli(cli, "captchagen", ["make", "--out", str(root / "made"), "--n", "40",
                                       "--charset", "chars:abcdef", "--len", "4-5",
                                       "--width", "120", "--height", "40", "--style", "strike",
                                       "--name-by", "label", "--quiet"]) == 0
    (root / "made" / "images").rename(real)
    (root / "suite.toml").write_text(SUITE)
    run_suite(load_suite(str(root / "suite.toml")), root / "out", "cpu", real,
              progress=False, command="test")
    return root / "out"


def test_both_arms_at_every_k_with_the_same_budget(report):
    tables = json.loads((report / "report.json").read_text())["tables"]
    rows = tables["transfer"]["rows"]
    tuned, scratch, cv = "pretrained + fine-tuned", "from scratch", "2 folds"
    assert [(r["k"], r["test"], r["arm"]) for r in rows] == [
        (0, "the rest", tuned), (10, "the rest", tuned), (10, "the rest", scratch),
        (30, "the rest", tuned), (30, "the rest", scratch), (30, cv, tuned), (30, cv, scratch)]
    for r in rows:
        # every image not trained on; the folds pool two held-out parts of 10
        assert r["n"] == (20 if r["test"] == cv else 40 - r["k"])
        assert r["ci_low"] <= r["accuracy"] <= r["ci_high"]
        assert r["correct"] == round(r["accuracy"] * r["n"])
    for k, test in {(r["k"], r["test"]) for r in rows if r["k"]}:
        steps = {r["arm"]: r["steps"] for r in rows if (r["k"], r["test"]) == (k, test)}
        assert steps[scratch] == steps[tuned] >= 2
    cost = {r["key"]: r["value"] for r in tables["transfer_pretraining"]["rows"]}
    assert cost["image size (from the real set)"] == "120x40"
    assert cost["lengths (from the real labels)"] == "4-5"
    assert set(cost["charset (from the real labels)"]) <= set("abcdef")
    assert (report / "transfer.png").is_file()


def test_the_folds_hold_out_disjoint_parts_and_pool_them(report):
    """Fold 0 is the split (the K = "all" run of the table); fold 1 holds out other images."""
    rows = json.loads((report / "report.json").read_text())["tables"]["transfer"]["rows"]
    data = next((report / "cache" / "data").glob("transfer-*/k30")).parent
    first, second = (sorted(p.name for p in (data / d / "test").iterdir())
                     for d in ("k30", "k30-fold1"))
    assert len(first) == len(second) == 10 and not set(first) & set(second)
    for arm in ("pretrained + fine-tuned", "from scratch"):
        one, pooled = (next(r for r in rows if (r["k"], r["test"], r["arm"]) == (30, t, arm))
                       for t in ("the rest", "2 folds"))
        assert one["correct"] <= pooled["correct"] <= one["correct"] + 10


def test_the_misread_held_out_images_are_shown_for_the_largest_k(report):
    from PIL import Image

    rows = json.loads((report / "report.json").read_text())["tables"]["transfer"]["rows"]
    md = (report / "report.md").read_text()
    cv = [r for r in rows if r["test"] == "2 folds"]
    assert "Held-out images misread at K = 30 in 2 folds:" in md
    for r, name in zip(cv, ["pretrained", "scratch"]):
        wrong = r["n"] - r["correct"]
        assert f"{r['arm']}: {wrong}" in md  # the note counts what the sheet shows
        sheet = report / f"misread_k30_cv_{name}.png"
        assert sheet.is_file() == (wrong > 0)
        if wrong:
            assert f"]({sheet.name})" in md
            with Image.open(sheet) as im:  # up to four columns of 120 px tiles, a row per four
                assert im.width > min(wrong, 4) * 120
                assert im.height > ((min(wrong, 24) + 3) // 4) * 40
    both = int(re.search(r"by every arm: (\d+)\.", md).group(1))
    assert 0 <= both <= min(r["n"] - r["correct"] for r in cv)


def test_fine_tuned_runs_record_the_pretrained_checkpoint(report):
    runs = report / "cache" / "runs"
    tuned = [json.loads((p / "config.json").read_text()) for p in runs.glob("transfer-finetune*")]
    scratch = [json.loads((p / "config.json").read_text()) for p in runs.glob("transfer-scratch*")]
    pre = next(runs.glob("transfer-pretrain*"))
    assert len(tuned) == len(scratch) == 3  # K = 10, K = 30 and its second fold
    assert all(Path(c["init"]["checkpoint"]) == (pre / "last.ckpt").resolve() for c in tuned)
    assert all(c["init"] is None for c in scratch)


def test_a_transfer_suite_needs_real_data(tmp_path, cli_run):
    from crnn.bench.cli import cli

    code, _, err = cli_run(cli, "crnn-bench", "run", "--suite", "transfer", "--out",
                           tmp_path / "o")
    assert code == 2 and "--real" in err
    assert load_suite("transfer").transfer.ks[-1] == "all"


def test_wilson_interval():
    lo, hi = wilson(5, 10)
    assert lo == pytest.approx(0.2366, abs=1e-4) and hi == pytest.approx(0.7634, abs=1e-4)
    assert wilson(0, 10)[0] == 0 and wilson(0, 10)[1] == pytest.approx(0.2775, abs=1e-4)
    assert wilson(10, 10)[1] == 1 and wilson(0, 0) == (0.0, 1.0)


def test_k_values_resolve_all_and_clip_to_the_training_part():
    assert k_values(TransferPlan(), 936) == [0, 50, 100, 200, 936]
    assert k_values(TransferPlan(ks=(0, 500, "all")), 300) == [0, 300]


def test_folds_need_k_all():
    with pytest.raises(UsageError, match='add "all" to ks'):
        TransferPlan(ks=(0, 50), folds=10)
    assert TransferPlan(ks=(0, "all"), folds=10).folds == 10


def test_the_fold_note_names_a_shorter_last_part_only_when_there_is_one():
    s = Samples(tuple(Path(f"{i}.png") for i in range(20)), tuple("ab" for _ in range(20)))
    assert remainder_note(folds(s, 0.3, 1, 4)) == "; the last holds out the remaining 2"
    assert remainder_note(folds(s, 0.3, 1, 3)) == ""  # the remainder is not measured
    assert remainder_note(folds(s, 0.25, 1, 4)) == ""  # 20 = 4 x 5: no remainder

