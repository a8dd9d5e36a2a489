"""Baselines recorded on another stack (another transformers or torch): the gate re-scores the base model on this one,
pairs the edited model with those outcomes, and every report says so (stages/baselines.py explains the choice)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from editguard.stack import output_versions

GATE = (
    "--pyargs", "editguard.gate", "-p", "no:cacheprovider", "-W", "ignore::pytest.PytestAssertRewriteWarning",
    "--editguard-device", "cpu", "--editguard-limit", "8", "--editguard-abilities", "canary,nli,sentiment", "--editguard-method", "FT",
    "--editguard-no-signal", "gate", "-k", "not test_edit_quality",  # the tiny model's FT edits need not take here
)  # fmt: skip


def test_baselines_of_another_stack_are_rescored_here_and_said(pytester: pytest.Pytester, tiny: Any) -> None:
    pytester.makepyprojecttoml("[tool.editguard]\nmodel = 'tiny-gpt2'\ntolerance = 0.5\n")
    pytester.runpytest_inprocess(*GATE, "--editguard-update-baselines").assert_outcomes(passed=3)
    folder = pytester.path / "baselines" / "tiny-gpt2"
    stored = {}
    for path in sorted(folder.glob("*.json")):
        record = json.loads(path.read_text())
        stored[path.stem] = record["outcomes"]
        record["versions"] |= {"transformers": "4.57.1", "torch": "2.9.0+cu128"}  # as another machine recorded them
        record["outcomes"] = {key: 1 - value for key, value in record["outcomes"].items()}  # and scored differently there
        path.write_text(json.dumps(record))

    result = pytester.runpytest_inprocess(*GATE, "--editguard-report", "report.json", "--editguard-markdown", "summary.md")
    result.assert_outcomes(passed=3)
    now = ", ".join(f"{package} {version}" for package, version in sorted(output_versions().items()))
    line = (
        f"stack: baselines recorded on torch 2.9.0+cu128, transformers 4.57.1, this run on {now}: the base model was "
        "re-scored on this stack and the edited model is compared with those outcomes; 24 of 24 base outcomes differ "
        "from the stored baselines (--editguard-update-baselines records them on this stack)"
    )
    assert line in result.stdout.str()
    assert "Stack: baselines recorded on torch 2.9.0+cu128" in (pytester.path / "summary.md").read_text()
    report = json.loads((pytester.path / "report.json").read_text())
    assert report["stack"] == output_versions()
    drifts = {row["ability"]: row["stack_drift"] for row in report["abilities"] if row["stack_drift"]}
    assert {ability: (d["changed"], d["n"]) for ability, d in drifts.items()} == {"canary": (8, 8), "nli": (8, 8), "sentiment": (8, 8)}
    # the comparison used this stack's outcomes (the stored ones, flipped above, would have failed every ability)
    assert all(row["verdict"] != "fail" for row in report["abilities"])
    assert {path.stem: json.loads(path.read_text())["versions"]["torch"] for path in folder.glob("*.json")} == dict.fromkeys(stored, "2.9.0+cu128")


def test_baselines_of_this_stack_are_used_as_stored(pytester: pytest.Pytester, tiny: Any, tmp_path: Path) -> None:
    pytester.makepyprojecttoml("[tool.editguard]\nmodel = 'tiny-gpt2'\ntolerance = 0.5\n")
    pytester.runpytest_inprocess(*GATE, "--editguard-update-baselines").assert_outcomes(passed=3)
    result = pytester.runpytest_inprocess(*GATE, "--editguard-report", "report.json")
    result.assert_outcomes(passed=3)
    assert "stack:" not in result.stdout.str()
    report = json.loads((pytester.path / "report.json").read_text())
    assert all(row["stack_drift"] is None for row in report["abilities"])
