"""Editing in the gate, as a user runs it: methods, edited models made elsewhere, edit quality, the edit-count curve."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.embedded  # the gate on the embedded default

LIMIT = "16"
GATE = (
    "--pyargs", "editguard.gate", "-p", "no:cacheprovider", "-W", "ignore::pytest.PytestAssertRewriteWarning",
    "--editguard-device", "cpu", "--editguard-limit", LIMIT, "--editguard-abilities", "sentiment,closed_qa",
    "--editguard-no-signal", "gate",  # closed_qa is at chance on SmolLM2; these tests are about the edits
)  # fmt: skip


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyprojecttoml("[tool.editguard]\nmodel = 'smollm2'\ntolerance = 0.3\n")
    pytester.runpytest_inprocess(*GATE, "--editguard-update-baselines").assert_outcomes(passed=2)
    return pytester


def _rows(path: Path) -> dict[str, Any]:
    return {row["ability"]: row for row in json.loads(path.read_text())["abilities"]}


def test_checkpoint_delta_file_and_in_process_edits_give_the_same_verdicts(project: pytest.Pytester, smollm2: Any, cache_dir: Path) -> None:
    from editguard.editing.delta import applied
    from editguard.settings import Settings
    from editguard.stages.edits import Edits

    project.runpytest_inprocess(*GATE, "--editguard-report", "in_process.json").assert_outcomes(passed=3)
    delta = Edits(Settings(model="smollm2", device="cpu", cache_dir=cache_dir), lambda: smollm2).primary.delta
    delta.save(project.path / "edit.safetensors")
    with applied(smollm2.model, delta):
        smollm2.model.save_pretrained(project.path / "edited-checkpoint", safe_serialization=True)
    for name, source in [("delta.json", "edit.safetensors"), ("checkpoint.json", "edited-checkpoint")]:
        result = project.runpytest_inprocess(*GATE, "--editguard-edited", source, "--editguard-report", name)
        result.assert_outcomes(passed=2, skipped=1)  # no requests given: edit quality is skipped
    fields = ("verdict", "baseline", "edited", "n", "negative_flips", "positive_flips")
    in_process = _rows(project.path / "in_process.json")
    for name in ("delta.json", "checkpoint.json"):
        other = _rows(project.path / name)
        for ability in ("closed_qa", "sentiment"):
            assert {f: other[ability][f] for f in fields} == {f: in_process[ability][f] for f in fields}, (name, ability)


def test_the_edit_count_curve_with_and_without_rect(project: pytest.Pytester) -> None:
    project.runpytest_inprocess(*GATE, "--editguard-abilities", "canary", "--editguard-update-baselines").assert_outcomes(passed=1)
    result = project.runpytest_inprocess(
        *GATE, "--editguard-abilities", "sentiment,canary", "--editguard-edit-counts", "1,3", "--editguard-rect", "0.4",
        "--editguard-curve", "curve.png", "--editguard-report", "report.json", "--editguard-inconclusive", "warn",
    )  # fmt: skip
    result.stdout.fnmatch_lines([
        "*canary: first edit count -- plain: FAIL at *, score above baseline + tolerance at *; RECT 40%: FAIL at *",
        "*sentiment: first edit count -- plain: FAIL at *, score below baseline - tolerance at *; RECT 40%: FAIL at *",
        "*edit-count curve: *curve.png*",
    ])  # fmt: skip
    assert (project.path / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = _rows(project.path / "report.json")
    for ability in ("sentiment", "canary"):
        curve = rows[ability]["curve"]
        assert [point[0] for point in curve["plain"]] == [1, 3] and [point[0] for point in curve["RECT 40%"]] == [1, 3]
    canary = rows["canary"]["curve"]  # a continuous outcome: RECT's smaller delta reads every sentence differently
    assert all(plain[1] != rect[1] for plain, rect in zip(canary["plain"], canary["RECT 40%"]))


def test_an_edit_that_does_not_take_fails_the_gate(project: pytest.Pytester) -> None:
    """KN, sequentially, loses each edit to the next on the embedded default: reliability 0 fails."""
    result = project.runpytest_inprocess(*GATE, "--editguard-method", "KN", "--editguard-inconclusive", "warn")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*the KN edits did not take*reliability*--editguard-min-reliability*"])


def test_an_unknown_method_and_mode_are_usage_errors(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_inprocess("--editguard-method", "GRACE")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--editguard-method: 'GRACE' is not a method; use one of ROME, MEMIT, FT, KN, MEND*"])
    result = pytester.runpytest_inprocess("--editguard-edit-counts", "0,5")
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_two_xdist_workers_asking_for_the_same_edit_compute_it_once(pytester: pytest.Pytester, tmp_path: Path) -> None:
    """A fresh cache, two workers, two tests that both need the edit: one computes it, the other waits and reuses it."""
    cache = tmp_path / "cache"
    args = (
        "--pyargs", "editguard.gate", "-p", "no:cacheprovider", "--editguard-model", "tiny-gpt2", "--editguard-device", "cpu",
        "--editguard-method", "FT", "--editguard-limit", "4", "--editguard-abilities", "nli,sentiment",
        "--editguard-tolerance", "0.5", "--editguard-cache-dir", str(cache), "--editguard-inconclusive", "warn",
        "--editguard-no-signal", "gate",  # the tiny model guesses; gated anyway, so both workers need the edit
    )  # fmt: skip
    pytester.runpytest_subprocess(*args, "--editguard-update-baselines").assert_outcomes(passed=2)
    result = pytester.runpytest_subprocess(*args, "-n", "2", "--editguard-report", "report.json", "-k", "not test_edit_quality")
    assert result.ret == pytest.ExitCode.OK  # (FT's edits need not take on a toy: edit quality is left out)
    assert len(list((cache / "edits").glob("*/edit.json"))) == 3  # one editing run: the edit, and those of its first 1 and 2 requests
    rows = _rows(pytester.path / "report.json")
    gated = [rows[ability] for ability in ("nli", "sentiment")]
    assert {row["worker"] for row in gated} == {"gw0", "gw1"}  # both workers asked for the edit
    assert sorted(row["edit_reused"] for row in gated) == [False, True]  # one computed it, the other reused it
