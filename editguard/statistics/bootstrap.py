"""The paired bootstrap for outcomes that are not 0/1 (ROUGE means, entity micro F1, any other aggregate).

It resamples example indices once for both models, with BCa intervals (Efron 1987) by default;
``BootstrapDistribution`` gives the bounds and the p-values that invert them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np
from scipy import special

from editguard.statistics.aggregates import MEAN, SumAggregate, _as_list
from editguard.statistics.common import FloatArray, IntArray, Interval, Outcomes, _check_alpha, _check_paired

_TINY = 1e-12  # the smallest one-sided level a p-value search resolves
_BLOCK = 512  # bootstrap resamples drawn per block, to bound memory at (block, n)


class BootstrapMethod(str, Enum):
    BCA = "bca"  # bias-corrected and accelerated (Efron 1987)
    PERCENTILE = "percentile"


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
