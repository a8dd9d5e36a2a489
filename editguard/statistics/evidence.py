"""What a method knows about one ability's ``edited - base``: the ``Evidence`` protocol, the paired outcomes it is
built from, the worst-case bounds for means with few changed examples, and the method each ``Analysis`` names."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from editguard.statistics.metrics import Analysis, Metric
from editguard.statistics.aggregates import MEAN, vectorised
from editguard.statistics.bootstrap import bootstrap_distribution
from editguard.statistics.common import FloatArray, Outcomes, _check_paired
from editguard.statistics.score_test import PairedScore, paired_summary


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
