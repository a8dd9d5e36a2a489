"""Binary (0/1) outcomes: flips, McNemar, and the corrected score test and interval for the paired difference.

Tango's (1998) score test, with a continuity and a skewness correction (after Gart & Nam 1990 and Laud 2017) so that
one-sided bounds keep their level with few discordant pairs; ``PairedScore`` gives the bounds and the p-values they
invert.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import optimize, special
from scipy import stats as scipy_stats

from editguard.statistics.common import (
    FloatArray,
    Interval,
    Outcomes,
    _check_alpha,
    _check_paired,
    _check_tolerance,
    _z,
)

_HUGE = 1e12  # stands in for an infinite score statistic, so root finders see finite values
_MAX_SKEW_TERM = 0.1  # the largest skewness / 6 the Cornish-Fisher correction trusts


def _binary_arrays(base: Outcomes, edited: Outcomes) -> tuple[FloatArray, FloatArray]:
    _check_paired(base, edited)
    base_array, edited_array = np.asarray(base, dtype=float), np.asarray(edited, dtype=float)
    for name, values in (("base", base_array), ("edited", edited_array)):
        if values.ndim != 1 or not np.isin(values, (0.0, 1.0)).all():
            raise ValueError(f"binary outcomes must be a flat sequence of 0 and 1; the {name} outcomes are not")
    return base_array, edited_array


@dataclass(frozen=True)
class PairedSummary:
    """Counts of a paired comparison of binary outcomes on n examples."""

    n: int
    negative_flips: int  # base right, edited wrong
    positive_flips: int  # base wrong, edited right
    base_mean: float
    edited_mean: float

    @property
    def negative_flip_rate(self) -> float:
        return self.negative_flips / self.n

    @property
    def positive_flip_rate(self) -> float:
        return self.positive_flips / self.n

    @property
    def difference(self) -> float:
        """Mean edited minus mean base, computed from the flips so it is exact."""
        return (self.positive_flips - self.negative_flips) / self.n


def paired_summary(base: Outcomes, edited: Outcomes) -> PairedSummary:
    """Count the flips between aligned 0/1 outcomes of the base and the edited model."""
    base_array, edited_array = _binary_arrays(base, edited)
    return PairedSummary(
        n=len(base_array),
        negative_flips=int(np.sum((base_array == 1) & (edited_array == 0))),
        positive_flips=int(np.sum((base_array == 0) & (edited_array == 1))),
        base_mean=float(base_array.mean()),
        edited_mean=float(edited_array.mean()),
    )


def mcnemar_exact(negative_flips: int, positive_flips: int) -> float:
    """Two-sided exact McNemar p-value: a binomial(discordant, 1/2) test on the flips; 1 with no flips."""
    discordant = negative_flips + positive_flips
    if discordant == 0:
        return 1.0
    tail = scipy_stats.binom.cdf(min(negative_flips, positive_flips), discordant, 0.5)
    return min(1.0, 2.0 * float(tail))


def _larger_root(a: FloatArray, b: FloatArray, c: FloatArray) -> FloatArray:
    """The larger root of a x^2 + b x + c with a > 0, in the form that does not cancel when b > 0."""
    root = np.sqrt(np.maximum(b * b - 4.0 * a * c, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        stable = np.where(b > 0, -2.0 * c / (b + root), (root - b) / (2.0 * a))
    return np.nan_to_num(stable, nan=0.0)


def _constrained_flip_rates(
    positive: FloatArray, negative: FloatArray, n: FloatArray, difference: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Maximum-likelihood positive and negative flip probabilities given that they differ by ``difference``.

    The negative flip rate q solves 2n q^2 + (-(b + c) + (2n - b + c) d) q - c d (1 - d) = 0 (Tango 1998).
    """
    linear = -(positive + negative) + (2.0 * n - positive + negative) * difference
    q = _larger_root(2.0 * n, linear, -negative * difference * (1.0 - difference))
    q = np.maximum(q, np.maximum(0.0, -difference))  # both are probabilities: q >= 0 and q + difference >= 0
    return q + difference, q


def _cornish_fisher(z: FloatArray, skew_term: FloatArray) -> FloatArray:
    """The z' with z' + a (z'^2 - 1) = z: maps a statistic whose distribution has skewness 6a onto the normal scale.

    ``a`` is capped at 0.1 in size: the expansion is only good for moderate skewness, and the cap keeps z' monotone
    in z out to |z'| = 5, beyond any level the gate uses (larger skewness comes from one or two expected flips).
    """
    skew_term = np.clip(skew_term, -_MAX_SKEW_TERM, _MAX_SKEW_TERM)
    discriminant = np.maximum(1.0 + 4.0 * skew_term * (z + skew_term), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        corrected = np.where(np.abs(skew_term) > 1e-12, (np.sqrt(discriminant) - 1.0) / (2.0 * skew_term), z)
    return np.nan_to_num(corrected, nan=0.0)


def paired_score_statistic(
    positive_flips: Any, negative_flips: Any, n: Any, difference: Any, continuity: float = 0.0
) -> FloatArray:
    """Corrected score statistic for H0: the true ``edited - base`` equals ``difference``; broadcasts over arrays.

    Tango's (1998) score S = positive - negative - n * difference, standardised by its variance at the constrained
    maximum likelihood (Tango's Z), with two corrections for one-sided use with few discordant pairs: S is shifted by
    ``continuity`` (-1/2 for lower bounds, +1/2 for upper bounds: a continuity correction) and Z is mapped through
    the Cornish-Fisher expansion with the third moment of S at the same estimate (a skewness correction in the
    manner of Gart & Nam 1990 and Laud 2017).  A large value says the true difference is above ``difference``.
    """
    b, c, m, d = (np.asarray(value, dtype=float) for value in (positive_flips, negative_flips, n, difference))
    p_positive, p_negative = _constrained_flip_rates(b, c, m, d)
    variance = m * np.maximum(p_positive + p_negative - d * d, 0.0)
    third_moment = m * (p_positive * (1 - d) ** 3 - p_negative * (1 + d) ** 3 - (1 - p_positive - p_negative) * d**3)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.nan_to_num((b - c - m * d + continuity) / np.sqrt(variance), nan=0.0, posinf=_HUGE, neginf=-_HUGE)
        skew_term = np.nan_to_num(third_moment / (6.0 * variance**1.5), nan=0.0, posinf=0.0, neginf=0.0)
    return _cornish_fisher(z, skew_term)


_CONTINUITY = 0.5  # half a flip: the score moves in steps of one flip


@dataclass(frozen=True)
class PairedScore:
    """Score test and interval for the paired difference of binary outcomes (see ``paired_score_statistic``).

    Each bound is the set of differences its one-sided test does not reject, so bounds and p-values agree:
    ``upper(beta) < v`` exactly when ``p_value_below(v) < beta``.  The corrections make one-sided coverage hold
    at the nominal level in simulation down to a handful of discordant pairs (tests/test_stats.py).
    """

    n: int
    positive_flips: int
    negative_flips: int

    @classmethod
    def from_summary(cls, summary: PairedSummary) -> PairedScore:
        return cls(summary.n, summary.positive_flips, summary.negative_flips)

    @property
    def point(self) -> float:
        return (self.positive_flips - self.negative_flips) / self.n

    def statistic(self, difference: float, continuity: float = 0.0) -> float:
        return float(paired_score_statistic(self.positive_flips, self.negative_flips, self.n, difference, continuity))

    def p_value_below(self, threshold: float) -> float:
        """One-sided p-value for H0: true difference >= threshold (small when the difference is below it)."""
        return float(special.ndtr(self.statistic(threshold, _CONTINUITY)))

    def p_value_above(self, threshold: float) -> float:
        """One-sided p-value for H0: true difference <= threshold (small when the difference is above it)."""
        return float(special.ndtr(-self.statistic(threshold, -_CONTINUITY)))

    def lower(self, alpha: float) -> float:
        """One-sided lower confidence bound at level 1 - alpha."""
        _check_alpha(alpha)
        if self.point <= -1.0:
            return -1.0
        z = _z(alpha)
        return float(optimize.brentq(lambda d: self.statistic(d, -_CONTINUITY) - z, -1.0, self.point, xtol=1e-12))

    def upper(self, alpha: float) -> float:
        """One-sided upper confidence bound at level 1 - alpha."""
        _check_alpha(alpha)
        if self.point >= 1.0:
            return 1.0
        z = _z(alpha)
        return float(optimize.brentq(lambda d: self.statistic(d, _CONTINUITY) + z, self.point, 1.0, xtol=1e-12))

    def interval(self, alpha: float = 0.05) -> Interval:
        return Interval(self.lower(alpha / 2), self.upper(alpha / 2), self.point, alpha)


def paired_difference_interval(base: Outcomes, edited: Outcomes, alpha: float = 0.05) -> Interval:
    """Two-sided corrected score interval at level 1 - alpha for ``mean(edited) - mean(base)`` of 0/1 outcomes."""
    return PairedScore.from_summary(paired_summary(base, edited)).interval(alpha)


def non_inferiority_p_value(base: Outcomes, edited: Outcomes, tolerance: float) -> float:
    """Score-test p-value for H0: true difference <= -tolerance against H1: > -tolerance (Nam 1997; Tango 1998).

    Small values are evidence that the edit did not cost more than ``tolerance``; it is below alpha exactly when
    the one-sided lower bound of ``PairedScore`` at level alpha is above ``-tolerance``.
    """
    _check_tolerance(tolerance)
    return PairedScore.from_summary(paired_summary(base, edited)).p_value_above(-tolerance)
