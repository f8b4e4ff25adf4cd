"""Styles: deterministic per (seed, index) whatever the worker count, never clipped, and
fonts that lack a symbol of the charset refused up front."""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path

import numpy as np
import pytest

from captchagen import CaptchaSpec, NoiseSpec, parse_charset, render_with_info, rng_for
from captchagen.effects import random_look
from captchagen.fonts import font_family, installed_fonts, select_fonts
from captchagen.render import MARGIN
from captchagen.style import STYLE_PRESETS, StyleSpec
from plumbing.errors import UsageError
from tests.helpers import tree_digest

SMALL = ["--len", "4-6", "--charset", "alnum", "--quiet"]


@pytest.mark.parametrize("style", ["random", "ghost"])
def test_a_style_writes_the_same_bytes_whatever_the_worker_count(tmp_path, gen, style):
    for workers in (1, 2):
        code, _, err = gen("make", "--n", 16, "--workers", workers, "--style", style,
                           "--out", tmp_path / f"w{workers}", *SMALL)
        assert code == 0, err
    one = tree_digest(tmp_path / "w1")
    # 16 images, dataset.json, manifest.csv, metadata.csv, gt.txt
    assert len(one) == 16 + 4 and tree_digest(tmp_path / "w2") == one
    spec = json.loads((tmp_path / "w1" / "dataset.json").read_text())["spec"]
    assert CaptchaSpec.from_dict(spec).style == STYLE_PRESETS[style]


def test_random_looks_differ_per_image_but_not_per_draw():
    spec = CaptchaSpec(charset="abc", style=STYLE_PRESETS["random"])
    a = [np.asarray(render_with_info("abcab", spec, rng_for(0, i, "image")).image)
         for i in range(6)]
    b = np.asarray(render_with_info("abcab", spec, rng_for(0, 0, "image")).image)
    assert np.array_equal(a[0], b)
    assert len({x.tobytes() for x in a}) == 6


def _clean(style: StyleSpec, noise: NoiseSpec) -> tuple[StyleSpec, NoiseSpec]:
    """The look without the marks that are not text (lines, dots, backdrop, speckle), so that
    any ink left is the text's: ghosts, warps, jitter and hollow glyphs stay."""
    style = dataclasses.replace(style, lines=0, speckle=0.0, binarize=False, backdrop="plain",
                                colors="color", randomize=False)
    noise = dataclasses.replace(noise, dots=0, curves=0, smooth=False, blur=0.0)
    return style, noise


def _looks() -> list[tuple[str, StyleSpec, NoiseSpec]]:
    looks = [(name, *_clean(s, NoiseSpec())) for name, s in STYLE_PRESETS.items()
             if not s.randomize]
    rng = random.Random(4)
    looks += [(f"random-{i}", *_clean(*random_look(rng, NoiseSpec()))) for i in range(25)]
    return looks


@pytest.mark.parametrize("charset,width,height,length", [("alnum", 160, 60, 6),
                                                         ("kaggle19", 200, 50, 5)])
def test_every_style_renders_without_clipping_at_the_longest_length(charset, width, height,
                                                                     length):
    symbols = parse_charset(charset)
    fonts = select_fonts(["all"], symbols)
    texts = [c * length for c in "WMmw" if c in symbols]
    pick = random.Random(2)
    texts += ["".join(pick.choice(symbols) for _ in range(length)) for _ in range(6)]
    for name, style, noise in _looks():
        spec = CaptchaSpec(charset=symbols, min_len=length, max_len=length, width=width,
                           height=height, noise=noise, background=(255, 255, 255),
                           text_color=(0, 0, 0), fonts=fonts, style=style)
        for i, text in enumerate(texts):
            r = render_with_info(text, spec, rng_for(0, i, "image"))
            ink = np.asarray(r.image.convert("L")) < 250
            rows, cols = np.nonzero(ink)
            assert rows.size > 0, (name, text)
            assert rows.min() >= MARGIN and rows.max() < height - MARGIN, (name, text)
            assert cols.min() >= MARGIN and cols.max() < width - MARGIN, (name, text)


def test_every_style_draws_at_its_size_in_its_mode():
    for name, style in STYLE_PRESETS.items():
        for grayscale in (False, True):
            spec = CaptchaSpec(charset="abc", width=120, height=40, grayscale=grayscale,
                               style=style)
            im = render_with_info("abca", spec, rng_for(1, 0, "image")).image
            assert im.size == (120, 40) and im.mode == ("L" if grayscale else "RGB"), name
            if style.binarize:
                assert set(np.unique(np.asarray(im))) <= {0, 255}


def test_installed_font_families():
    fonts = [Path(f).name for f in installed_fonts()]
    assert "DroidSansMono.ttf" in fonts and "cmr10.ttf" in fonts
    assert any(f.startswith("STIX") for f in fonts) and any(f.startswith("DejaVu") for f in fonts)
    assert "cmsy10.ttf" not in fonts  # maps letters to math symbols
    assert {Path(f).name for f in font_family("dejavuserif")} >= {"DejaVuSerif.ttf"}
    alnum = select_fonts(["all"], parse_charset("alnum"))
    assert len(alnum) > 15 and not any("SizOne" in f for f in alnum)  # symbol-only fonts left out


@pytest.mark.parametrize("args", [(), ("all",), ("dejavu",)])
def test_a_font_missing_a_glyph_is_refused_naming_the_symbols(args):
    with pytest.raises(UsageError, match="日本"):
        select_fonts(args, "ab日本")


def test_cli_refuses_missing_glyphs_and_knobs_with_random(tmp_path, gen):
    code, _, err = gen("make", "--out", tmp_path / "a", "--n", 2, "--charset", "chars:ab日本",
                       "--quiet")
    assert code == 2 and "日本" in err and err.count("\n") == 1
    assert not (tmp_path / "a").exists()
    code, _, err = gen("make", "--out", tmp_path / "b", "--n", 2, "--style", "random",
                       "--lines", "2", "--quiet")
    assert code == 2 and "--lines" in err
    code, _, err = gen("make", "--out", tmp_path / "c", "--n", 3, "--style", "strike",
                       "--lines", "4", "--fonts", "dejavusans", "--quiet")
    assert code == 0, err
    info = json.loads((tmp_path / "c" / "dataset.json").read_text())
    assert info["spec"]["style"]["lines"] == 4 and info["spec"]["style"]["colors"] == "grey"
    assert {f["name"] for f in info["font_files"]} >= {"DejaVuSans.ttf", "DejaVuSansMono.ttf"}


def test_preview_shows_every_style(tmp_path, gen):
    for name in STYLE_PRESETS:
        code, _, err = gen("preview", "--style", name, "--n", 4, "-o", tmp_path / f"{name}.png")
        assert code == 0 and (tmp_path / f"{name}.png").is_file(), err


def test_a_spec_without_a_style_reads_as_todays_look():
    d = CaptchaSpec(charset="abc").to_dict()
    del d["style"]
    assert CaptchaSpec.from_dict(d).style == StyleSpec() == STYLE_PRESETS["captcha"]
