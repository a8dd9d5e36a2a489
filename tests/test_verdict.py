from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from editguard.verdict import Outcome, compare, failure_message

fractions = st.floats(min_value=0.0, max_value=1.0)


def test_a_drop_within_tolerance_passes_and_beyond_fails() -> None:
    assert compare("sentiment", 0.75, 0.8, 0.05, 100).outcome is Outcome.PASS
    assert compare("sentiment", 0.74, 0.8, 0.05, 100).outcome is Outcome.FAIL


@given(fractions, fractions, fractions)
def test_verdict_is_monotone_in_the_observed_score(baseline: float, tolerance: float, observed: float) -> None:
    verdict = compare("x", observed, baseline, tolerance, 10)
    if verdict.passed:
        assert compare("x", min(1.0, observed + 0.01), baseline, tolerance, 10).passed
    assert compare("x", baseline, baseline, tolerance, 10).passed  # no change always passes


def test_failure_message_names_everything_and_ends_with_the_remedy() -> None:
    verdict = compare("sentiment", 0.5, 0.9, 0.05, 160)
    message = failure_message(verdict, dataset="SST-2", baseline_file="baselines/m/sentiment.json")
    for part in ("sentiment", "SST-2", "0.500", "0.900", "-0.400", "0.050", "n=160", "baselines/m/sentiment.json"):
        assert part in message
    assert message.endswith("--editguard-tolerance sentiment=0.41.")
