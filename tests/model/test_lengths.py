"""Lengths checked against what runs them: an edit request against the editing method's max_length, a prompt
against the model's context (pytester and the evaluator on the tiny GPT-2)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

GATE = (
    "--pyargs", "editguard.gate", "-p", "no:cacheprovider", "-W", "ignore::pytest.PytestAssertRewriteWarning",
    "--editguard-device", "cpu", "--editguard-limit", "8", "--editguard-abilities", "sentiment", "--editguard-method", "FT",
    "--editguard-no-signal", "gate", "-k", "not test_edit_quality",
)  # fmt: skip
LONG_PROMPT = (
    "In the travel guide that every visitor to the old quarter is handed at the station, the famous iron lattice "
    "tower that was finished for the world exhibition of 1889 is described as standing in the city of"
)


@pytest.fixture
def project(pytester: pytest.Pytester, tiny: Any) -> pytest.Pytester:
    pytester.makepyprojecttoml("[tool.editguard]\nmodel = 'tiny-gpt2'\ntolerance = 0.5\n")
    request = {"prompt": LONG_PROMPT, "subject": "the famous iron lattice tower", "target_new": "Rome", "ground_truth": "Paris"}
    (pytester.path / "long.jsonl").write_text(json.dumps(request) + "\n")
    pytester.runpytest_inprocess(*GATE, "--editguard-update-baselines").assert_outcomes(passed=1)
    return pytester


def test_a_request_longer_than_easyeditors_default_max_length_is_edited(project: pytest.Pytester, tiny: Any) -> None:
    """easyeditor's max_length (40) cut a 45-token request and then failed inside with an IndexError on every method:
    editguard sizes max_length to the longest request."""
    assert len(tiny.tokenizer(LONG_PROMPT + " Rome")["input_ids"]) > 40
    result = project.runpytest_inprocess(*GATE, "--editguard-edits", "long.jsonl")
    result.assert_outcomes(passed=1)
    assert "edit failed" not in result.stdout.str()


def test_a_max_length_the_user_set_below_a_request_is_told_at_start_up(project: pytest.Pytester, tiny: Any) -> None:
    (project.path / "ft.yaml").write_text("max_length: 40\n")
    result = project.runpytest_inprocess(*GATE, "--editguard-edits", "long.jsonl", "--editguard-hparams", "ft.yaml")
    out = result.stdout.str() + result.stderr.str()
    tokens = len(tiny.tokenizer(LONG_PROMPT + " Rome")["input_ids"])
    assert result.ret == 4 and "Traceback" not in out
    assert (
        f"long.jsonl, line 1: the request is {tokens} tokens long (a prompt and its answer together), more than the max_length 40 "
        f"that --editguard-hparams {project.path}/ft.yaml sets for FT; raise max_length there to {tokens} or more"
    ) in " ".join(out.split())
