"""Every failed write is told once, naming the path and the cause, and never turns a verdict into another:
reports that cannot be written, a cache folder that cannot be written, baselines that cannot be (pytester, tiny GPT-2).

The tests run as root on CI machines, where a read-only mode does not stop a write: the failures are made with paths
that cannot be written by anyone (a folder where a file goes, a file where a folder goes, a link to nowhere)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

GATE = (
    "--pyargs", "editguard.gate", "-p", "no:cacheprovider", "-W", "ignore::pytest.PytestAssertRewriteWarning",
    "--editguard-device", "cpu", "--editguard-limit", "8", "--editguard-abilities", "nli,sentiment", "--editguard-method", "FT",
    "--editguard-no-signal", "gate", "-k", "not test_edit_quality",  # the tiny model's FT edits need not take here
)  # fmt: skip


@pytest.fixture
def project(pytester: pytest.Pytester, tiny: Any, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    pytester.makepyprojecttoml("[tool.editguard]\nmodel = 'tiny-gpt2'\ntolerance = 0.5\n")
    pytester.runpytest_inprocess(*GATE, "--editguard-update-baselines").assert_outcomes(passed=2)
    return pytester


def test_reports_that_cannot_be_written_are_told_and_the_verdicts_still_stand(project: pytest.Pytester) -> None:
    (project.path / "a-folder.html").mkdir()
    (project.path / "a-file").write_text("")
    step_summary = project.path / "summary-folder"
    step_summary.mkdir()
    os.environ["GITHUB_STEP_SUMMARY"] = str(step_summary)
    try:
        result = project.runpytest_inprocess(
            *GATE, "--editguard-html", "a-folder.html", "--editguard-report", "a-file/report.json", "--editguard-markdown", "ok.md"
        )
    finally:
        del os.environ["GITHUB_STEP_SUMMARY"]
    out = result.stdout.str()
    assert result.ret == 4  # the gate passed, but a report CI reads is missing: could not check, not "regressed"
    assert "Traceback" not in out
    assert "*ability*metric*verdict*" and "sentiment" in out  # the table is printed
    for sentence in (
        f"editguard: the JSON report could not be written to {project.path}/a-file/report.json (a file, or a link to nowhere, stands where a folder must be); the verdicts above stand",
        f"editguard: the HTML report could not be written to {project.path}/a-folder.html (it is a folder, not a file); the verdicts above stand",
        f"editguard: the job summary ($GITHUB_STEP_SUMMARY) could not be written to {step_summary} (it is a folder, not a file); the verdicts above stand",
    ):
        assert out.count(sentence) == 1, sentence
    assert (project.path / "ok.md").read_text().startswith("## editguard: PASS")  # the writable one was written


def test_a_cache_folder_that_cannot_be_written_is_told_once_and_the_edit_is_computed_once(project: pytest.Pytester) -> None:
    blocked = project.path / "cache-is-a-file"
    blocked.write_text("")
    result = project.runpytest_inprocess(*GATE, f"--editguard-cache-dir={blocked}/cache")
    out = result.stdout.str()
    result.assert_outcomes(passed=2)
    assert "Traceback" not in out
    assert out.count("edits (sequential) from demo edits") >= 1
    assert out.count("editguard: edit 3 FT edits") == 1  # computed once, though nli and sentiment both need it
    warning = f"warning: the cache folder {blocked}/cache cannot be written (a part of the path is a file, not a folder)"
    assert out.count(warning) == 1
    assert out.count("warning: the cache folder") == 1  # not again for cache/edits and cache/outputs inside it
    assert "(not cached: the cache folder cannot be written, see below)" in out


def test_baselines_that_cannot_be_written_are_one_sentence_and_the_old_ones_stay(project: pytest.Pytester) -> None:
    folder = project.path / "baselines" / "tiny-gpt2"
    before = (folder / "nli.json").read_bytes()
    (folder / "sentiment.json").unlink()
    (folder / "sentiment.json").mkdir()  # where the file goes, a folder: os.replace cannot put a file there
    result = project.runpytest_inprocess(*GATE, "--editguard-update-baselines")
    out = result.stdout.str()
    assert result.ret == 4 and "Traceback" not in out
    assert f"baseline {folder}/sentiment.json cannot be written (it is a folder, not a file); the file there, if any, is unchanged" in out
    assert json.loads((folder / "nli.json").read_bytes()) == json.loads(before)


def test_a_baselines_folder_that_is_a_link_to_nowhere_is_named(project: pytest.Pytester) -> None:
    folder = project.path / "baselines" / "tiny-gpt2"
    for path in folder.iterdir():
        path.unlink()
    folder.rmdir()
    folder.symlink_to(project.path / "gone")
    result = project.runpytest_inprocess(*GATE, "--editguard-update-baselines")
    assert result.ret == 4 and "Traceback" not in result.stdout.str() + result.stderr.str()
    expected = f"--editguard-baselines: {folder} is a link to {project.path}/gone, which does not exist; create the folder it points at"
    assert expected in result.stdout.str() + result.stderr.str()
