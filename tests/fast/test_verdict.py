"""The verdict: paired, three-way, pure (no pytest import in editguard.statistics.verdict), read from the metric's record;
and Holm's correction over abilities, alone and through the report's rows."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest

from editguard.statistics.metrics import Metric, OutcomeKind, macro_recall, mean, register_metric, unregister_metric
from editguard.reports.rows import Row
from editguard.reports.run import with_holm
from editguard.statistics.verdict import (
    GatedVerdict,
    Outcome,
    Policy,
    Verdict,
    compare,
    compare_sequential,
    failure_message,
    holm_correct,
)


@pytest.fixture
def register() -> Iterator[Callable[..., Metric]]:
    """``register_metric`` for one test: whatever it registers is unregistered afterwards."""
    names: list[str] = []

    def add(*args: Any, **kwargs: Any) -> Metric:
        metric = register_metric(*args, **kwargs)
        names.append(metric.name)
        return metric

    yield add
    for name in names:
        unregister_metric(name)


def _outcomes(values: list[Any]) -> dict[str, Any]:
    return {f"e{i:03d}": value for i, value in enumerate(values)}


def _decide(base: list[float], edited: list[float], tolerance: float = 0.05, **policy: Any) -> Verdict:
    return compare("sentiment", _outcomes(base), _outcomes(edited), Policy(tolerance, **policy), metric="accuracy")


def test_identical_answers_on_enough_examples_pass() -> None:
    verdict = _decide([1.0, 0.0] * 100, [1.0, 0.0] * 100)
    assert verdict.outcome is Outcome.PASS and verdict.passed
    assert (verdict.negative_flips, verdict.positive_flips, verdict.n) == (0, 0, 200)
    assert -0.05 < verdict.lower <= 0.0 <= verdict.upper


def test_a_collapse_fails() -> None:
    verdict = _decide([1.0] * 150 + [0.0] * 50, [0.0] * 200)
    assert verdict.outcome is Outcome.FAIL and not verdict.passed
    assert verdict.negative_flips == 150 and verdict.upper < -0.05
    message = failure_message(verdict, dataset="SST-2", baseline_file="b.json")
    assert "regressed" in message and "--editguard-tolerance sentiment=" in message


def test_too_few_examples_are_inconclusive_and_the_policy_decides() -> None:
    base, edited = [1.0] * 10 + [0.0] * 10, [1.0] * 9 + [0.0, 1.0] + [0.0] * 9
    strict = _decide(base, edited)
    assert strict.outcome is Outcome.INCONCLUSIVE and not strict.passed
    assert strict.examples_needed is not None and strict.examples_needed > 20
    assert "inconclusive" in failure_message(strict, dataset="SST-2", baseline_file="b.json")
    assert _decide(base, edited, inconclusive="warn").passed


def test_examples_are_matched_by_id_not_position() -> None:
    base = {"a": 1.0, "b": 0.0, "c": 1.0}
    edited = {"c": 1.0, "a": 1.0, "b": 0.0, "extra": 0.0}
    verdict = compare("x", base, edited, Policy(0.5), metric="accuracy")
    assert verdict.n == 3 and verdict.negative_flips == verdict.positive_flips == 0


def test_the_fail_bound_is_corrected_for_the_family() -> None:
    base, edited = [1.0] * 60 + [0.0] * 40, [1.0] * 47 + [0.0] * 53  # a 13-point drop on 100 examples
    alone = _decide(base, edited, tolerance=0.02)
    among_eight = _decide(base, edited, tolerance=0.02, family_size=8)
    assert among_eight.upper >= alone.upper


def test_entity_f1_counts_use_a_paired_bootstrap() -> None:
    base = {f"s{i}": [2.0, 2.0, 2.0] for i in range(60)}
    edited = {f"s{i}": [0.0, 2.0, 2.0] for i in range(60)}
    verdict = compare("ner", base, edited, Policy(0.05), metric="entity_f1")
    assert verdict.outcome is Outcome.FAIL and math.isclose(verdict.observed, 0.0)


def test_early_stopping_settles_a_collapse_on_the_first_chunk() -> None:
    verdict = compare_sequential("sentiment", [1.0] * 400, [0.0] * 400, Policy(0.05), chunk_size=40, metric="accuracy")
    assert verdict.outcome is Outcome.FAIL and verdict.n == 40 and verdict.sequential


def test_the_verdict_module_does_not_import_pytest() -> None:
    import subprocess

    code = "import sys, editguard.statistics.verdict, editguard.statistics; sys.exit('pytest' in sys.modules or 'torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


@pytest.mark.parametrize("tolerance", [0.0, 0.05, 0.2])
def test_no_drop_never_fails(tolerance: float) -> None:
    assert _decide([1.0, 0.0] * 50, [1.0, 0.0] * 50, tolerance=tolerance).outcome is not Outcome.FAIL


# --- every metric through its record ------------------------------------------------------------------------


def _study_counts(found: list[tuple[int, int]], sentences: int) -> dict[str, list[float]]:
    """Per sentence, (found, gold) for each of the study's entity types; the same pattern in every sentence."""
    return _outcomes([[float(value) for pair in found for value in pair]] * sentences)


def test_study_entity_recall_counts_gate_through_compare() -> None:
    base = _study_counts([(2, 2), (1, 1), (1, 2)], 80)
    same = compare("ner", base, base, Policy(0.05), metric="study_entity_recall")
    assert same.outcome is Outcome.PASS and same.baseline == pytest.approx(macro_recall(list(base.values())))
    lost = compare("ner", base, _study_counts([(0, 2), (1, 1), (0, 2)], 80), Policy(0.05), metric="study_entity_recall")
    assert lost.outcome is Outcome.FAIL and lost.negative_flips == 80 and lost.positive_flips == 0
    assert lost.difference == pytest.approx(1 / 3 - (1 + 1 + 0.5) / 3)


def test_study_entity_recall_with_mixed_changes_gives_a_sensible_verdict() -> None:
    base = {**_study_counts([(2, 2), (1, 1), (1, 2)], 60)}
    edited = {key: ([1.0, 2.0, 1.0, 1.0, 1.0, 2.0] if int(key[1:]) % 10 == 0 else value) for key, value in base.items()}
    verdict = compare("ner", base, edited, Policy(0.05), metric="study_entity_recall")
    assert verdict.negative_flips == 6 and verdict.outcome is not Outcome.FAIL
    assert verdict.lower <= verdict.difference <= verdict.upper < 0


@pytest.fixture
def token_f1(register: Callable[..., Metric]) -> Metric:
    return register("token_f1", "SQuAD token F1 per example, averaged", mean, OutcomeKind.CONTINUOUS)


def test_a_registered_scalar_metric_passes_when_unchanged(token_f1: Metric) -> None:
    scores = _outcomes([(i % 11) / 10 for i in range(200)])
    verdict = compare("open_qa", scores, scores, Policy(0.05), metric="token_f1")
    assert verdict.outcome is Outcome.PASS and verdict.difference == 0.0


def test_a_registered_scalar_metric_fails_when_clearly_dropped(token_f1: Metric) -> None:
    values = [0.3 + (i % 8) / 10 for i in range(200)]
    verdict = compare("open_qa", _outcomes(values), _outcomes([v - 0.3 for v in values]), Policy(0.05), metric="token_f1")
    assert verdict.outcome is Outcome.FAIL and verdict.negative_flips == 200
    assert verdict.difference == pytest.approx(-0.3) and verdict.upper < -0.05


def test_an_unknown_metric_is_a_clear_error() -> None:
    with pytest.raises(KeyError, match="did you mean 'rouge'"):
        compare("summarization", {"a": 0.5}, {"a": 0.5}, Policy(0.05), metric="rogue")


@pytest.fixture
def error_rate(register: Callable[..., Metric]) -> Metric:
    return register("error_rate", "fraction of examples answered wrong", mean, OutcomeKind.BINARY, higher_is_better=False)


def test_lower_is_better_counts_a_rise_as_the_drop(error_rate: Metric) -> None:
    base, more_errors = [1.0] * 40 + [0.0] * 160, [1.0] * 160 + [0.0] * 40
    worse = compare("sentiment", _outcomes(base), _outcomes(more_errors), Policy(0.05), metric="error_rate")
    assert worse.outcome is Outcome.FAIL and (worse.baseline, worse.observed) == (0.2, 0.8)
    assert worse.difference == pytest.approx(-0.6) and worse.upper < -0.05
    assert (worse.negative_flips, worse.positive_flips) == (120, 0)
    assert "lower is better" in failure_message(worse, dataset="SST-2", baseline_file="b.json")
    better = compare("sentiment", _outcomes(more_errors), _outcomes(base), Policy(0.05), metric="error_rate")
    assert better.outcome is Outcome.PASS and better.difference == pytest.approx(0.6)
    assert (better.negative_flips, better.positive_flips) == (0, 120)


def test_early_stopping_is_oriented_too_and_refused_where_it_does_not_apply(error_rate: Metric) -> None:
    verdict = compare_sequential("sentiment", [0.0] * 400, [1.0] * 400, Policy(0.05), chunk_size=40, metric="error_rate")
    assert verdict.outcome is Outcome.FAIL and verdict.n == 40 and verdict.negative_flips == 40
    with pytest.raises(ValueError, match="cannot stop early"):
        compare_sequential("ner", [1.0], [1.0], Policy(0.05), chunk_size=40, metric="entity_f1")


# --- Holm over abilities ------------------------------------------------------------------------------------


def _gated(outcome: Outcome, p_value: float, difference: float = -0.1, sequential: bool = False) -> GatedVerdict:
    return GatedVerdict(outcome, p_value, difference, 0.05, sequential)


def test_holm_turns_an_inconclusive_it_rejects_into_a_fail() -> None:
    # alpha / 3 = 0.0167 let "nli" fail alone; Holm's second step tests "qa" at alpha / 2 = 0.025
    gated = {"nli": _gated(Outcome.FAIL, 0.001), "qa": _gated(Outcome.INCONCLUSIVE, 0.02), "ner": _gated(Outcome.PASS, 0.9)}
    decisions = holm_correct(gated, 0.05)
    assert {name: d.outcome for name, d in decisions.items()} == {"nli": Outcome.FAIL, "qa": Outcome.FAIL, "ner": Outcome.PASS}
    assert decisions["qa"].adjusted_p_value == pytest.approx(0.04)
    assert holm_correct({**gated, "qa": _gated(Outcome.INCONCLUSIVE, 0.03)}, 0.05)["qa"].outcome is Outcome.INCONCLUSIVE


def test_holm_leaves_a_pass_alone() -> None:
    decisions = holm_correct({"sentiment": _gated(Outcome.PASS, 0.001), "nli": _gated(Outcome.PASS, 0.5)}, 0.05)
    assert decisions["sentiment"].outcome is Outcome.PASS and decisions["sentiment"].adjusted_p_value == pytest.approx(0.002)


def test_holm_leaves_an_early_stopped_verdict_alone() -> None:
    decisions = holm_correct({"qa": _gated(Outcome.INCONCLUSIVE, 0.001, sequential=True)}, 0.05)
    assert decisions["qa"].outcome is Outcome.INCONCLUSIVE


def test_the_significant_rule_needs_the_point_drop_beyond_the_tolerance() -> None:
    within, beyond = _gated(Outcome.INCONCLUSIVE, 0.001, -0.03), _gated(Outcome.INCONCLUSIVE, 0.001, -0.08)
    assert holm_correct({"qa": within}, 0.05, "significant")["qa"].outcome is Outcome.INCONCLUSIVE
    assert holm_correct({"qa": beyond}, 0.05, "significant")["qa"].outcome is Outcome.FAIL
    assert holm_correct({"qa": within}, 0.05, "margin")["qa"].outcome is Outcome.FAIL
    with pytest.raises(ValueError, match="fail_rule"):
        holm_correct({"qa": within}, 0.05, "strict")


def test_holm_reads_what_it_needs_from_a_verdict() -> None:
    verdict = _decide([1.0] * 60 + [0.0] * 40, [1.0] * 47 + [0.0] * 53, tolerance=0.02, family_size=8)
    gated = GatedVerdict.of(verdict)
    assert (gated.outcome, gated.p_value, gated.difference) == (verdict.outcome, verdict.p_value, verdict.difference)


def _row(ability: str, verdict: str, p_value: float | None, edited: float = 0.6, **fields: Any) -> Row:
    fields = {"metric": "accuracy", **fields}
    return Row(ability, "data", verdict, baseline=0.7, edited=edited, tolerance=0.05, p_value=p_value, **fields)


def test_the_report_applies_holm_to_its_rows() -> None:
    rows = [
        _row("nli", "fail", 0.001, passed=False),
        _row("qa", "inconclusive", 0.02, passed=False),
        _row("sentiment", "pass", 0.9, edited=0.7, passed=True),
        _row("ner", "recorded", None),
    ]
    corrected, changed = with_holm(rows, 0.05, "margin")
    assert changed and [row.verdict for row in corrected] == ["fail", "fail", "pass", "recorded"]
    assert corrected[1].note == "failed by Holm over all abilities" and corrected[1].passed is False
    assert corrected[1].adjusted_p_value == pytest.approx(0.04)
    assert replace(corrected[2], adjusted_p_value=None) == rows[2] and corrected[3] == rows[3]
    assert with_holm(rows[2:], 0.05, "margin") == ([replace(rows[2], adjusted_p_value=0.9), rows[3]], False)


def test_the_report_orients_a_lower_is_better_row(error_rate: Metric) -> None:
    within = _row("qa", "inconclusive", 0.001, edited=0.72, metric="error_rate")  # errors rose 0.02: within 0.05
    beyond = _row("qa", "inconclusive", 0.001, edited=0.8, metric="error_rate")  # errors rose 0.1
    assert with_holm([within], 0.05, "significant")[0][0].verdict == "inconclusive"
    assert with_holm([beyond], 0.05, "significant")[0][0].verdict == "fail"


def test_a_fail_says_the_rule_that_decided_it() -> None:
    """Under --editguard-fail-rule significant the message does not claim the whole interval lies below the tolerance."""
    from editguard.statistics.verdict import Policy, Verdict, failure_message

    def message(rule: str) -> str:
        verdict = Verdict("nli", 0.8, 0.6, 0.05, 400, Outcome.FAIL, -0.3, -0.02, 90, 10, 0.001, policy=Policy(0.05, fail_rule=rule))
        return failure_message(verdict, dataset="RTE", baseline_file="b.json")

    assert "the whole interval lies below the tolerance of -0.050" in message("margin")
    assert "the drop is significant and larger than the tolerance of -0.050" in message("significant")
    assert "the whole interval" not in message("significant")
