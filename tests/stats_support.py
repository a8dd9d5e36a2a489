"""Simulated paired outcomes and the gate as a run applies it, shared by the statistics tests.

(``tests/`` is on the import path through its conftest.py, so both tiers import this module.)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np
from scipy import stats as scipy_stats

from editguard import statistics as stats
from editguard.statistics.metrics import get_metric
from editguard.statistics import Decision, FailRule, PairedOutcomes
from editguard.statistics.verdict import GatedVerdict, Outcome, holm_correct

ALPHA = 0.05
TOLERANCE = 0.05
RANK = {Decision.FAIL: 0, Decision.INCONCLUSIVE: 1, Decision.PASS: 2}
ACCURACY, ROUGE, ENTITY_F1 = get_metric("accuracy"), get_metric("rouge"), get_metric("entity_f1")


def allowed_rate(rate: float, trials: int) -> float:
    """The 99% binomial upper bound of an error rate estimated from ``trials`` simulations."""
    return float(scipy_stats.binom.ppf(0.99, trials, rate)) / trials


def allowed_shortfall(coverage: float, trials: int) -> float:
    return 1.0 - allowed_rate(1.0 - coverage, trials)


def paired_binary(
    rng: np.random.Generator, n: int, base_rate: float, negative_rate: float, positive_rate: float
) -> tuple[np.ndarray, np.ndarray]:
    """0/1 outcomes for one simulated ability: P(base 1, edited 0) = negative_rate, P(0, 1) = positive_rate."""
    u = rng.random(n)
    negative = u < negative_rate
    positive = (u >= negative_rate) & (u < negative_rate + positive_rate)
    both = (u >= negative_rate + positive_rate) & (u < base_rate + positive_rate)
    base = (negative | both).astype(int)
    edited = (positive | both).astype(int)
    return base, edited


def gate(
    abilities: Mapping[str, PairedOutcomes], alpha: float = ALPHA, rule: FailRule = FailRule.MARGIN
) -> dict[str, stats.AbilityDecision]:
    """What a run does with several abilities: each is decided alone, its FAIL bound at alpha / k (as xdist
    workers do), then Holm's later steps over all of them (``verdict.holm_correct``, as the controller does)."""
    level = alpha / max(1, len(abilities))
    decided = {name: stats.decide_ability(name, paired, alpha, level, rule) for name, paired in abilities.items()}
    gated = {
        name: GatedVerdict(Outcome(result.decision.value), result.fail_p_value, result.difference, result.tolerance)
        for name, result in decided.items()
    }
    holm = holm_correct(gated, alpha, rule.value)
    return {
        name: replace(
            result, decision=Decision(holm[name].outcome.value), adjusted_fail_p_value=holm[name].adjusted_p_value
        )
        for name, result in decided.items()
    }


def binary_gate(
    rng: np.random.Generator,
    n: int,
    rates: tuple[float, float, float],
    rule: FailRule = FailRule.MARGIN,
    abilities: int = 1,
) -> dict[str, stats.AbilityDecision]:
    outcomes = {
        f"ability{i}": PairedOutcomes(ACCURACY, *paired_binary(rng, n, *rates), TOLERANCE)
        for i in range(abilities)
    }
    return gate(outcomes, alpha=ALPHA, rule=rule)


def random_null_rates(rng: np.random.Generator, drop: float) -> tuple[float, float, float]:
    """Base accuracy 0.3-0.9, positive flips 0-10%, negative flips that many plus ``drop``."""
    base_rate = rng.uniform(0.3, 0.9)
    positive = rng.uniform(0.0, 0.10)
    return base_rate, min(positive + drop, base_rate), positive


def rouge_like(rng: np.random.Generator, n: int, changed_rate: float, shift: float) -> tuple[Any, Any, float]:
    """ROUGE-like scores: base ~ Beta(2, 3); a share of examples get a new score from a shifted Beta."""
    base = rng.beta(2.0, 3.0, n)
    a, b = (2.0 + shift, 3.0) if shift >= 0 else (2.0, 3.0 - shift)
    edited = np.where(rng.random(n) < changed_rate, rng.beta(a, b, n), base)
    return base, edited, changed_rate * (a / (a + b) - 0.4)


def entity_counts(rng: np.random.Generator, n: int, lose: float, gain: float) -> tuple[Any, Any, float]:
    """Per-example [tp, predicted, gold] for both models, and the population micro-F1 difference."""
    gold = 1 + rng.poisson(1.5, n)
    found = rng.binomial(gold, 0.7)
    false_positives = rng.poisson(0.3, n)
    found_edited = found - rng.binomial(found, lose) + rng.binomial(gold - found, gain)
    base = np.column_stack([found, found + false_positives, gold])
    edited = np.column_stack([found_edited, found_edited + false_positives, gold])

    def f1(true_positives: float) -> float:
        return 2 * true_positives / (true_positives + 0.3 + 2.5)

    return base, edited, f1(2.5 * (0.7 * (1 - lose) + 0.3 * gain)) - f1(2.5 * 0.7)
