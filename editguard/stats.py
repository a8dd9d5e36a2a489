"""The statistics of the paired non-inferiority gate: did the edit make the model worse than a margin allows?

This module owns the numbers behind a verdict and nothing else: no pytest, no model, and of editguard only the
metric records (``editguard.metrics``), whose ``Analysis`` names the method below that decides each metric.
Its inputs are per-example outcomes of the base and the edited model on the same examples (aligned sequences),
and every quantity is about the paired difference ``edited - base``, where higher is better and a drop is bad
(for a metric where lower is better, ``decide_ability`` takes ``base - edited``, so a drop is still bad).

The questions and the methods that answer them:

- Binary outcomes (accuracy, exact match): Tango's score test for the paired difference (Tango 1998; its
  non-inferiority use is Nam 1997) and the bounds that invert it, with a continuity and a skewness correction
  (after Gart & Nam 1990 and Laud 2017) so that one-sided bounds keep their level with few discordant pairs.
  Uncorrected, Tango's one-sided 95% bounds covered only 91% in some rare-flip settings; the Wald interval
  collapses to zero width when there are no flips at all.  ``mcnemar_exact`` answers "did anything change".
- Other outcomes (ROUGE means, entity micro F1 from per-example counts, any other aggregate): a paired bootstrap
  that resamples example indices once for both models, with BCa intervals (Efron 1987) by default.  Bootstrap
  bounds are overconfident when only a few examples changed (and zero-width when none did), so for means in
  [0, 1] the gate falls back to worst-case bounds below ``MIN_CHANGED_FOR_BOOTSTRAP`` changed examples.
- The verdict (``decide``): PASS when the lower bound of ``edited - base`` is above ``-tolerance``; FAIL when the
  upper bound is below it (or, with ``FailRule.SIGNIFICANT``, when the drop is significant and the point drop
  exceeds the tolerance); INCONCLUSIVE otherwise.  ``alpha`` is always the one-sided error rate of each kind of
  wrong verdict: a bound "at level alpha" misses the true difference on its side with probability ``alpha``.
- Several abilities: each is decided alone (``decide_ability``, as an xdist worker must) with its FAIL bound at
  ``alpha / k`` (Bonferroni, Holm's first step); ``holm`` gives the adjusted p-values with which
  ``editguard.verdict.holm_correct`` completes Holm's step-down (Holm 1979), so the chance that any ability
  without a real drop beyond its margin fails is at most ``alpha``.  PASS verdicts need no correction: the gate
  ships only when every ability passes, an intersection-union test (Berger 1982), so a damaged ability lets the
  whole gate pass with probability at most ``alpha``.
- Early stopping (``sequential_gate``): anytime-valid tests by betting on the differences ``d_i`` in [-1, 1]
  with predictable plug-in bets (Waudby-Smith & Ramdas 2024), valid however often one looks.  The examples
  must arrive in random order (shuffle them once, with a seed, before streaming).

References:
    Berger RL (1982). Multiparameter hypothesis testing and acceptance sampling. Technometrics 24:295-300.
    Chow SC, Shao J, Wang H (2008). Sample Size Calculations in Clinical Research, 2nd ed., section 4.2.
    Efron B (1987). Better bootstrap confidence intervals. JASA 82:171-185.
    Gart JJ, Nam J (1990). Approximate interval estimation of the difference in binomial parameters: correction
        for skewness and extension to multiple tables. Biometrics 46:637-643.
    Holm S (1979). A simple sequentially rejective multiple test procedure. Scand J Statist 6:65-70.
    Laud PJ (2017). Equal-tailed confidence intervals for comparison of rates. Pharmaceutical Statistics 16:334-348.
    Nam J (1997). Establishing equivalence of two treatments and sample size requirements in matched-pairs
        design. Biometrics 53:1422-1430.
    Tango T (1998). Equivalence test and confidence interval for the difference in proportions for the
        paired-sample design. Statistics in Medicine 17:891-908.
    Waudby-Smith I, Ramdas A (2024). Estimating means of bounded random variables by betting. JRSS-B 86:1-27
        (arXiv:2010.09686).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
from scipy import optimize, special
from scipy import stats as scipy_stats

from editguard.metrics import Analysis, Metric, OutcomeKind, mean, micro_f1

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Outcomes = Sequence[Any] | npt.NDArray[Any]  # per-example outcomes, one entry per example, aligned across models

_HUGE = 1e12  # stands in for an infinite score statistic, so root finders see finite values
_TINY = 1e-12  # the smallest one-sided level a p-value search resolves
_BLOCK = 512  # bootstrap resamples drawn per block, to bound memory at (block, n)
_MAX_SKEW_TERM = 0.1  # the largest skewness / 6 the Cornish-Fisher correction trusts


class Decision(str, Enum):
    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"


class FailRule(str, Enum):
    """When a drop counts as a failure (PASS is always: lower bound above ``-tolerance``)."""

    MARGIN = "margin"  # the whole interval lies below -tolerance: the drop exceeds the margin, with confidence
    SIGNIFICANT = "significant"  # the drop is significant (upper bound below 0) and the point drop exceeds the margin


class BootstrapMethod(str, Enum):
    BCA = "bca"  # bias-corrected and accelerated (Efron 1987)
    PERCENTILE = "percentile"


@dataclass(frozen=True)
class Interval:
    """A two-sided confidence interval for ``edited - base``; each bound misses on its side with probability alpha/2."""

    lower: float
    upper: float
    point: float
    alpha: float


# --- inputs ---------------------------------------------------------------------------------------------


def _check_paired(base: Outcomes, edited: Outcomes) -> int:
    if len(base) != len(edited):
        raise ValueError(
            f"base and edited outcomes must be aligned on the same examples: got {len(base)} base and "
            f"{len(edited)} edited outcomes"
        )
    if len(base) == 0:
        raise ValueError("no examples: a paired comparison needs at least one example scored by both models")
    return len(base)


def _binary_arrays(base: Outcomes, edited: Outcomes) -> tuple[FloatArray, FloatArray]:
    _check_paired(base, edited)
    base_array, edited_array = np.asarray(base, dtype=float), np.asarray(edited, dtype=float)
    for name, values in (("base", base_array), ("edited", edited_array)):
        if values.ndim != 1 or not np.isin(values, (0.0, 1.0)).all():
            raise ValueError(f"binary outcomes must be a flat sequence of 0 and 1; the {name} outcomes are not")
    return base_array, edited_array


def _check_alpha(alpha: float) -> None:
    if not 0.0 < alpha < 0.5:
        raise ValueError(f"alpha must be a one-sided error rate in (0, 0.5), got {alpha}")


def _check_tolerance(tolerance: float) -> None:
    if not 0.0 <= tolerance < 1.0:
        raise ValueError(f"tolerance must be in [0, 1), got {tolerance}")


def _z(alpha: float) -> float:
    """The standard normal quantile that a one-sided level-alpha bound sits at."""
    return float(special.ndtri(1.0 - alpha))


# --- binary outcomes: flips, McNemar, score -------------------------------------------------------------


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


# --- other outcomes: the paired bootstrap ---------------------------------------------------------------


def _as_column(outcomes: FloatArray) -> FloatArray:
    if outcomes.ndim != 1:
        raise ValueError("mean outcomes must be one number per example")
    return outcomes.reshape(-1, 1)


def _mean_of_sums(sums: FloatArray, n: int) -> FloatArray:
    return np.asarray(sums[..., 0] / n, dtype=float)


def _f1_statistics(outcomes: FloatArray) -> FloatArray:
    """What micro F1 sums: the counts themselves, (n, 3)."""
    if outcomes.ndim != 2 or outcomes.shape[1] != 3:
        raise ValueError("entity counts must be [true positives, predicted, gold] for every example")
    return outcomes


def _f1_of_sums(sums: FloatArray, n: int) -> FloatArray:
    """``metrics.micro_f1`` of each row of summed counts (..., 3) -> (...): it depends on the sums alone."""
    rows = sums.reshape(-1, 3).tolist()
    return np.array([micro_f1([row]) for row in rows], dtype=float).reshape(sums.shape[:-1])


@dataclass(frozen=True)
class SumAggregate:
    """An aggregate that is a function of sums of per-example statistics, so many resamples are one matrix product.

    ``statistics`` maps the outcomes array (n, ...) to (n, m); ``combine`` maps sums (..., m) and the number of
    examples to the aggregate (...).  Calling it on a sequence of outcomes gives the aggregate as a float.
    """

    name: str
    statistics: Callable[[FloatArray], FloatArray]
    combine: Callable[[FloatArray, int], FloatArray]

    def __call__(self, outcomes: Outcomes) -> float:
        values = self.statistics(np.asarray(outcomes, dtype=float))
        return float(self.combine(values.sum(axis=0), len(values)))


MEAN = SumAggregate("mean", _as_column, _mean_of_sums)
MICRO_F1 = SumAggregate("micro_f1", _f1_statistics, _f1_of_sums)  # metrics.micro_f1 from summed counts
_VECTORISED: Mapping[Callable[..., float], SumAggregate] = {mean: MEAN, micro_f1: MICRO_F1}


def vectorised(aggregate: Callable[[Sequence[Any]], float]) -> Callable[[Sequence[Any]], float]:
    """The ``SumAggregate`` that computes a metric's aggregate from sums, where there is one; else the aggregate."""
    return _VECTORISED.get(aggregate, aggregate)


def _index_blocks(rng: np.random.Generator, resamples: int, n: int) -> Iterator[IntArray]:
    """Resampled example indices, (block, n) at a time; the same draws whatever the aggregate."""
    for start in range(0, resamples, _BLOCK):
        yield rng.integers(0, n, size=(min(_BLOCK, resamples - start), n))


def _weights(indices: IntArray, n: int) -> FloatArray:
    """How often each example appears in each resample: (block, n) indices -> (block, n) counts."""
    offsets = indices + n * np.arange(len(indices))[:, None]
    return np.bincount(offsets.ravel(), minlength=indices.size).reshape(indices.shape).astype(float)


def _sum_resamples(
    base: Outcomes, edited: Outcomes, aggregate: SumAggregate, resamples: int, rng: np.random.Generator
) -> FloatArray:
    base_stats = aggregate.statistics(np.asarray(base, dtype=float))  # (n, m)
    edited_stats = aggregate.statistics(np.asarray(edited, dtype=float))
    n = len(base_stats)
    blocks = []
    for indices in _index_blocks(rng, resamples, n):
        weights = _weights(indices, n)  # (block, n)
        blocks.append(aggregate.combine(weights @ edited_stats, n) - aggregate.combine(weights @ base_stats, n))
    return np.concatenate(blocks)


def _as_list(outcomes: Outcomes) -> list[Any]:
    """Outcomes as a plain list (rows of an array become lists), which is what a generic aggregate is given."""
    return outcomes.tolist() if isinstance(outcomes, np.ndarray) else list(outcomes)


def _generic_resamples(
    base: Outcomes,
    edited: Outcomes,
    aggregate: Callable[[Sequence[Any]], float],
    resamples: int,
    rng: np.random.Generator,
) -> FloatArray:
    base_list, edited_list = _as_list(base), _as_list(edited)
    differences = [
        aggregate([edited_list[i] for i in row]) - aggregate([base_list[i] for i in row])
        for indices in _index_blocks(rng, resamples, len(base_list))
        for row in indices
    ]
    return np.asarray(differences, dtype=float)


def _jackknife(base: Outcomes, edited: Outcomes, aggregate: Callable[[Sequence[Any]], float]) -> FloatArray:
    """Leave-one-out differences, (n,); vectorised for a SumAggregate (total minus each example's statistics)."""
    n = len(base)
    if isinstance(aggregate, SumAggregate):
        base_stats = aggregate.statistics(np.asarray(base, dtype=float))
        edited_stats = aggregate.statistics(np.asarray(edited, dtype=float))
        return aggregate.combine(edited_stats.sum(axis=0) - edited_stats, n - 1) - aggregate.combine(
            base_stats.sum(axis=0) - base_stats, n - 1
        )
    base_list, edited_list = _as_list(base), _as_list(edited)
    leave_out = [(base_list[:i] + base_list[i + 1 :], edited_list[:i] + edited_list[i + 1 :]) for i in range(n)]
    return np.array([aggregate(edited_rest) - aggregate(base_rest) for base_rest, edited_rest in leave_out])


def _acceleration(jackknife: FloatArray) -> float:
    """BCa acceleration from the jackknife skewness (Efron 1987, eq. 6.6); 0 when the jackknife does not vary."""
    deviations = jackknife.mean() - jackknife
    denominator = 6.0 * float(np.sum(deviations**2)) ** 1.5
    return float(np.sum(deviations**3)) / denominator if denominator > 0 else 0.0


def _bias_correction(differences: FloatArray, point: float) -> float:
    """BCa bias correction z0: the normal quantile of the share of resamples below the point (ties count half)."""
    ties = np.isclose(differences, point, rtol=0.0, atol=1e-12)
    share = (np.sum((differences < point) & ~ties) + 0.5 * np.sum(ties)) / len(differences)
    half_step = 0.5 / len(differences)
    return float(special.ndtri(min(max(share, half_step), 1.0 - half_step)))


@dataclass(frozen=True, eq=False)
class BootstrapDistribution:
    """Paired bootstrap differences ``aggregate(edited*) - aggregate(base*)`` over resampled examples.

    Bounds are BCa (or percentile, when both corrections are 0) quantiles; p-values invert the same bounds, so
    ``upper(beta) < v`` exactly when ``p_value_below(v) <= beta`` (up to 1e-12) for every beta the resamples
    resolve; p-values are floored at ``1 / (resamples + 1)``, the smallest a bootstrap can claim.
    """

    n: int
    point: float
    differences: FloatArray  # sorted, (resamples,)
    bias_correction: float  # z0
    acceleration: float  # a

    def _position(self, z: float) -> float:
        """The BCa quantile position for the normal quantile z; monotone in z (clamped past the pole)."""
        w = self.bias_correction + z
        denominator = 1.0 - self.acceleration * w
        if denominator <= 0:
            return 1.0 if w > 0 else 0.0
        return float(special.ndtr(self.bias_correction + w / denominator))

    def _quantile(self, position: float) -> float:
        """Averaged inverted-CDF quantile, symmetric under negation of the differences."""
        k = position * len(self.differences)
        low = min(max(math.ceil(k) - 1, 0), len(self.differences) - 1)
        high = min(max(math.floor(k), 0), len(self.differences) - 1)
        return float(self.differences[low] + self.differences[high]) / 2.0

    def lower(self, alpha: float) -> float:
        """One-sided lower bound at level 1 - alpha, never above the point (BCa quantiles can be)."""
        return min(self._quantile(self._position(float(special.ndtri(alpha)))), self.point)

    def upper(self, alpha: float) -> float:
        """One-sided upper bound at level 1 - alpha, never below the point."""
        return max(self._quantile(self._position(float(special.ndtri(1.0 - alpha)))), self.point)

    def interval(self, alpha: float = 0.05) -> Interval:
        _check_alpha(alpha / 2)
        return Interval(self.lower(alpha / 2), self.upper(alpha / 2), self.point, alpha)

    def p_value_below(self, threshold: float) -> float:
        """p-value for H0: true difference >= threshold: the smallest level whose upper bound is below threshold."""
        return max(_smallest_level(lambda level: self.upper(level) < threshold), self._resolution)

    def p_value_above(self, threshold: float) -> float:
        """p-value for H0: true difference <= threshold: the smallest level whose lower bound is above threshold."""
        return max(_smallest_level(lambda level: self.lower(level) > threshold), self._resolution)

    @property
    def _resolution(self) -> float:
        return 1.0 / (len(self.differences) + 1)


def _smallest_level(rejects: Callable[[float], bool]) -> float:
    """Bisection for the smallest level in (0, 1) at which a monotone bound rejects."""
    if rejects(_TINY):
        return 0.0
    if not rejects(1.0 - _TINY):
        return 1.0
    low, high = _TINY, 1.0 - _TINY
    while high - low > _TINY:
        middle = (low + high) / 2.0
        low, high = (low, middle) if rejects(middle) else (middle, high)
    return high


def bootstrap_distribution(
    base: Outcomes,
    edited: Outcomes,
    aggregate: Callable[[Sequence[Any]], float] = MEAN,
    resamples: int = 2000,
    seed: int | np.random.SeedSequence = 0,
    method: BootstrapMethod = BootstrapMethod.BCA,
) -> BootstrapDistribution:
    """Resample example indices with replacement (the same indices for both models) ``resamples`` times.

    ``aggregate`` maps a list of per-example outcomes to a score.  A ``SumAggregate`` (``MEAN``, ``MICRO_F1``)
    runs vectorised; any other callable runs once per resample on plain lists, which is slower but general.
    """
    n = _check_paired(base, edited)
    if resamples < 1:
        raise ValueError(f"resamples must be positive, got {resamples}")
    rng = np.random.default_rng(seed)
    if isinstance(aggregate, SumAggregate):
        differences = np.sort(_sum_resamples(base, edited, aggregate, resamples, rng))
    else:
        differences = np.sort(_generic_resamples(base, edited, aggregate, resamples, rng))
    point = float(aggregate(_as_list(edited)) - aggregate(_as_list(base)))
    if method is BootstrapMethod.PERCENTILE or n < 2:
        return BootstrapDistribution(n, point, differences, 0.0, 0.0)
    acceleration = _acceleration(_jackknife(base, edited, aggregate))
    return BootstrapDistribution(n, point, differences, _bias_correction(differences, point), acceleration)


def paired_bootstrap(
    base: Outcomes,
    edited: Outcomes,
    aggregate: Callable[[Sequence[Any]], float] = MEAN,
    alpha: float = 0.05,
    resamples: int = 2000,
    seed: int | np.random.SeedSequence = 0,
    method: BootstrapMethod = BootstrapMethod.BCA,
) -> Interval:
    """Two-sided paired bootstrap interval at level 1 - alpha for ``aggregate(edited) - aggregate(base)``."""
    return bootstrap_distribution(base, edited, aggregate, resamples, seed, method).interval(alpha)


MIN_CHANGED_FOR_BOOTSTRAP = 20  # below this many changed examples, BCa lower bounds covered as little as 85%


@dataclass(frozen=True)
class WorstCaseEvidence:
    """Bounds on the mean of differences in [-1, 1] that assume nothing about the size of the few changes seen.

    Every drop counts as -1 for the lower bound and every rise as +1 for the upper bound; the rates of drops and
    rises are bounded with ``PairedScore``.  Since ``d >= -[d < 0]`` and ``d <= [d > 0]``, these bounds and
    p-values are valid (conservative) whatever the sizes.  With no changes at all the bounds are about
    ``-+ z^2 / n`` rather than the bootstrap's zero width, and with few changes an edit can PASS but not FAIL.
    """

    n: int
    point: float
    drops: int
    rises: int

    @classmethod
    def from_differences(cls, differences: FloatArray) -> WorstCaseEvidence:
        drops, rises = int(np.sum(differences < 0)), int(np.sum(differences > 0))
        return cls(len(differences), float(differences.mean()), drops, rises)

    def lower(self, alpha: float) -> float:
        return PairedScore(self.n, 0, self.drops).lower(alpha)

    def upper(self, alpha: float) -> float:
        return PairedScore(self.n, self.rises, 0).upper(alpha)

    def p_value_below(self, threshold: float) -> float:
        return PairedScore(self.n, self.rises, 0).p_value_below(threshold)

    def p_value_above(self, threshold: float) -> float:
        return PairedScore(self.n, 0, self.drops).p_value_above(threshold)


# --- the verdict ----------------------------------------------------------------------------------------


def _fails_margin(upper: float, point: float, tolerance: float) -> bool:
    return upper < -tolerance


def _fails_significant(upper: float, point: float, tolerance: float) -> bool:
    return upper < 0.0 and point < -tolerance


_FAIL_RULES: Mapping[FailRule, Callable[[float, float, float], bool]] = {
    FailRule.MARGIN: _fails_margin,
    FailRule.SIGNIFICANT: _fails_significant,
}


def fail_threshold(rule: FailRule, tolerance: float) -> float:
    """The value the upper bound must fall below for a FAIL: ``-tolerance`` (margin) or 0 (significant)."""
    return -tolerance if rule is FailRule.MARGIN else 0.0


def decide(lower: float, upper: float, point: float, tolerance: float, rule: FailRule = FailRule.MARGIN) -> Decision:
    """Three-way verdict on ``edited - base`` against the non-inferiority margin ``-tolerance``.

    PASS when ``lower > -tolerance``; FAIL by ``rule`` (margin: ``upper < -tolerance``; significant:
    ``upper < 0`` and ``point < -tolerance``); INCONCLUSIVE otherwise.  With one-sided level-alpha bounds each
    wrong verdict has probability at most alpha.  A larger tolerance never makes the verdict worse.
    """
    _check_tolerance(tolerance)
    if not lower <= point <= upper:
        raise ValueError(f"expected lower <= point <= upper, got {lower}, {point}, {upper}")
    if lower > -tolerance:
        return Decision.PASS
    if _FAIL_RULES[rule](upper, point, tolerance):
        return Decision.FAIL
    return Decision.INCONCLUSIVE


# --- planning: detectable effects and sample sizes ------------------------------------------------------


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


# --- several abilities: Holm ----------------------------------------------------------------------------


def _holm_order(p_values: Mapping[str, float]) -> list[str]:
    for name, p in p_values.items():
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p-value for {name!r} must be in [0, 1], got {p}")
    return sorted(p_values, key=lambda name: (p_values[name], name))


def holm(p_values: Mapping[str, float]) -> dict[str, float]:
    """Holm step-down adjusted p-values: monotone in the raw p-values, capped at 1; reject where <= alpha."""
    order = _holm_order(p_values)
    adjusted: dict[str, float] = {}
    running = 0.0
    for rank, name in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * p_values[name]))
        adjusted[name] = running
    return {name: adjusted[name] for name in p_values}


# --- the gate over abilities ----------------------------------------------------------------------------


class Evidence(Protocol):
    """What a method knows about one ability's ``edited - base``: bounds at any level and the p-values they invert."""

    @property
    def n(self) -> int: ...

    @property
    def point(self) -> float: ...

    def lower(self, alpha: float) -> float: ...

    def upper(self, alpha: float) -> float: ...

    def p_value_below(self, threshold: float) -> float: ...

    def p_value_above(self, threshold: float) -> float: ...


@dataclass(frozen=True)
class PairedOutcomes:
    """One ability's per-example outcomes for both models, aligned by example, their metric and the tolerated drop.

    The metric's record says what an outcome is, how outcomes aggregate, which method builds the evidence
    (``metric.analysis``) and whether lower is better.
    """

    metric: Metric
    base: Outcomes
    edited: Outcomes
    tolerance: float


@dataclass(frozen=True)
class AbilityDecision:
    """Everything the gate decided about one ability, with the numbers a report shows.

    Scores are the metric's own; the difference and its bounds are oriented so that a drop is bad: ``edited -
    base``, or ``base - edited`` for a metric where lower is better.  Flips count examples that got worse/better.
    """

    ability: str
    kind: OutcomeKind
    n: int
    negative_flips: int  # examples whose score got worse (for 0/1 outcomes: base right, edited wrong)
    positive_flips: int  # examples whose score got better
    base_score: float
    edited_score: float
    difference: float  # edited_score - base_score (base_score - edited_score when lower is better)
    lower: float  # one-sided lower bound at level 1 - lower_alpha
    upper: float  # one-sided upper bound at level 1 - upper_alpha (alpha / k for k abilities: Bonferroni)
    lower_alpha: float
    upper_alpha: float
    tolerance: float
    pass_p_value: float  # H0: difference <= -tolerance; below alpha exactly when it PASSes
    fail_p_value: float  # H0: difference >= fail_threshold(rule, tolerance)
    adjusted_fail_p_value: float  # Bonferroni-adjusted (fail_p * alpha / upper_alpha); FAIL iff <= alpha
    mcnemar_p_value: float | None  # exact two-sided McNemar, for 0/1 outcomes only
    decision: Decision
    minimum_detectable_drop: float  # the true drop that FAILs with the requested power at this n (inf: none can)
    examples_needed: int | None  # for INCONCLUSIVE: about how many examples would settle it


def _ability_seed(seed: int, ability: str) -> np.random.SeedSequence:
    """A bootstrap seed per ability that does not depend on the order of the abilities."""
    return np.random.SeedSequence([seed, zlib.crc32(ability.encode())])


def _oriented(outcomes: PairedOutcomes) -> PairedOutcomes:
    """Base and edited swapped when lower is better, so that ``edited - base`` as the methods compute it, and
    every count of flips, is negative when the edit made things worse."""
    if outcomes.metric.higher_is_better:
        return outcomes
    return replace(outcomes, base=outcomes.edited, edited=outcomes.base)


def _score_evidence(outcomes: PairedOutcomes, resamples: int, seed: np.random.SeedSequence) -> Evidence:
    return PairedScore.from_summary(paired_summary(outcomes.base, outcomes.edited))


def _mean_evidence(outcomes: PairedOutcomes, resamples: int, seed: np.random.SeedSequence) -> Evidence:
    """BCa bootstrap, unless so few examples changed that it would be overconfident (see ``WorstCaseEvidence``)."""
    _check_paired(outcomes.base, outcomes.edited)
    differences = np.asarray(outcomes.edited, dtype=float) - np.asarray(outcomes.base, dtype=float)
    if differences.ndim != 1 or np.any(np.abs(differences) > 1.0):
        raise ValueError("continuous outcomes must be one number in [0, 1] per example")
    if np.count_nonzero(differences) < MIN_CHANGED_FOR_BOOTSTRAP:
        return WorstCaseEvidence.from_differences(differences)
    return bootstrap_distribution(outcomes.base, outcomes.edited, MEAN, resamples, seed)


def _aggregate_evidence(outcomes: PairedOutcomes, resamples: int, seed: np.random.SeedSequence) -> Evidence:
    """BCa bootstrap of the metric's aggregate (vectorised for micro F1, generic for any other)."""
    aggregate = vectorised(outcomes.metric.aggregate)
    return bootstrap_distribution(outcomes.base, outcomes.edited, aggregate, resamples, seed)


_EVIDENCE: Mapping[Analysis, Callable[[PairedOutcomes, int, np.random.SeedSequence], Evidence]] = {
    Analysis.SCORE_INTERVAL: _score_evidence,
    Analysis.MEAN_BOOTSTRAP: _mean_evidence,
    Analysis.AGGREGATE_BOOTSTRAP: _aggregate_evidence,
}


def _example_scores(aggregate: Callable[[Sequence[Any]], float], outcomes: Outcomes) -> FloatArray:
    """The aggregate of each example alone (its 0/1, its ROUGE, its F1), to count the examples that got worse
    or better."""
    if isinstance(aggregate, SumAggregate):
        statistics = aggregate.statistics(np.asarray(outcomes, dtype=float))
        return np.asarray(aggregate.combine(statistics, 1), dtype=float)
    return np.array([aggregate([outcome]) for outcome in _as_list(outcomes)], dtype=float)


def _detectable_drop(rule: FailRule, tolerance: float, standard_error: float, alpha: float, power: float) -> float:
    """The true drop that FAILs with probability ``power``: past the margin by the MDE (margin rule), or past both
    zero by the MDE and the margin by the power quantile (significant rule)."""
    effect = (_z(alpha) + float(special.ndtri(power))) * standard_error
    if rule is FailRule.MARGIN:
        return tolerance + effect
    return max(effect, tolerance + float(special.ndtri(power)) * standard_error)


def _decide_ability(
    outcomes: PairedOutcomes, evidence: Evidence, alpha: float, level: float, rule: FailRule, power: float
) -> tuple[float, float, Decision, float, int | None]:
    lower, upper = evidence.lower(alpha), evidence.upper(level)
    decision = decide(lower, upper, evidence.point, outcomes.tolerance, rule)
    standard_error = (upper - lower) / (_z(alpha) + _z(level))  # the normal-theory scale behind both bounds
    drop = _detectable_drop(rule, outcomes.tolerance, standard_error, level, power)
    if isinstance(evidence, WorstCaseEvidence):
        drop = math.inf  # its upper bound is never below 0, so no drop can FAIL until more examples change
    needed = None
    if decision is Decision.INCONCLUSIVE:
        needed = examples_needed(evidence.n, lower, upper, evidence.point, outcomes.tolerance, rule)
    return lower, upper, decision, drop, needed


def _flips(outcomes: PairedOutcomes) -> tuple[int, int]:
    """Examples that got worse and better, on outcomes already oriented (``_oriented``)."""
    aggregate = vectorised(outcomes.metric.aggregate)
    base_scores, edited_scores = _example_scores(aggregate, outcomes.base), _example_scores(aggregate, outcomes.edited)
    return int(np.sum(edited_scores < base_scores)), int(np.sum(edited_scores > base_scores))


def _ability_decision(
    name: str,
    outcomes: PairedOutcomes,
    evidence: Evidence,
    alpha: float,
    level: float,
    fail_p: tuple[float, float],
    rule: FailRule,
    power: float,
) -> AbilityDecision:
    lower, upper, decision, drop, needed = _decide_ability(outcomes, evidence, alpha, level, rule, power)
    aggregate = vectorised(outcomes.metric.aggregate)
    negative, positive = _flips(_oriented(outcomes))
    binary = outcomes.metric.kind is OutcomeKind.BINARY
    return AbilityDecision(
        ability=name,
        kind=outcomes.metric.kind,
        n=evidence.n,
        negative_flips=negative,
        positive_flips=positive,
        base_score=aggregate(_as_list(outcomes.base)),
        edited_score=aggregate(_as_list(outcomes.edited)),
        difference=evidence.point,
        lower=lower,
        upper=upper,
        lower_alpha=alpha,
        upper_alpha=level,
        tolerance=outcomes.tolerance,
        pass_p_value=evidence.p_value_above(-outcomes.tolerance),
        fail_p_value=fail_p[0],
        adjusted_fail_p_value=fail_p[1],
        mcnemar_p_value=mcnemar_exact(negative, positive) if binary else None,
        decision=decision,
        minimum_detectable_drop=drop,
        examples_needed=needed,
    )


# --- early stopping: anytime-valid tests by betting -----------------------------------------------------

_MAX_BET = 0.45  # below 1/2, so 1 + bet * (d - m) > 0 for every d and m in [-1, 1]


def _differences(differences: Sequence[float] | FloatArray) -> FloatArray:
    values = np.asarray(differences, dtype=float)
    if values.shape[-1] == 0:
        raise ValueError("no examples: a confidence sequence needs at least one paired difference")
    if np.any(np.abs(values) > 1.0):
        raise ValueError("paired differences edited - base must lie in [-1, 1]")
    return values


def _bets(differences: FloatArray, alpha: float) -> FloatArray:
    """Predictable plug-in bets (Waudby-Smith & Ramdas 2024, eq. 26, rescaled from [0, 1] to [-1, 1]).

    The bet on example t uses only examples before t: sqrt(2 log(1/alpha) / (var_{t-1} t log(1 + t))), capped,
    where var is a running variance estimate that starts from the worst case 1; low variance means large bets,
    which is what lets a benign edit with few flips stop early.  Shapes follow ``differences`` (..., n).
    """
    t = np.arange(1, differences.shape[-1] + 1, dtype=float)
    running_mean = np.cumsum(differences, axis=-1) / (t + 1)  # a prior mean of 0 counts as one example
    running_var = (1.0 + np.cumsum((differences - running_mean) ** 2, axis=-1)) / (t + 1)
    previous_var = np.concatenate([np.ones_like(running_var[..., :1]), running_var[..., :-1]], axis=-1)
    return np.minimum(np.sqrt(2.0 * math.log(1.0 / alpha) / (previous_var * t * np.log1p(t))), _MAX_BET)


def _max_log_wealth(differences: FloatArray, bets: FloatArray, null: float, direction: float) -> FloatArray:
    """Running maximum of the log wealth of betting that the mean is above (direction +1) or below (-1) ``null``.

    Wealth prod(1 + direction * bet_i * (d_i - null)) is a nonnegative supermartingale under the null side, so by
    Ville's inequality it ever reaches 1/alpha with probability at most alpha.
    """
    log_wealth = np.cumsum(np.log1p(direction * bets * (differences - null)), axis=-1)
    return np.maximum.accumulate(log_wealth, axis=-1)


def anytime_p_values(
    differences: Sequence[float] | FloatArray, null_difference: float, alpha: float = 0.05
) -> tuple[FloatArray, FloatArray]:
    """Anytime-valid p-value paths (..., n) for H0: mean difference <= null and for H0: mean difference >= null.

    Entry t uses the first t+1 differences, and the chance that a path ever drops to alpha under its null is at
    most alpha, however often one looks.  ``alpha`` tunes the bets; the p-values are valid at every level.
    """
    values = _differences(differences)
    bets = _bets(values, alpha)
    above = np.exp(-_max_log_wealth(values, bets, null_difference, 1.0))
    below = np.exp(-_max_log_wealth(values, bets, null_difference, -1.0))
    return np.minimum(above, 1.0), np.minimum(below, 1.0)


def _sequence_bound(differences: FloatArray, alpha: float, direction: float) -> float:
    """Bisection for the edge of {m : the bet against m has never reached 1/alpha}; the wealth decreases in m
    for direction +1 (lower bound) and increases for -1 (upper bound)."""
    bets, threshold = _bets(differences, alpha), math.log(1.0 / alpha)
    rejected_end, kept_end = -direction, direction
    if _max_log_wealth(differences, bets, rejected_end, direction)[-1] < threshold:
        return rejected_end
    while abs(kept_end - rejected_end) > 1e-10:
        middle = (kept_end + rejected_end) / 2.0
        if _max_log_wealth(differences, bets, middle, direction)[-1] >= threshold:
            rejected_end = middle
        else:
            kept_end = middle
    return kept_end


def confidence_sequence(differences: Sequence[float] | FloatArray, alpha: float = 0.05) -> Interval:
    """The anytime-valid two-sided confidence set for the mean paired difference after all ``differences``.

    Computed from the whole prefix and intersected over time, it covers the true mean at every time at once with
    probability at least 1 - alpha (each side alpha/2), so it may be checked after every chunk.  Being an
    intersection over time, it need not contain the current mean (``point``).
    """
    values = _differences(differences)
    if values.ndim != 1:
        raise ValueError("confidence_sequence takes one stream of differences")
    _check_alpha(alpha / 2)
    lower, upper = _sequence_bound(values, alpha / 2, 1.0), _sequence_bound(values, alpha / 2, -1.0)
    return Interval(lower, upper, float(values.mean()), alpha)


@dataclass(frozen=True)
class SequentialDecision:
    """Where a sequential gate stopped and why."""

    decision: Decision
    n: int  # examples used
    difference: float  # mean difference over them
    lower: float  # anytime-valid lower bound at level 1 - alpha
    upper: float  # anytime-valid upper bound at level 1 - fail_alpha
    pass_p_value: float  # anytime-valid p for H0: difference <= -tolerance
    fail_p_value: float  # anytime-valid p for H0: difference >= fail_threshold(rule, tolerance)


def _look_times(n: int, chunk_size: int) -> list[int]:
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    return [*range(chunk_size, n, chunk_size), n]


def _sequential_verdict(
    pass_p: float, fail_p: float, point: float, tolerance: float, alphas: tuple[float, float], rule: FailRule
) -> Decision:
    if pass_p <= alphas[0]:
        return Decision.PASS
    if fail_p <= alphas[1] and (rule is FailRule.MARGIN or point < -tolerance):
        return Decision.FAIL
    return Decision.INCONCLUSIVE


def sequential_gate(
    differences: Sequence[float] | FloatArray,
    tolerance: float,
    alpha: float = 0.05,
    chunk_size: int = 50,
    rule: FailRule = FailRule.MARGIN,
    fail_alpha: float | None = None,
) -> SequentialDecision:
    """Look after every ``chunk_size`` paired differences (and at the end); stop at the first PASS or FAIL.

    ``differences`` are ``edited_i - base_i`` in [-1, 1] in the order they were evaluated (a random order).
    PASS when the anytime-valid test of H0: difference <= -tolerance rejects at ``alpha``; FAIL when the test of
    H0: difference >= threshold rejects at ``fail_alpha`` (default ``alpha``; pass ``alpha / k`` for k abilities),
    with the significant rule also asking that the mean drop exceed the tolerance.  Each wrong verdict has
    probability at most its alpha over the whole run.  Being a pure function of the differences so far, the
    plugin can call it after each chunk and stop once it does not say INCONCLUSIVE.
    """
    _check_tolerance(tolerance)
    _check_alpha(alpha)
    alphas = (alpha, alpha if fail_alpha is None else fail_alpha)
    _check_alpha(alphas[1])
    values = _differences(differences)
    pass_p, _ = anytime_p_values(values, -tolerance, alphas[0])
    _, fail_p = anytime_p_values(values, fail_threshold(rule, tolerance), alphas[1])
    for n in _look_times(len(values), chunk_size):
        point = float(values[:n].mean())
        decision = _sequential_verdict(pass_p[n - 1], fail_p[n - 1], point, tolerance, alphas, rule)
        if decision is not Decision.INCONCLUSIVE:
            break
    lower, upper = _sequence_bound(values[:n], alphas[0], 1.0), _sequence_bound(values[:n], alphas[1], -1.0)
    return SequentialDecision(decision, n, point, lower, upper, float(pass_p[n - 1]), float(fail_p[n - 1]))


def decide_ability(
    name: str,
    outcomes: PairedOutcomes,
    alpha: float = 0.05,
    fail_alpha: float | None = None,
    rule: FailRule = FailRule.MARGIN,
    power: float = 0.8,
    resamples: int = 2000,
    seed: int = 0,
) -> AbilityDecision:
    """Decide one ability on its own: PASS bound at ``alpha``, FAIL bound at ``fail_alpha`` (default ``alpha``).

    The evidence comes from the method the metric's record names (``metric.analysis``): the corrected score
    method for 0/1 outcomes (``PairedScore``), else a BCa paired bootstrap seeded from ``seed`` and the ability's
    name, except that averaged outcomes in [0, 1] with fewer than ``MIN_CHANGED_FOR_BOOTSTRAP`` changed examples
    get ``WorstCaseEvidence`` (they can PASS, not FAIL).  For k abilities decided separately (as pytest-xdist
    workers do), ``fail_alpha = alpha / k`` is Bonferroni, the first step of Holm: every FAIL it gives, Holm gives
    too; ``editguard.verdict.holm_correct`` adds Holm's later steps once every ability has its p-value.
    """
    _check_alpha(alpha)
    level = alpha if fail_alpha is None else fail_alpha
    _check_alpha(level)
    evidence = _EVIDENCE[outcomes.metric.analysis](_oriented(outcomes), resamples, _ability_seed(seed, name))
    fail_p = evidence.p_value_below(fail_threshold(rule, outcomes.tolerance))
    return _ability_decision(name, outcomes, evidence, alpha, level, (fail_p, min(1.0, fail_p * alpha / level)), rule, power)


# --- is there signal at all? ------------------------------------------------------------------------------


def above_level_p_value(metric: Metric, outcomes: Outcomes, level: float, resamples: int = 2000, seed: int = 0) -> float:
    """One-sided p-value of H0 "the base model's true score is at most ``level``", from its per-example outcomes.

    The gate asks it with ``level = chance``: a baseline not clearly above chance cannot show damage (a model that
    guesses cannot get worse at guessing).  0/1 outcomes: the
    exact binomial tail P(X >= k | n, level).  Numbers averaged: a one-sided z-test of the mean.  Any other
    aggregate (micro F1): the share of paired-bootstrap resamples whose aggregate is at most ``level``.  For a
    metric where lower is better the test is mirrored (H0: the score is at least ``level``).
    """
    values = _as_list(outcomes)
    n = len(values)
    if n == 0:
        return 1.0
    sign = 1.0 if metric.higher_is_better else -1.0
    if metric.kind is OutcomeKind.BINARY and metric.aggregate is mean and metric.higher_is_better:
        successes = int(round(sum(float(value) for value in values)))
        if level <= 0:
            return 0.0 if successes else 1.0
        if level >= 1:
            return 1.0
        return float(special.bdtrc(successes - 1, n, level)) if successes else 1.0  # P(X >= successes)
    if metric.aggregate is mean:
        scores = sign * np.asarray(values, dtype=float)
        spread = float(scores.std(ddof=1)) if n > 1 else 0.0
        distance = float(scores.mean()) - sign * level
        if spread == 0.0:
            return 0.0 if distance > 0 else 1.0
        return float(special.ndtr(-distance / (spread / math.sqrt(n))))
    rng = np.random.default_rng(seed)
    aggregate = vectorised(metric.aggregate)
    resampled = np.array([aggregate([values[i] for i in row]) for block in _index_blocks(rng, resamples, n) for row in block])
    return float(np.mean(sign * (resampled - level) <= 0))
