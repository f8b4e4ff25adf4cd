"""How sure a measured figure is: Wilson intervals, the exact McNemar test, mean and std,
and the interval of a speed ratio measured in paired rounds.

Pure Python (no scipy): a benchmark report quotes these next to every accuracy and ratio.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

Z95 = 1.959963984540054  # the standard normal's 97.5% quantile: a two-sided 95% interval

# Student's t 97.5% quantiles for 1-30 degrees of freedom (any statistics table): with the 3-7
# rounds a benchmark affords, 2 standard errors would claim far more certainty than there is.
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
         2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
         2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion ``k / n`` (95% by default).

    Unlike the normal approximation it stays inside [0, 1] and is not empty at 0/n or n/n.
    With ``n == 0`` nothing is known: (0, 1).
    """
    if not 0 <= k <= n:
        raise ValueError(f"wilson: need 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        return 0.0, 1.0
    p = k / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    # At k == 0 or k == n one bound is exactly 0 or 1; rounding must not move it.
    lo = 0.0 if k == 0 else max(0.0, centre - half)
    hi = 1.0 if k == n else min(1.0, centre + half)
    return lo, hi


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value for paired outcomes.

    ``b``: pairs where only the first model is right, ``c``: only the second. Under the null
    hypothesis each discordant pair goes either way with probability 1/2, so the p-value is
    the two-sided binomial tail ``min(1, 2 * P(X <= min(b, c)))`` with X ~ Bin(b + c, 1/2).
    """
    if b < 0 or c < 0:
        raise ValueError(f"mcnemar_exact: counts must be >= 0, got b={b}, c={c}")
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(b, c) + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def mean_std(values: Sequence[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (n - 1); the std is None for fewer than 2 values."""
    if not values:
        raise ValueError("mean_std: no values")
    m = sum(values) / len(values)
    if len(values) < 2:
        return m, None
    return m, math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))


def overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """Whether two intervals share a point (a difference inside the noise)."""
    return a[0] <= b[1] and b[0] <= a[1]


def t975(df: int) -> float:
    """Student's t 97.5% quantile (a two-sided 95% interval) for ``df`` degrees of freedom."""
    if df < 1:
        raise ValueError(f"t975: need df >= 1, got {df}")
    if df <= len(_T975):
        return _T975[df - 1]
    z = Z95  # Cornish-Fisher: within 1e-3 of the exact quantile beyond 30 degrees of freedom
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


def ratio_interval(ratios: Sequence[float]) -> tuple[float, float, float]:
    """The geometric mean of speed ratios from paired rounds, with its 95% t interval.

    Each ratio compares two contenders timed in the same round, so a slow spell of the
    machine cancels in it; rounds differ by noise that is multiplicative, hence the mean
    and the interval are taken on the logarithms. One ratio gives no interval (NaN bounds).
    """
    if not ratios or any(not x > 0 for x in ratios):
        raise ValueError(f"ratio_interval: need positive ratios, got {list(ratios)}")
    logs = [math.log(x) for x in ratios]
    m, sd = mean_std(logs)
    if sd is None:
        return math.exp(m), math.nan, math.nan
    half = t975(len(logs) - 1) * sd / math.sqrt(len(logs))
    return math.exp(m), math.exp(m - half), math.exp(m + half)
