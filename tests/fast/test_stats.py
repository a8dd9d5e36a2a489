"""The statistics of the gate: properties by hypothesis, edge cases by example.

The error-rate and coverage simulations are in tests/slow/test_stats_error_rates.py.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as scipy_stats

from editguard import statistics as stats
from editguard.statistics.metrics import Analysis, Metric, OutcomeKind, get_metric, macro_recall, mean, micro_f1
from editguard.statistics import Decision, FailRule, PairedOutcomes


from stats_support import ALPHA, TOLERANCE, RANK, ACCURACY, ROUGE, ENTITY_F1, paired_binary, gate, binary_gate, rouge_like, entity_counts


# --- Holm -----------------------------------------------------------------------------------------------


def test_holm_adjusts_a_known_example() -> None:
    p_values = {"a": 0.01, "b": 0.04, "c": 0.03}
    assert stats.holm(p_values) == pytest.approx({"a": 0.03, "b": 0.06, "c": 0.06})
    assert step_down_levels(p_values, 0.05) == pytest.approx({"a": 0.05 / 3, "b": 0.025, "c": 0.025})
    assert stats.holm({"x": 0.6, "y": 0.7}) == {"x": 1.0, "y": 1.0}
    assert stats.holm({}) == {}


def test_holm_matches_bonferroni_for_one_hypothesis_and_rejects_all_when_all_small() -> None:
    assert stats.holm({"only": 0.02}) == {"only": 0.02}
    assert stats.holm({"a": 0.001, "b": 0.002, "c": 0.003}) == pytest.approx({"a": 0.003, "b": 0.004, "c": 0.004})


p_value_maps = st.dictionaries(st.text("abcdefgh", min_size=1, max_size=3), st.floats(0, 1), min_size=1, max_size=8)


def step_down_levels(p_values: Mapping[str, float], alpha: float) -> dict[str, float]:
    """Holm's procedure as written (Holm 1979): test the smallest p at alpha/k, the next at alpha/(k-1), ... until
    the first hypothesis kept, whose level the rest share; rejected exactly where p <= its level."""
    levels: dict[str, float] = {}
    level, stopped = alpha, False
    for rank, name in enumerate(sorted(p_values, key=lambda name: (p_values[name], name))):
        if not stopped:
            level = alpha / (len(p_values) - rank)
            stopped = p_values[name] > level
        levels[name] = level
    return levels


@given(p_value_maps)
def test_holm_is_monotone_capped_and_matches_its_levels(p_values: dict[str, float]) -> None:
    adjusted = stats.holm(p_values)
    levels = step_down_levels(p_values, ALPHA)
    order = sorted(p_values, key=lambda name: (p_values[name], name))
    assert [adjusted[name] for name in order] == sorted(adjusted[name] for name in order)
    for name, p in p_values.items():
        assert p <= adjusted[name] <= 1.0
        assert (adjusted[name] <= ALPHA) == (p <= levels[name])


# --- properties -----------------------------------------------------------------------------------------

flip_counts = st.integers(1, 400).flatmap(
    lambda n: st.tuples(st.just(n), st.integers(0, n)).flatmap(
        lambda pair: st.tuples(st.just(pair[0]), st.just(pair[1]), st.integers(0, pair[0] - pair[1]))
    )
)
levels = st.sampled_from([0.001, 0.00625, 0.025, 0.05, 0.2])


@settings(max_examples=150, deadline=None)
@given(flip_counts, levels)
def test_binary_bounds_contain_the_point_negate_on_swap_and_invert_the_p_values(
    counts: tuple[int, int, int], alpha: float
) -> None:
    n, positive, negative = counts
    score = stats.PairedScore(n, positive, negative)
    swapped = stats.PairedScore(n, negative, positive)
    lower, upper = score.lower(alpha), score.upper(alpha)
    assert -1.0 <= lower <= score.point <= upper <= 1.0
    assert lower < upper
    assert swapped.upper(alpha) == pytest.approx(-lower, abs=1e-9)
    assert swapped.lower(alpha) == pytest.approx(-upper, abs=1e-9)
    if -1.0 < lower:
        assert score.p_value_above(lower) == pytest.approx(alpha, rel=1e-6)
    if upper < 1.0:
        assert score.p_value_below(upper) == pytest.approx(alpha, rel=1e-6)


@settings(max_examples=100, deadline=None)
@given(flip_counts)
def test_binary_statistic_decreases_where_its_bound_is_searched(counts: tuple[int, int, int]) -> None:
    """The bounds are roots, so the statistic each one inverts must decrease on its side of the point.

    (Beyond the point the shifted statistic need not be monotone, but it never rejects there.)
    """
    n, positive, negative = counts
    point = (positive - negative) / n
    below, above = np.linspace(-1.0, point, 400), np.linspace(point, 1.0, 400)
    assert np.all(np.diff(stats.paired_score_statistic(positive, negative, n, below, -0.5)) <= 1e-9)
    assert np.all(np.diff(stats.paired_score_statistic(positive, negative, n, above, 0.5)) <= 1e-9)
    assert np.all(stats.paired_score_statistic(positive, negative, n, above, -0.5) < 0.5)
    assert np.all(stats.paired_score_statistic(positive, negative, n, below, 0.5) > -0.5)


def unit_scores(n: int) -> st.SearchStrategy[list[float]]:
    return st.lists(st.floats(0, 1), min_size=n, max_size=n)


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 30).flatmap(lambda n: st.tuples(unit_scores(n), unit_scores(n))))
def test_bootstrap_interval_contains_the_point_and_negates_on_swap(scores: tuple[list[float], list[float]]) -> None:
    base, edited = scores
    interval = stats.paired_bootstrap(base, edited, resamples=400, seed=3)
    swapped = stats.paired_bootstrap(edited, base, resamples=400, seed=3)
    assert interval.lower <= interval.point <= interval.upper
    assert swapped.lower == pytest.approx(-interval.upper, abs=1e-9)
    assert swapped.upper == pytest.approx(-interval.lower, abs=1e-9)


bounds = st.tuples(st.floats(-1, 1), st.floats(-1, 1), st.floats(-1, 1)).map(sorted)


@given(bounds, st.floats(0, 0.5), st.floats(0, 0.5), st.sampled_from(list(FailRule)))
def test_verdict_never_worsens_as_the_tolerance_grows(
    interval: list[float], first: float, second: float, rule: FailRule
) -> None:
    lower, point, upper = interval
    small, large = sorted((first, second))
    assert RANK[stats.decide(lower, upper, point, small, rule)] <= RANK[stats.decide(lower, upper, point, large, rule)]


@settings(max_examples=40, deadline=None)
@given(st.lists(flip_counts.filter(lambda counts: counts[0] >= 20), min_size=1, max_size=4), st.floats(0, 0.3))
def test_gate_never_worsens_as_all_tolerances_grow(abilities: list[tuple[int, int, int]], extra: float) -> None:
    def decisions(tolerance: float) -> dict[str, Decision]:
        outcomes = {
            f"ability{i}": PairedOutcomes(
                ACCURACY,
                [1] * negative + [0] * positive + [1] * (n - negative - positive),
                [0] * negative + [1] * positive + [1] * (n - negative - positive),
                tolerance,
            )
            for i, (n, positive, negative) in enumerate(abilities)
        }
        return {name: result.decision for name, result in gate(outcomes).items()}

    strict, lenient = decisions(0.05), decisions(0.05 + extra)
    assert all(RANK[strict[name]] <= RANK[lenient[name]] for name in strict)


# --- the gate's report ----------------------------------------------------------------------------------


def test_gate_decisions_agree_with_their_p_values_and_report_what_is_needed() -> None:
    rng = np.random.default_rng(12)
    outcomes = {
        "sentiment": PairedOutcomes(ACCURACY, *paired_binary(rng, 300, 0.8, 0.02, 0.02), 0.05),
        "nli": PairedOutcomes(ACCURACY, *paired_binary(rng, 300, 0.6, 0.25, 0.02), 0.05),
        "closed_qa": PairedOutcomes(ACCURACY, *paired_binary(rng, 150, 0.5, 0.06, 0.03), 0.05),
        "summarization": PairedOutcomes(ROUGE, *rouge_like(rng, 200, 0.5, -0.5)[:2], 0.05),
        "ner": PairedOutcomes(ENTITY_F1, *entity_counts(rng, 200, 0.05, 0.0)[:2], 0.05),
    }
    decisions = gate(outcomes)
    assert list(decisions) == list(outcomes)
    assert decisions["sentiment"].decision is Decision.PASS
    assert decisions["nli"].decision is Decision.FAIL
    for result in decisions.values():
        assert (result.decision is Decision.PASS) == (result.pass_p_value <= ALPHA)
        assert (result.decision is Decision.FAIL) == (result.adjusted_fail_p_value <= ALPHA)
        assert result.examples_needed is None or result.decision is Decision.INCONCLUSIVE
        assert result.lower <= result.difference <= result.upper
        assert result.difference == pytest.approx(result.edited_score - result.base_score)
        assert (result.mcnemar_p_value is None) == (result.kind is not OutcomeKind.BINARY)
    assert decisions["closed_qa"].decision is Decision.INCONCLUSIVE
    needed = decisions["closed_qa"].examples_needed
    assert needed is not None and needed > 150


def test_gate_decisions_do_not_depend_on_the_order_of_abilities() -> None:
    rng = np.random.default_rng(13)
    outcomes = {
        name: PairedOutcomes(ROUGE, *rouge_like(rng, 150, 0.6, -1.0)[:2], 0.05)
        for name in ("one", "two", "three")
    }
    forward = gate(outcomes)
    backward = gate(dict(reversed(outcomes.items())))
    assert all(forward[name] == backward[name] for name in outcomes)


# --- bootstrap mechanics --------------------------------------------------------------------------------


def test_vectorised_aggregates_resample_exactly_like_the_generic_path() -> None:
    rng = np.random.default_rng(14)
    base, edited, _ = rouge_like(rng, 80, 0.5, -1.0)
    fast = stats.bootstrap_distribution(base, edited, stats.MEAN, resamples=300, seed=5)
    slow = stats.bootstrap_distribution(list(base), list(edited), lambda xs: sum(xs) / len(xs), 300, 5)
    np.testing.assert_allclose(fast.differences, slow.differences, atol=1e-12)
    assert fast.acceleration == pytest.approx(slow.acceleration, abs=1e-9)
    base_counts, edited_counts, _ = entity_counts(rng, 60, 0.1, 0.0)
    fast_f1 = stats.bootstrap_distribution(base_counts, edited_counts, stats.MICRO_F1, 300, 5)
    slow_f1 = stats.bootstrap_distribution(base_counts.tolist(), edited_counts.tolist(), micro_f1, 300, 5)
    np.testing.assert_allclose(fast_f1.differences, slow_f1.differences, atol=1e-12)


def test_micro_f1_aggregate_matches_the_metric() -> None:
    counts: list[float | list[float]] = [[1.0, 2.0, 2.0], [0.0, 1.0, 0.0], [3.0, 3.0, 4.0], [0.0, 0.0, 0.0]]
    assert stats.MICRO_F1(counts) == pytest.approx(micro_f1(counts))
    assert stats.MICRO_F1([[0, 0, 0]]) == 1.0


def test_the_fast_path_is_chosen_for_the_aggregates_it_knows() -> None:
    assert stats.vectorised(get_metric("entity_f1").aggregate) is stats.MICRO_F1
    assert stats.vectorised(get_metric("rouge").aggregate) is stats.MEAN
    assert stats.vectorised(macro_recall) is macro_recall


def test_another_counts_aggregate_is_bootstrapped_as_itself() -> None:
    """The study's macro recall over (found, gold) pairs per type: its own aggregate, and flips per sentence."""
    rng = np.random.default_rng(18)
    gold = rng.integers(0, 3, (200, 3))
    found = rng.binomial(gold, 0.8)
    lost = np.where(rng.random((200, 1)) < 0.3, rng.binomial(found, 0.5), found)
    base: list[Any] = np.stack([found, gold], axis=2).reshape(200, 6).astype(float).tolist()
    edited: list[Any] = np.stack([lost, gold], axis=2).reshape(200, 6).astype(float).tolist()
    result = stats.decide_ability("ner", PairedOutcomes(get_metric("study_entity_recall"), base, edited, 0.05), resamples=300)
    assert result.base_score == pytest.approx(macro_recall(base)) and result.edited_score == pytest.approx(macro_recall(edited))
    assert result.difference == pytest.approx(result.edited_score - result.base_score)
    assert result.lower <= result.difference <= result.upper and result.positive_flips == 0
    assert 0 < result.negative_flips == sum(macro_recall([e]) < macro_recall([b]) for b, e in zip(base, edited))


def test_lower_is_better_decides_on_the_swapped_difference() -> None:
    error_rate = Metric("error_rate", "wrong answers", mean, OutcomeKind.BINARY, Analysis.SCORE_INTERVAL, False)
    base, edited = paired_binary(np.random.default_rng(19), 300, 0.3, 0.02, 0.12)  # errors rise by about 0.1
    lower = stats.decide_ability("qa", PairedOutcomes(error_rate, base, edited, 0.05))
    swapped = stats.decide_ability("qa", PairedOutcomes(ACCURACY, edited, base, 0.05))
    assert (lower.base_score, lower.edited_score) == (swapped.edited_score, swapped.base_score)
    assert lower.difference == swapped.difference == pytest.approx(lower.base_score - lower.edited_score)
    assert (lower.decision, lower.lower, lower.upper) == (Decision.FAIL, swapped.lower, swapped.upper)
    assert (lower.negative_flips, lower.positive_flips) == (swapped.negative_flips, swapped.positive_flips)
    assert lower.negative_flips > lower.positive_flips


def test_bootstrap_is_seeded_and_fast() -> None:
    rng = np.random.default_rng(15)
    base, edited, _ = rouge_like(rng, 500, 0.5, -1.0)
    started = time.perf_counter()
    first = stats.paired_bootstrap(base, edited, resamples=2000, seed=0)
    assert time.perf_counter() - started < 1.0  # about 0.02 s
    assert stats.paired_bootstrap(base, edited, resamples=2000, seed=0) == first
    assert stats.paired_bootstrap(base, edited, resamples=2000, seed=1) != first


# --- binary summaries -----------------------------------------------------------------------------------


def test_paired_summary_counts_flips() -> None:
    summary = stats.paired_summary([1, 1, 0, 0, 1], [1, 0, 1, 0, 0])
    assert (summary.n, summary.negative_flips, summary.positive_flips) == (5, 2, 1)
    assert summary.negative_flip_rate == pytest.approx(0.4)
    assert summary.positive_flip_rate == pytest.approx(0.2)
    assert summary.difference == pytest.approx(-0.2)
    assert summary.difference == pytest.approx(summary.edited_mean - summary.base_mean)


def test_mcnemar_exact_matches_the_binomial_test() -> None:
    assert stats.mcnemar_exact(0, 0) == 1.0
    assert stats.mcnemar_exact(7, 2) == pytest.approx(scipy_stats.binomtest(2, 9, 0.5).pvalue)
    assert stats.mcnemar_exact(2, 7) == stats.mcnemar_exact(7, 2)
    assert stats.mcnemar_exact(10, 0) == pytest.approx(2 * 0.5**10)


def test_non_inferiority_p_value_agrees_with_the_lower_bound() -> None:
    rng = np.random.default_rng(16)
    base, edited = paired_binary(rng, 400, 0.7, 0.03, 0.02)
    p = stats.non_inferiority_p_value(base, edited, TOLERANCE)
    lower = stats.PairedScore.from_summary(stats.paired_summary(base, edited)).lower(ALPHA)
    assert (p <= ALPHA) == (lower > -TOLERANCE)
    assert p < 0.01


# --- planning -------------------------------------------------------------------------------------------


def test_sample_size_formulas() -> None:
    # (1.6449 + 0.8416)^2 * (0.21 + 0.21) / 0.05^2 = 1038.7
    assert stats.unpaired_sample_size(0.7, 0.7, 0.05) == 1039
    assert stats.paired_sample_size(0.04, 0.0, 0.05) == 99
    assert stats.minimum_detectable_effect(400, 0.04) == pytest.approx(2.4865 * 0.01, rel=1e-4)
    assert stats.examples_needed(100, -0.08, 0.04, -0.02, 0.05) == 400
    assert stats.examples_needed(100, -0.2, -0.02, -0.11, 0.05) == 225  # (0.09 / 0.06)^2 * 100
    assert stats.examples_needed(100, -0.2, -0.02, -0.11, 0.05, FailRule.SIGNIFICANT) == 100  # already below 0
    assert stats.examples_needed(100, -0.1, 0.0, -0.05, 0.05) is None


def test_minimum_detectable_drop_is_what_the_gate_fails_at_with_the_requested_power() -> None:
    """Simulate at the drop the gate reports as detectable for its own data: FAIL about 80% of the time.

    It is a normal-theory projection from one observed interval, so a little optimistic: 0.67-0.82 across seeds.
    """
    rng = np.random.default_rng(17)
    reported = binary_gate(rng, 400, (0.7, 0.06, 0.01))["ability0"]
    drop = reported.minimum_detectable_drop
    trials = 300
    fails = sum(
        binary_gate(rng, 400, (0.7, 0.01 + drop, 0.01))["ability0"].decision is Decision.FAIL for _ in range(trials)
    )
    assert 0.6 <= fails / trials <= 0.95


# --- edge cases -----------------------------------------------------------------------------------------


def test_no_examples_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="no examples"):
        stats.paired_summary([], [])
    with pytest.raises(ValueError, match="no examples"):
        stats.paired_bootstrap([], [])
    with pytest.raises(ValueError, match="no examples"):
        gate({"empty": PairedOutcomes(ACCURACY, [], [], 0.05)})
    with pytest.raises(ValueError, match="no examples"):
        gate({"empty": PairedOutcomes(ROUGE, [], [], 0.05)})
    with pytest.raises(ValueError, match="no examples"):
        stats.sequential_gate([], 0.05)
    with pytest.raises(ValueError, match="no examples"):
        stats.confidence_sequence([])


def test_bad_inputs_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="aligned"):
        stats.paired_summary([1, 0], [1])
    with pytest.raises(ValueError, match="0 and 1"):
        stats.paired_summary([1, 0.5], [1, 0])
    with pytest.raises(ValueError, match="alpha"):
        stats.decide_ability("qa", PairedOutcomes(ACCURACY, [1], [1], 0.05), alpha=0.7)
    with pytest.raises(ValueError, match="tolerance"):
        stats.decide(-0.1, 0.1, 0.0, -0.01)
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        stats.sequential_gate([2.0], 0.05)
    with pytest.raises(ValueError, match="true positives"):
        stats.MICRO_F1([[1, 2]])


def test_identical_outcomes_pass_with_an_honest_nonzero_width() -> None:
    outcomes = [1, 0, 1, 1] * 50  # n = 200, nothing changed
    interval = stats.paired_difference_interval(outcomes, outcomes)
    assert interval.point == 0.0
    assert -0.05 < interval.lower < -0.005 and 0.005 < interval.upper < 0.05
    result = gate({"qa": PairedOutcomes(ACCURACY, outcomes, outcomes, 0.05)})["qa"]
    assert result.decision is Decision.PASS and result.mcnemar_p_value == 1.0
    scores = list(np.linspace(0, 1, 200))
    summary = gate({"rouge": PairedOutcomes(ROUGE, scores, scores, 0.05)})["rouge"]
    assert summary.decision is Decision.PASS and summary.lower < 0 < summary.upper


def test_all_discordant_outcomes() -> None:
    lost = stats.paired_difference_interval([1] * 50, [0] * 50)
    assert lost.point == lost.lower == -1.0 and lost.upper < -0.8
    gained = stats.paired_difference_interval([0] * 50, [1] * 50)
    assert gained.point == gained.upper == 1.0 and gained.lower > 0.8
    both_ways = stats.paired_difference_interval([1, 0] * 25, [0, 1] * 25)
    assert both_ways.point == 0.0 and both_ways.lower < -0.2 and both_ways.upper > 0.2
    result = gate({"qa": PairedOutcomes(ACCURACY, [1] * 50, [0] * 50, 0.05)})["qa"]
    assert result.decision is Decision.FAIL and result.negative_flips == 50


def test_one_example() -> None:
    interval = stats.paired_difference_interval([1], [1])
    assert interval.lower < 0 < interval.upper
    assert stats.paired_bootstrap([0.2], [0.5]) == stats.Interval(0.3, 0.3, 0.3, 0.05)
    assert stats.sequential_gate([0.0], 0.05).decision is Decision.INCONCLUSIVE
