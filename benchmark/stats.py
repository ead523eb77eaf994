"""How sure a number is: 95% intervals of a proportion (Wilson) and of a mean (normal approximation).

The boards print every accuracy with its Wilson interval and every mean PSNR with its interval, and rank two
models equally when their intervals overlap; the gradient-masking checks use the Wilson lower bound to ask
whether a black-box attack succeeds on a share of samples too large to be chance.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

Z95 = 1.959963984540054   # the two-sided 95% quantile of the standard normal

__all__ = ["Z95", "intervals_overlap", "mean_interval", "wilson_interval"]


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion successes / n (Wilson 1927); (0, 1) when n is 0."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def mean_interval(values: Sequence[float], z: float = Z95) -> Optional[tuple[float, float, float]]:
    """(mean, low, high): the mean of `values` and its normal-approximation 95% interval (None when empty)."""
    vals = [float(v) for v in values if v is not None and math.isfinite(v)]
    if not vals:
        return None
    n = len(vals)
    mean = math.fsum(vals) / n
    if n < 2:
        return mean, mean, mean
    var = math.fsum((v - mean) ** 2 for v in vals) / (n - 1)
    half = z * math.sqrt(var / n)
    return mean, mean - half, mean + half


def intervals_overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """Whether two closed intervals (low, high) share a point."""
    return a[0] <= b[1] and b[0] <= a[1]
