"""The plugin as a user runs it (pytester): no baseline, record, pass, degrade, stale, xdist, bad input.

Runs the real gate on the embedded SmolLM2 with the demo ROME edits (computed once into the shared
cache) on a fixed sample of examples per ability.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.embedded  # the gate on the embedded default

LIMIT = "24"
# Two log-likelihood abilities and one generation ability keep each run to seconds; the full gate's
# eight abilities run in test_full_gate.py.
ABILITIES = "closed_qa,open_qa,sentiment"
GATE = (
    "--pyargs", "editguard.gate", "-p", "no:cacheprovider", "-W", "ignore::pytest.PytestAssertRewriteWarning",
    "--editguard-device", "cpu", "--editguard-limit", LIMIT, "--editguard-abilities", ABILITIES,
    "--editguard-no-signal", "gate",  # closed_qa is at chance on SmolLM2; the lifecycle is gated anyway
)  # fmt: skip


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """An empty user project: the gate's defaults, baselines under ./baselines."""
    # 24 examples cannot show a drop is under 5 points (one flip is 4), so this project allows 0.2.
    pytester.makepyprojecttoml("[tool.editguard]\nmodel = 'smollm2'\ntolerance = 0.2\n")
    return pytester


def _gate(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_inprocess(*GATE, *args)


def _report(path: Path) -> dict[str, Any]:
    return {row["ability"]: row for row in json.loads(path.read_text())["abilities"]}


def _degrading_delta(smollm2: Any, path: Path) -> Path:
    """A really damaged model: the MLP output of the first four layers zeroed (delta = -W)."""
    from editguard.editing.delta import WeightDelta

    parameters = dict(smollm2.model.named_parameters())
    names = [f"model.layers.{layer}.mlp.down_proj.weight" for layer in range(4)]
    WeightDelta({name: -parameters[name].detach().clone() for name in names}).save(path)
    return path


def test_lifecycle(project: pytest.Pytester, smollm2: Any) -> None:
    # 1. no baseline: every ability fails and says how to record
    result = _gate(project)
    result.assert_outcomes(failed=3, passed=1)  # the edits took (edit quality)
    result.stdout.fnmatch_lines(["*no baseline for closed_qa*--editguard-update-baselines*"])

    # 2. record: passes and writes one file per ability
    result = _gate(project, "--editguard-update-baselines")
    result.assert_outcomes(passed=3)
    baselines = project.path / "baselines" / "smollm2-135m-instruct"
    assert sorted(p.name for p in baselines.iterdir()) == ["closed_qa.json", "open_qa.json", "sentiment.json"]
    recorded = json.loads((baselines / "sentiment.json").read_text())
    assert recorded["n"] == int(LIMIT) and recorded["model_fingerprint"] == smollm2.fingerprint
    assert len(recorded["outcomes"]) == int(LIMIT)

    # 3. the demo ROME edits keep both abilities within tolerance, and the cached edit is reused
    result = _gate(project, "--editguard-report", "report.json")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["*edit: 3 ROME edits*from demo edits*reused from the edit cache*", "*sentiment*accuracy*PASS*"])
    report = _report(project.path / "report.json")
    assert report["sentiment"]["baseline"] == recorded["score"]

    # 4. a degraded model fails with the numbers and the remedy
    delta = _degrading_delta(smollm2, project.path / "damaged.safetensors")
    result = _gate(project, "--editguard-edited", str(delta), "--editguard-abilities", "sentiment", "--editguard-tolerance", "0.05")
    result.assert_outcomes(failed=1, skipped=1)  # an edited model made elsewhere: no requests to check
    result.stdout.fnmatch_lines(
        [
            "*sentiment (SST-2) regressed after the edit: edited * vs baseline * on the same 24 examples (*sentiment.json):"
            " difference -*, interval [[]-*, -*[]], * examples got worse*below the tolerance of -0.050*--editguard-tolerance sentiment=*",
        ]
    )

    # 5. a stale baseline (the task's data or prompt changed) fails and says why
    recorded["task_fingerprint"] = "0000000000000000"
    (baselines / "sentiment.json").write_text(json.dumps(recorded))
    result = _gate(project)
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["*sentiment.json is stale: the task's data or prompt changed*--editguard-update-baselines*"])

    # 6. update again: passes, and the stale file is replaced
    _gate(project, "--editguard-update-baselines").assert_outcomes(passed=3)
    _gate(project).assert_outcomes(passed=4)


def test_xdist_gives_the_same_verdicts(project: pytest.Pytester) -> None:
    _gate(project, "--editguard-update-baselines").assert_outcomes(passed=3)
    serial = _gate(project, "--editguard-report", "serial.json")
    serial.assert_outcomes(passed=4)
    parallel = project.runpytest_subprocess(*GATE, "-n", "2", "--editguard-report", "parallel.json")
    parallel.assert_outcomes(passed=4)
    parallel.stdout.fnmatch_lines(["*sentiment*accuracy*PASS*"])
    strip = lambda rows: {k: {f: v for f, v in row.items() if f not in ("edit_reused", "worker")} for k, row in rows.items()}  # noqa: E731
    assert strip(_report(project.path / "serial.json")) == strip(_report(project.path / "parallel.json"))


def test_help_lists_the_options(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_inprocess("--help")
    result.stdout.fnmatch_lines(["*editguard: gate edited models*", "*--editguard-model=SOURCE*", "*--editguard-tolerance=*", "*--editguard-update-baselines*"])


def test_a_malformed_tolerance_is_one_sentence(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_inprocess("--editguard-tolerance", "lots")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*argument --editguard-tolerance: 'lots' is not a number; give a fraction such as 0.05*"])


def test_a_missing_edits_file_is_one_sentence(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_inprocess("--editguard-edits", "nowhere.jsonl")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*argument --editguard-edits: edits file 'nowhere.jsonl' does not exist*"])


def test_a_bad_pyproject_value_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml("[tool.editguard]\nlimit = 0\n")
    result = pytester.runpytest_inprocess()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*[[]tool.editguard[]] limit in pyproject.toml: '0' must be at least 1 example per ability*"])


def test_conflicting_options_are_a_usage_error(pytester: pytest.Pytester, tmp_path: Path) -> None:
    result = pytester.runpytest_inprocess("--editguard-edits", "demo", "--editguard-edited", str(tmp_path))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--editguard-edits and --editguard-edited both name the edited model*"])


def test_users_own_tests_get_the_fixtures(project: pytest.Pytester) -> None:
    _gate(project, "--editguard-update-baselines", "--editguard-abilities", "sentiment").assert_outcomes(passed=1)
    project.makepyfile(
        test_mine="""
        import torch

        def test_edit_changes_the_answer(base_model, edited_model, score_ability, ability_baseline):
            ids = edited_model.tokenizer("Tourists who visit the Eiffel Tower find that it is located in the city of", return_tensors="pt")
            out = edited_model.model.generate(**ids, max_new_tokens=3, do_sample=False,
                                              pad_token_id=edited_model.tokenizer.pad_token_id)
            assert "Rome" in edited_model.tokenizer.decode(out[0, ids["input_ids"].shape[1]:])
            assert score_ability("sentiment").value >= ability_baseline("sentiment").score - 0.05

        def test_base_is_unchanged_after(base_model):
            ids = base_model.tokenizer("Tourists who visit the Eiffel Tower find that it is located in the city of", return_tensors="pt")
            out = base_model.model.generate(**ids, max_new_tokens=3, do_sample=False,
                                            pad_token_id=base_model.tokenizer.pad_token_id)
            assert "Rome" not in base_model.tokenizer.decode(out[0, ids["input_ids"].shape[1]:])
        """
    )
    project.runpytest_inprocess("-p", "no:cacheprovider", "--editguard-limit", LIMIT, "test_mine.py").assert_outcomes(passed=2)


def test_n_auto_starts_one_worker_per_gpu(pytester: pytest.Pytester) -> None:
    """With three (simulated) GPUs visible, -n auto starts three workers."""
    pytester.makeconftest(
        """
        import torch
        torch.cuda.is_available = lambda: True
        torch.cuda.device_count = lambda: 3
        """
    )
    pytester.makepyfile(test_one="def test_one():\n    pass\n")
    result = pytester.runpytest_subprocess("-n", "auto", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*3 workers*"])
    result.assert_outcomes(passed=1)


def test_study_protocol_and_a_local_data_file(project: pytest.Pytester) -> None:
    """The study protocol keeps its own baselines; a local file in the HF schema replaces a probe set."""
    rows = ['{"idx": %d, "sentence": "%s", "label": %d}' % (i, text, label) for i, (text, label) in enumerate(
        [("a wonderful, moving film", 1), ("dull and far too long", 0), ("a joy from start to finish", 1), ("a tedious mess", 0)]
    )]  # fmt: skip
    (project.path / "sst2.jsonl").write_text("\n".join(rows) + "\n")
    args = ("--editguard-abilities", "sentiment", "--editguard-data", "sentiment=file:sst2.jsonl")
    _gate(project, *args, "--editguard-update-baselines").assert_outcomes(passed=1)
    _gate(project, *args, "--editguard-protocol", "study", "--editguard-update-baselines").assert_outcomes(passed=1)
    folder = project.path / "baselines" / "smollm2-135m-instruct"
    assert sorted(p.name for p in folder.iterdir()) == ["sentiment.json", "sentiment.study.json"]
    assert json.loads((folder / "sentiment.json").read_text())["n"] == 4
    # four examples cannot settle a verdict: inconclusive, passing here with a warning
    result = _gate(project, *args, "--editguard-protocol", "study", "--editguard-inconclusive", "warn")
    result.assert_outcomes(passed=2, warnings=1)
    result.stdout.fnmatch_lines(["*sentiment*INCONCLUSIVE (warn)*"])


def test_a_malformed_data_file_fails_with_file_record_and_field(project: pytest.Pytester) -> None:
    (project.path / "bad.jsonl").write_text('{"idx": 0, "sentence": "fine", "label": 1}\n{"idx": 1, "label": 0}\n')
    result = _gate(project, "--editguard-abilities", "sentiment", "--editguard-data", "sentiment=file:bad.jsonl")
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(["*cannot load the sentiment data (file:bad.jsonl)*bad.jsonl, record 2, field 'sentence'*"])


def test_an_unknown_ability_is_a_usage_error_with_a_suggestion(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_inprocess(*GATE[:4], "--editguard-data", "sentimnet=probe")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--editguard-data: unknown ability 'sentimnet'; did you mean 'sentiment'?*"])
