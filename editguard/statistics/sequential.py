"""Early stopping: anytime-valid p-values and confidence sequences by betting on the paired differences in [-1, 1]
(Waudby-Smith & Ramdas 2024), and ``sequential_gate``, which looks after every chunk and stops at the first PASS or
FAIL."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from editguard.statistics.common import Decision, FailRule, FloatArray, Interval, _check_alpha, _check_tolerance
from editguard.statistics.decision import fail_threshold

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
