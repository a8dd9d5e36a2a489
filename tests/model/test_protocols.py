"""The study protocol gates every ability to a verdict (its NER recall once crashed the verdict).

The default protocol's eight abilities are gated end to end in test_full_gate.py.
"""

from __future__ import annotations

import json

import pytest

GATE = ("--pyargs", "editguard.gate", "-p", "no:cacheprovider", "--editguard-model", "tiny-gpt2", "--editguard-device", "cpu",
        "--editguard-limit", "8", "--editguard-edited", "zero.safetensors", "--editguard-tolerance", "0.9", "--editguard-no-signal", "gate")  # fmt: skip


def test_every_ability_reaches_a_verdict_under_the_study_protocol(pytester: pytest.Pytester, tiny: object) -> None:
    protocol = "study"
    from editguard.editing.delta import WeightDelta

    weight = dict(tiny.model.named_parameters())["transformer.h.0.mlp.c_proj.weight"]  # type: ignore[attr-defined]
    WeightDelta({"transformer.h.0.mlp.c_proj.weight": weight.detach() * 1e-3}).save(pytester.path / "zero.safetensors")
    args = (*GATE, "--editguard-protocol", protocol)
    pytester.runpytest_inprocess(*args, "--editguard-update-baselines").assert_outcomes(passed=9)  # eight abilities and the canary
    result = pytester.runpytest_inprocess(*args, "--editguard-report", "report.json")
    rows = json.loads((pytester.path / "report.json").read_text())["abilities"]
    verdicts = {row["ability"]: row["verdict"] for row in rows if row["ability"] not in ("edit_quality", "canary")}
    assert len(verdicts) == 8, result.stdout.str()
    assert set(verdicts.values()) <= {"pass", "inconclusive", "fail"}, verdicts
    assert len(list((pytester.path / "baselines").glob("*/*.study.json"))) == 9
