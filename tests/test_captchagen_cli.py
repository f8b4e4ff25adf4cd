"""captchagen's command line: bad input is one line and exit 2, leaving nothing behind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from captchagen.cli import cli


@pytest.fixture
def font_dir(tmp_path):
    from captchagen.fonts import default_font

    d = tmp_path / "fonts"
    d.mkdir()
    (d / "droid.ttf").write_bytes(Path(default_font()).read_bytes())
    return d


BAD = [
    (["--n", "0"], "--n"),
    (["--len", "6-4"], "empty"),
    (["--len", "x"], "not N or A-B"),
    (["--len", "0"], ">= 1"),
    (["--charset", "digitz"], "unknown charset"),
    (["--charset", ""], "empty"),
    (["--fonts", "/no/such/font.ttf"], "not found"),
    (["--fonts", "NOT_A_FONT"], "not a usable font"),
    (["--len", "15"], "--width"),
    (["--font-sizes", "big"], "--font-sizes"),
    (["--shard", "4/3"], "--shard"),
    (["--background", "blue-ish"], "colour"),
    (["--workers", "0"], "--workers"),
    (["--warp", "0.9,0.1"], "warp"),
    (["--no-such-option"], "no such option"),
]


@pytest.mark.parametrize("args,message", BAD)
def test_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path, cli_run, args, message):
    args = [str(tmp_path / "junk.ttf") if a == "NOT_A_FONT" else a for a in args]
    (tmp_path / "junk.ttf").write_text("not a font")
    out = tmp_path / "out"
    code, _, err = cli_run(cli, "captchagen", "make", "--out", out, "--quiet", *args)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("captchagen: error:")
    assert message.lower() in err.lower()
    assert not out.exists()


def test_existing_output_is_refused_without_resume_or_overwrite(tmp_path, gen):
    (tmp_path / "keep.txt").write_text("x")
    code, _, err = gen("make", "--out", tmp_path, "--n", 3)
    assert code == 2 and "--resume" in err and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


def test_fonts_from_a_directory(tmp_path, gen, font_dir):
    code, _, err = gen("make", "--out", tmp_path / "d", "--n", 4, "--fonts", font_dir, "--quiet")
    assert code == 0, err
    info = json.loads((tmp_path / "d" / "dataset.json").read_text())
    assert [f["name"] for f in info["font_files"]] == ["droid.ttf"]


def test_preview_and_stats(tmp_path, gen):
    code, out, err = gen("preview", "--n", 6, "-o", tmp_path / "grid.png", "--noise", "light")
    assert code == 0, err
    from PIL import Image

    with Image.open(tmp_path / "grid.png") as im:
        assert im.width > 3 * 160
    gen("make", "--out", tmp_path / "d", "--n", 40, "--len", "4-5", "--quiet")
    code, out, _ = gen("stats", tmp_path / "d", "--json")
    stats = json.loads(out)
    assert stats["images"] == 40
    assert {r["length"] for r in stats["lengths"]} <= {4, 5}
    assert sum(r["count"] for r in stats["chars"]) == sum(
        r["length"] * r["count"] for r in stats["lengths"])
    code, out, _ = gen("stats", tmp_path / "d")
    assert code == 0 and "length" in out and "40 images" in out
    code, _, err = gen("preview", "--from", tmp_path / "d", "--n", 4, "-o", tmp_path / "p.png")
    assert code == 0, err


def test_stats_of_a_non_dataset_is_a_usage_error(tmp_path, gen):
    code, _, err = gen("stats", tmp_path)
    assert code == 2 and "not a captchagen dataset" in err
