"""Is there signal at all?  Whether the base model's true score is clearly above a level (chance): a baseline that
is not cannot show damage."""

from __future__ import annotations

import math

import numpy as np
from scipy import special

from editguard.statistics.metrics import Metric, OutcomeKind, mean
from editguard.statistics.aggregates import _as_list, vectorised
from editguard.statistics.bootstrap import _index_blocks
from editguard.statistics.common import Outcomes


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
