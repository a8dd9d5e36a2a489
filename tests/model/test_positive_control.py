"""The gate catches real damage (issue 13): the shipped counterfactual ROME edits collapse the embedded SmolLM2 at
the third edit (its subject, "Microsoft", is one token opening the prompt), and the gate, the canary and the
locality property all say so; the random tiny model gets "no signal"; base against base passes with no flips."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.embedded  # the gate on the embedded default

LIMIT = "24"
GATE = ("--pyargs", "editguard.gate", "-p", "no:cacheprovider", "-W", "ignore::pytest.PytestAssertRewriteWarning", "--editguard-device", "cpu")


def _rows(path: Path) -> dict[str, Any]:
    return {row["ability"]: row for row in json.loads(path.read_text())["abilities"]}


def test_three_counterfactual_rome_edits_fail_the_gate_from_the_third(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml("[tool.editguard]\nmodel = 'smollm2'\nabilities = 'sentiment,open_qa,canary,locality'\n")
    args = (*GATE, "--editguard-limit", LIMIT)
    pytester.runpytest_inprocess(*args, "--editguard-update-baselines").assert_outcomes(passed=3)
    result = pytester.runpytest_inprocess(
        *args, "--editguard-edits", "counterfact-damage", "--editguard-edit-limit", "3", "--editguard-edit-counts", "1,2,3",
        "--editguard-report", "report.json", "--editguard-curve", "curve.png", "--editguard-locality-examples", "10",
    )  # fmt: skip
    assert result.ret == 1
    rows = _rows(pytester.path / "report.json")
    for ability in ("sentiment", "open_qa"):
        row = rows[ability]
        assert row["verdict"] == "fail", row
        points = next(iter(row["curve"].values()))  # the one series: counts 1, 2, 3
        assert [point[0] for point in points] == [1, 2, 3]
        assert "fail" not in [point[2] for point in points[:2]] and points[-1][2] == "fail"
        assert row["message"].startswith(f"{ability} (")
        assert "baseline" in row["message"] and "--editguard" in row["message"]
    canary = rows["canary"]
    assert canary["verdict"] == "fail" and canary["perplexity_ratio"] > 2
    assert [point[2] for point in next(iter(canary["curve"].values()))] == ["pass", "pass", "fail"]  # trips with the abilities
    assert max(canary["relative_change"].values()) > 1  # the third edit is larger than the weight it changes
    assert (pytester.path / "curve.png").stat().st_size > 10_000
    result.stdout.fnmatch_lines(["*locality: the edit changed the answer*", "*prompt: '*", "*base: *", "*edited: *"])


def test_the_random_tiny_model_has_no_signal_where_it_guesses(pytester: pytest.Pytester, tiny: Any) -> None:
    from editguard.editing.delta import WeightDelta

    parameters = dict(tiny.model.named_parameters())
    name = next(name for name in parameters if name.endswith("mlp.c_proj.weight"))
    WeightDelta({name: 0.01 * parameters[name].detach().clone()}).save(pytester.path / "delta.safetensors")
    args = (*GATE, "--editguard-model", "tiny-gpt2", "--editguard-limit", LIMIT)
    pytester.runpytest_inprocess(*args, "--editguard-update-baselines").assert_outcomes(passed=9)
    result = pytester.runpytest_inprocess(*args, "--editguard-edited", "delta.safetensors", "--editguard-report", "report.json", "-k", "not locality")
    rows = _rows(pytester.path / "report.json")
    at_chance = [row for name, row in rows.items() if name not in ("canary", "edit_quality")]
    assert len(at_chance) == 8
    assert all(row["verdict"] == "no signal" for row in at_chance), {row["ability"]: row["verdict"] for row in at_chance}
    result.assert_outcomes(skipped=9, passed=1)  # 8 without signal and the edit quality (no requests); the canary is gated
    result.stdout.fnmatch_lines(["*NO SIGNAL*"])
    assert result.ret == 0  # no signal neither passes nor fails the gate


def test_base_against_base_passes_with_no_flips(tmp_path: Path, cache_dir: Path) -> None:
    from editguard.session import Session
    from editguard.settings import Settings
    from editguard.statistics.verdict import Outcome, Policy, compare

    settings = Settings(model="smollm2", device="cpu", cache_dir=cache_dir, baselines=tmp_path, rescore=True)
    session = Session(settings)
    for ability, metric in (("sentiment", "accuracy"), ("canary", "log_perplexity")):  # all 160 and 300 examples
        recorded, _ = session.baselines.record(ability)
        again = Session(settings).score(ability, edited=False)  # scored afresh in another session
        verdict = compare(ability, recorded.outcomes, again.outcomes, Policy(settings.tolerance_for(ability)), metric=metric)
        assert verdict.outcome is Outcome.PASS
        assert (verdict.negative_flips, verdict.positive_flips, verdict.observed) == (0, 0, verdict.baseline)
