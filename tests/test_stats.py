"""crnn.bench.stats against published and hand-computed values."""

from __future__ import annotations

import math

import pytest

from crnn.bench.stats import mcnemar_exact, mean_std, overlap, ratio_interval, t975, wilson


@pytest.mark.parametrize("k, n, lo, hi", [
    (8, 10, 0.4902, 0.9433),  # the usual textbook example
    (0, 10, 0.0, 0.2775),
    (10, 10, 0.7225, 1.0),
    # Newcombe (1998), Statistics in Medicine 17:857, Table I, method 3 (Wilson, no correction)
    (81, 263, 0.2553, 0.3662),
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0, 0.1611),
    (1, 29, 0.0061, 0.1718),
])
def test_wilson_matches_published_intervals(k, n, lo, hi):
    got = wilson(k, n)
    assert got == pytest.approx((lo, hi), abs=5e-5)


def test_wilson_edges():
    assert wilson(0, 0) == (0.0, 1.0)
    assert wilson(0, 5)[0] == 0.0 and wilson(5, 5)[1] == 1.0
    with pytest.raises(ValueError):
        wilson(3, 2)


@pytest.mark.parametrize("b, c, p", [
    (0, 0, 1.0),
    (1, 5, 2 * (1 + 6) / 2**6),  # 0.21875: 2 * P(X <= 1), X ~ Bin(6, 1/2)
    (0, 6, 2 / 2**6),  # 0.03125
    (2, 8, 2 * (1 + 10 + 45) / 2**10),  # 0.109375, as scipy.stats.binomtest(2, 10)
    (8, 2, 2 * (1 + 10 + 45) / 2**10),  # symmetric
    (5, 5, 1.0),  # the tail doubled exceeds 1: capped
])
def test_mcnemar_exact_matches_hand_computed_binomial_tails(b, c, p):
    assert mcnemar_exact(b, c) == pytest.approx(p, rel=1e-12)


def test_mcnemar_large_counts_agree_with_the_normal_approximation():
    # b=30, c=60: chi-square (|b-c|-1)^2/(b+c) = 9.34 -> p ~ 0.0022; the exact test is close.
    assert 0.001 < mcnemar_exact(30, 60) < 0.004


def test_mean_std_and_overlap():
    assert mean_std([1.0]) == (1.0, None)
    m, s = mean_std([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0])
    assert m == 5.0 and s == pytest.approx(2.138089935, rel=1e-9)  # sample std (n - 1)
    assert overlap((0.1, 0.3), (0.3, 0.5)) and not overlap((0.1, 0.2), (0.3, 0.5))


@pytest.mark.parametrize("df, t", [(1, 12.706), (2, 4.303), (4, 2.776), (30, 2.042),
                                   (40, 2.021), (60, 2.000), (120, 1.980)])
def test_t975_matches_the_table(df, t):
    assert t975(df) == pytest.approx(t, abs=1.5e-3)


def test_ratio_interval_is_a_t_interval_on_the_logs():
    # logs 0, ln 2, ln 4: mean ln 2 (ratio 2), sd ln 2, half-width 4.303 ln 2 / sqrt 3
    r, lo, hi = ratio_interval([1.0, 2.0, 4.0])
    half = 4.303 * math.log(2) / math.sqrt(3)
    assert r == pytest.approx(2.0)
    assert (lo, hi) == pytest.approx((2 * math.exp(-half), 2 * math.exp(half)))
    assert ratio_interval([1.5, 1.5]) == pytest.approx((1.5, 1.5, 1.5))
    assert math.isnan(ratio_interval([3.0])[1])
    with pytest.raises(ValueError):
        ratio_interval([1.0, 0.0])
