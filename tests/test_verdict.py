"""The verdict: paired, three-way, pure (no pytest import in editguard.verdict)."""

from __future__ import annotations

import math
import sys

import pytest

from editguard.metrics import get_metric
from editguard.verdict import Outcome, Policy, compare, compare_sequential, failure_message

MEAN = get_metric("accuracy").aggregate


def _outcomes(values: list[float]) -> dict[str, float]:
    return {f"e{i:03d}": value for i, value in enumerate(values)}


def _decide(base: list[float], edited: list[float], tolerance: float = 0.05, **policy: object) -> object:
    return compare("sentiment", _outcomes(base), _outcomes(edited), Policy(tolerance, **policy), aggregate=MEAN, metric="accuracy")  # type: ignore[arg-type]


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
    verdict = compare("x", base, edited, Policy(0.5), aggregate=MEAN, metric="accuracy")
    assert verdict.n == 3 and verdict.negative_flips == verdict.positive_flips == 0


def test_the_fail_bound_is_corrected_for_the_family() -> None:
    base, edited = [1.0] * 60 + [0.0] * 40, [1.0] * 47 + [0.0] * 53  # a 13-point drop on 100 examples
    alone = _decide(base, edited, tolerance=0.02)
    among_eight = _decide(base, edited, tolerance=0.02, family_size=8)
    assert among_eight.upper >= alone.upper


def test_entity_f1_counts_use_a_paired_bootstrap() -> None:
    base = {f"s{i}": [2.0, 2.0, 2.0] for i in range(60)}
    edited = {f"s{i}": [0.0, 2.0, 2.0] for i in range(60)}
    verdict = compare("ner", base, edited, Policy(0.05), aggregate=get_metric("entity_f1").aggregate, metric="entity_f1")
    assert verdict.outcome is Outcome.FAIL and math.isclose(verdict.observed, 0.0)


def test_early_stopping_settles_a_collapse_on_the_first_chunk() -> None:
    verdict = compare_sequential("sentiment", [1.0] * 400, [0.0] * 400, Policy(0.05), chunk_size=40)
    assert verdict.outcome is Outcome.FAIL and verdict.n == 40 and verdict.sequential


def test_the_verdict_module_does_not_import_pytest() -> None:
    import subprocess

    code = "import sys, editguard.verdict, editguard.stats; sys.exit('pytest' in sys.modules or 'torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


@pytest.mark.parametrize("tolerance", [0.0, 0.05, 0.2])
def test_no_drop_never_fails(tolerance: float) -> None:
    assert _decide([1.0, 0.0] * 50, [1.0, 0.0] * 50, tolerance=tolerance).outcome is not Outcome.FAIL
