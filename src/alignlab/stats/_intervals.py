"""Interval maths for proportions. Pure functions; no model, no I/O."""

from __future__ import annotations

import math
from dataclasses import dataclass

Z95 = 1.959963984540054  # two-sided 95% normal quantile


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float] | tuple[None, None]:
    """Wilson score interval for k successes in n trials; (None, None) when n == 0."""
    if n < 0 or k < 0 or k > n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        return (None, None)
    p = k / n
    z2 = z * z
    denom = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    # At the edges the bound is exactly 0 or 1; avoid float residue such as 0.9999999999999999.
    low = 0.0 if k == 0 else max(0.0, centre - half)
    high = 1.0 if k == n else min(1.0, centre + half)
    return (low, high)


@dataclass(frozen=True)
class Difference:
    """p_a - p_b with a 95% Newcombe interval and two tests of p_a == p_b."""

    diff: float | None
    ci_low: float | None
    ci_high: float | None
    z: float | None
    p_value: float | None  # two-sided pooled z-test
    p_fisher: float | None  # two-sided Fisher exact test (trustworthy for small counts)


def newcombe_difference(k_a: int, n_a: int, k_b: int, n_b: int, z: float = Z95) -> tuple:
    """Newcombe's hybrid score interval (method 10) for p_a - p_b."""
    if n_a == 0 or n_b == 0:
        return (None, None, None)
    p_a, p_b = k_a / n_a, k_b / n_b
    l_a, u_a = wilson(k_a, n_a, z)
    l_b, u_b = wilson(k_b, n_b, z)
    d = p_a - p_b
    low = d - math.sqrt((p_a - l_a) ** 2 + (u_b - p_b) ** 2)
    high = d + math.sqrt((u_a - p_a) ** 2 + (p_b - l_b) ** 2)
    return (d, max(-1.0, low), min(1.0, high))


def two_proportion_z(k_a: int, n_a: int, k_b: int, n_b: int) -> tuple[float | None, float | None]:
    """Pooled two-proportion z-test; returns (z, two-sided p). p is 1.0 when both rates are 0 or 1."""
    if n_a == 0 or n_b == 0:
        return (None, None)
    pooled = (k_a + k_b) / (n_a + n_b)
    var = pooled * (1 - pooled) * (1 / n_a + 1 / n_b)
    if var == 0:
        return (0.0, 1.0)
    zval = (k_a / n_a - k_b / n_b) / math.sqrt(var)
    return (zval, math.erfc(abs(zval) / math.sqrt(2)))


def fisher_exact(k_a: int, n_a: int, k_b: int, n_b: int) -> float | None:
    """Two-sided Fisher exact p for the 2×2 table [[k_a, n_a-k_a], [k_b, n_b-k_b]]."""
    if n_a == 0 or n_b == 0:
        return None
    total_k = k_a + k_b
    n = n_a + n_b
    lo, hi = max(0, total_k - n_b), min(total_k, n_a)

    def log_pmf(x: int) -> float:
        return (
            _log_comb(n_a, x) + _log_comb(n_b, total_k - x) - _log_comb(n, total_k)
        )

    observed = log_pmf(k_a)
    # Sum the probabilities of tables at most as likely as the observed one (relative tolerance
    # guards against float ties).
    p = 0.0
    for x in range(lo, hi + 1):
        lp = log_pmf(x)
        if lp <= observed + 1e-7:
            p += math.exp(lp)
    return min(1.0, p)


def _log_comb(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def compare_proportions(k_a: int, n_a: int, k_b: int, n_b: int) -> Difference:
    d, low, high = newcombe_difference(k_a, n_a, k_b, n_b)
    zval, p = two_proportion_z(k_a, n_a, k_b, n_b)
    return Difference(d, low, high, zval, p, fisher_exact(k_a, n_a, k_b, n_b))
