"""Planning: the minimum detectable effect, about how many examples would settle an inconclusive verdict, and the
sample sizes of paired and unpaired non-inferiority tests of proportions."""

from __future__ import annotations

import math

from scipy import special

from editguard.statistics.common import FailRule, _check_alpha, _z


def minimum_detectable_effect(n: int, variance: float, alpha: float = 0.05, power: float = 0.8) -> float:
    """``(z_{1-alpha} + z_power) * sqrt(variance / n)``: how far the true difference must lie beyond a threshold
    for a one-sided level-alpha test on n paired examples to cross it with probability ``power``.

    ``variance`` is the per-example variance of the paired differences (for 0/1 outcomes: the discordant rate
    minus the squared difference).  Under the margin rule a true drop of ``tolerance + MDE`` FAILs, and a true
    difference of ``-tolerance + MDE`` PASSes, with probability about ``power``.
    """
    _check_alpha(alpha)
    if n < 1 or variance < 0 or not 0.0 < power < 1.0:
        raise ValueError(f"need n >= 1, variance >= 0 and power in (0, 1); got {n}, {variance}, {power}")
    return (_z(alpha) + float(special.ndtri(power))) * math.sqrt(variance / n)


def examples_needed(
    n: int, lower: float, upper: float, point: float, tolerance: float, rule: FailRule = FailRule.MARGIN
) -> int | None:
    """About how many examples would settle the verdict, if the point estimate stayed where it is.

    The bound facing the threshold is taken to approach the point as 1/sqrt(n), so the answer is
    ``n * (bound distance / threshold distance)^2``, at least n.  None when the point sits on the threshold.
    """
    if point > -tolerance:
        distance, half_width = point + tolerance, point - lower
    elif point < -tolerance:
        distance, half_width = -point - (tolerance if rule is FailRule.MARGIN else 0.0), upper - point
    else:
        return None
    return max(n, math.ceil(n * (half_width / distance) ** 2 - 1e-9))  # 1e-9: float noise at whole numbers


def unpaired_sample_size(
    base_rate: float, edited_rate: float, tolerance: float, alpha: float = 0.05, power: float = 0.8
) -> int:
    """Examples per group for an unpaired non-inferiority comparison of two proportions (independent samples).

    ``n = (z_{1-alpha} + z_power)^2 * (p_b (1 - p_b) + p_e (1 - p_e)) / (p_e - p_b + tolerance)^2``
    (Chow, Shao & Wang 2008, section 4.2): the n at which the one-sided level-alpha test of H0: p_e - p_b <=
    -tolerance rejects with probability ``power`` when the true rates are ``base_rate`` and ``edited_rate``.
    """
    _check_alpha(alpha)
    gap = edited_rate - base_rate + tolerance
    if gap <= 0:
        raise ValueError("the planned edited rate must be above base_rate - tolerance for the test to have power")
    spread = base_rate * (1 - base_rate) + edited_rate * (1 - edited_rate)
    return math.ceil((_z(alpha) + float(special.ndtri(power))) ** 2 * spread / gap**2)


def paired_sample_size(
    discordant_rate: float, difference: float, tolerance: float, alpha: float = 0.05, power: float = 0.8
) -> int:
    """Paired examples for the same test when the discordant rate is known: the variance of a paired difference
    is ``discordant_rate - difference^2`` in place of the unpaired spread (a Wald approximation; cf. Nam 1997)."""
    _check_alpha(alpha)
    gap = difference + tolerance
    if gap <= 0:
        raise ValueError("the planned difference must be above -tolerance for the test to have power")
    variance = max(discordant_rate - difference**2, 0.0)
    return max(1, math.ceil((_z(alpha) + float(special.ndtri(power))) ** 2 * variance / gap**2))
