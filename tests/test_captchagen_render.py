"""Rendering: reproducible, never clipped, never squashed; charsets and specs."""

from __future__ import annotations

import random

import numpy as np
import pytest

from captchagen import CaptchaSpec, NoiseSpec, parse_charset, render, render_with_info, rng_for
from captchagen.charsets import drop_confusable
from captchagen.render import MARGIN, check_fit
from captchagen.sampling import label_for
from plumbing.errors import UsageError


def test_same_rng_same_pixels():
    spec = CaptchaSpec(charset="abc")
    a = np.asarray(render("abcab", spec, rng_for(0, 7, "image")))
    b = np.asarray(render("abcab", spec, rng_for(0, 7, "image")))
    c = np.asarray(render("abcab", spec, rng_for(0, 8, "image")))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


CLEAN = NoiseSpec(dots=0, curves=0, rotation=30, warp=(0.1, 0.3), overlap=0.25, smooth=False)


@pytest.mark.parametrize("charset,width,height,length", [
    ("alnum", 160, 60, 6), ("ALNUM", 160, 60, 6), ("kaggle19", 200, 50, 5), ("digits", 64, 32, 3),
])
def test_no_glyph_is_clipped_at_the_longest_length(charset, width, height, length):
    """With plain colours and no noise, ink never reaches the canvas margin: a clipped glyph
    would have to cross it. Widest symbols and random texts, many draws."""
    symbols = parse_charset(charset)
    spec = CaptchaSpec(charset=symbols, min_len=length, max_len=length, width=width,
                       height=height, noise=CLEAN, background=(255, 255, 255),
                       text_color=(0, 0, 0))
    check_fit(spec)
    texts = [c * length for c in "WMm@" if c in symbols]
    pick = random.Random(1)
    texts += ["".join(pick.choice(symbols) for _ in range(length)) for _ in range(150)]
    for i, text in enumerate(texts):
        r = render_with_info(text, spec, rng_for(0, i, "image"))
        ink = np.asarray(r.image.convert("L")) < 250
        rows, cols = np.nonzero(ink)
        assert rows.size > 0
        assert rows.min() >= MARGIN and rows.max() < height - MARGIN, text
        assert cols.min() >= MARGIN and cols.max() < width - MARGIN, text
        left, top, right, _ = r.text_box
        assert cols.min() >= left and cols.max() < right and rows.min() >= top
        # Fitting scales the line uniformly, never squashing it in one direction, and never by
        # more than the spread of the requested sizes allows (rotation aside).
        assert r.scale >= 0.6 * spec.font_sizes[0] / spec.font_sizes[-1], (text, r.scale)


def test_default_look_keeps_text_legible_size():
    spec = CaptchaSpec(charset=parse_charset("alnum"))
    scales = [render_with_info(label_for(spec, 0, i), spec, rng_for(0, i, "image")).scale
              for i in range(200)]
    assert np.median(scales) > 0.9 and min(scales) > 0.6


def test_text_that_cannot_fit_is_refused_before_drawing():
    spec = CaptchaSpec(charset=parse_charset("alnum"), min_len=4, max_len=12)
    with pytest.raises(UsageError, match="--width"):
        check_fit(spec)
    with pytest.raises(UsageError, match="--height"):
        check_fit(CaptchaSpec(charset="abc", min_len=2, max_len=2, height=20, font_sizes=(40,)))


def test_presets_and_confusables():
    assert parse_charset("kaggle19") == "2345678bcdefgmnpwxy"
    assert parse_charset("ALNUM") == "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    assert parse_charset("chars:xyz") == "xyz" == parse_charset("xyz")
    alnum = parse_charset("alnum", exclude_confusable=True)
    for gone in "0o1li":
        assert gone not in alnum
    assert "c" in alnum and "a" in alnum
    assert drop_confusable("0123456789") == "0123456789"  # no two look-alikes among digits


@pytest.mark.parametrize("value,message", [
    ("", "empty"), ("digit", "did you mean 'digits'"), ("aab", "repeats"), ("chars:", "empty"),
    ("a b", "unusable"),
])
def test_bad_charsets(value, message):
    with pytest.raises(UsageError, match=message):
        parse_charset(value)


def test_spec_round_trips_through_json_dict():
    spec = CaptchaSpec(charset="abc", min_len=2, max_len=3, background=(1, 2, 3), grayscale=True)
    assert CaptchaSpec.from_dict(spec.to_dict()) == spec


def test_default_font_sizes_follow_the_height():
    assert CaptchaSpec(charset="a").font_sizes == (42, 50, 56)
    assert CaptchaSpec(charset="a", height=30).font_sizes == (21, 25, 28)
