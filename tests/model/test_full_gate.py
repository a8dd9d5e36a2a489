"""The gate as the README's first command runs it: every ability, the embedded default, the demo ROME edits."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.embedded  # the gate on the embedded default

ABILITIES = ["closed_qa", "dialogue", "ner", "nli", "open_qa", "reasoning", "sentiment", "summarization"]


def test_all_eight_abilities_gate_the_demo_edits(pytester: pytest.Pytester) -> None:
    args = ("--pyargs", "editguard.gate", "-p", "no:cacheprovider", "--editguard-limit", "8", "--editguard-device", "cpu",
            "--editguard-no-signal", "gate")  # fmt: skip
    pytester.runpytest_inprocess(*args, "--editguard-update-baselines").assert_outcomes(passed=9)  # and the canary
    # 8 examples per ability cannot resolve small drops (one flipped example is 0.125), so this test
    # checks that all eight are scored and gated, with a wide tolerance and inconclusive verdicts as warnings.
    result = pytester.runpytest_inprocess(
        *args, "--editguard-report", "report.json", "--editguard-tolerance", "0.5", "--editguard-inconclusive", "warn"
    )
    result.assert_outcomes(passed=11)  # eight abilities, the canary, the edit quality and the locality property
    result.stdout.fnmatch_lines(["*ability*metric*chance*baseline*edited*diff*interval*tolerance*n*flips*p (Holm)*unparsed*verdict*"])
    report = json.loads((pytester.path / "report.json").read_text())
    gated = [row for row in report["abilities"] if row["ability"] not in ("edit_quality", "canary")]
    assert [row["ability"] for row in gated] == ABILITIES
    assert report["passed"] is True
    assert all(row["n"] == 8 and row["verdict"] in ("pass", "inconclusive") and row["passed"] for row in gated)
    assert "Holm" in report["statistics"]
