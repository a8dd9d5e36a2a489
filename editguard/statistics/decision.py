"""The verdict: PASS, FAIL or INCONCLUSIVE from the bounds of ``edited - base`` under a fail rule (``decide``), and one
ability decided on its own (``decide_ability``) with the numbers a report shows: flips, p-values, the detectable
drop and the examples needed."""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy import special

from editguard.statistics.metrics import OutcomeKind
from editguard.statistics.aggregates import SumAggregate, _as_list, vectorised
from editguard.statistics.common import Decision, FailRule, FloatArray, Outcomes, _check_alpha, _check_tolerance, _z
from editguard.statistics.evidence import _EVIDENCE, Evidence, PairedOutcomes, WorstCaseEvidence
from editguard.statistics.planning import examples_needed
from editguard.statistics.score_test import mcnemar_exact


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


# --- the gate over abilities ----------------------------------------------------------------------------


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
    too; ``editguard.statistics.verdict.holm_correct`` adds Holm's later steps once every ability has its p-value.
    """
    _check_alpha(alpha)
    level = alpha if fail_alpha is None else fail_alpha
    _check_alpha(level)
    evidence = _EVIDENCE[outcomes.metric.analysis](_oriented(outcomes), resamples, _ability_seed(seed, name))
    fail_p = evidence.p_value_below(fail_threshold(rule, outcomes.tolerance))
    return _ability_decision(name, outcomes, evidence, alpha, level, (fail_p, min(1.0, fail_p * alpha / level)), rule, power)
