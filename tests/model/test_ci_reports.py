"""What a CI page and a person see of a real gate run (pytester, the tiny GPT-2): progress lines in the log,
the Markdown summary and $GITHUB_STEP_SUMMARY, the scores in JUnit XML, and the HTML report rendered by a real
headless browser (Debian's Chromium, which .ci/run installs)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any

import pytest

from editguard.reports.curves import draw_curves
from editguard.reports.rows import Row
from editguard.reports.run import Run
from editguard.reports.html import write_html

# FT: the tiny model's three demo edits take seconds (ROME's: minutes on 2 cores)
GATE = (
    "--pyargs", "editguard.gate", "-p", "no:cacheprovider", "-W", "ignore::pytest.PytestAssertRewriteWarning",
    "--editguard-device", "cpu", "--editguard-limit", "8", "--editguard-abilities", "nli,sentiment", "--editguard-method", "FT",
    "--editguard-no-signal", "gate",  # the tiny model guesses: gate it anyway, these tests are about the reports
)  # fmt: skip
PROBE = """<script>
window.addEventListener('load', function () {
  var found = {
    images: Array.from(document.images).map(function (i) { return [i.id, i.complete, i.naturalWidth, i.naturalHeight]; }),
    failing: Array.from(document.querySelectorAll('tr.failing')).map(function (r) { return r.dataset.ability; }),
    headings: Array.from(document.querySelectorAll('h1, h2')).map(function (h) { return h.textContent; }),
    size: [document.documentElement.scrollWidth, document.documentElement.scrollHeight]
  };
  var marker = document.createElement('pre');
  marker.id = 'editguard-probe';
  marker.textContent = JSON.stringify(found);
  document.body.appendChild(marker);
});
</script>"""


@pytest.fixture
def project(pytester: pytest.Pytester, tiny: Any, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A user project on the tiny GPT-2 (8 examples cannot settle 5 points: this project allows 0.5)."""
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    pytester.makepyprojecttoml("[tool.editguard]\nmodel = 'tiny-gpt2'\ntolerance = 0.5\n")
    return pytester


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("CI=true but chromium is not installed; .ci/run installs it (apt-get install chromium)")
    pytest.skip("chromium is not installed (apt-get install chromium); CI installs it and runs this test")


def _browser(*args: str) -> str:
    command = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1400,2000", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True).stdout


def rendered(page: Path, tmp_path: Path) -> dict[str, Any]:
    """What Chromium rendered of ``page``: its images (id, loaded, natural size), failing rows, headings, size."""
    probe = tmp_path / f"probe-{page.name}"
    probe.write_text(page.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"), encoding="utf-8")
    dom = _browser("--virtual-time-budget=5000", "--dump-dom", probe.as_uri())
    found = re.search(r'<pre id="editguard-probe">(.*?)</pre>', dom, re.S)
    assert found, f"the page did not finish loading in Chromium:\n{dom[-2000:]}"
    return dict(json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&")))


def screenshot(page: Path, out: Path) -> Path:
    _browser(f"--screenshot={out}", page.as_uri())
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return out


def _properties(junit: Path) -> dict[str, dict[str, str]]:
    cases = ElementTree.parse(junit).getroot().iter("testcase")
    return {case.get("name", ""): {p.get("name", ""): p.get("value", "") for p in case.iter("property")} for case in cases}


# ----------------------------------------------------------------------------- a gate run


def test_a_gate_run_reports_progress_summary_junit_and_html(project: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project.runpytest_inprocess(*GATE, "--editguard-update-baselines").assert_outcomes(passed=2)
    step_summary = tmp_path / "step_summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step_summary))
    result = project.runpytest_inprocess(
        *GATE, "--editguard-edit-counts", "1,3", "--editguard-markdown", "s.md", "--editguard-html", "r.html", "--junitxml", "j.xml",
    )  # fmt: skip
    assert result.ret == 1  # the edits do not take on the tiny model: edit quality fails

    # progress: one line per phase, with its time, as it happened (before the summary)
    log = result.stdout.str()
    phases = [
        r"editguard: model tiny-gpt2 loaded on cpu in \d",
        r"editguard: edit 3 FT edits \(sequential\) from demo edits .*: (read from the edit cache|computed) in \d",
        r"editguard: scored nli on the edited model: 8 examples.*",
        r"editguard: scored sentiment on the edited model: 8 examples.*",
        r"editguard: edit-count curve \(plain\): nli after 1 edit: PASS in \d",
        r"editguard: edit quality measured on 3 requests in \d",
    ]
    for phase in phases:
        assert re.search(phase, log), phase
    assert log.index("editguard: model tiny-gpt2 loaded") < log.index("= editguard =")

    summary = (project.path / "s.md").read_text()
    assert summary.startswith("## editguard: REGRESSED\n")
    assert re.search(r"^\| nli \| accuracy \| .* \| \[[-+][\d.]+, [-+][\d.]+\] \| 0\.500 \| 8 \| \d+/\d+ \| .* \| PASS \|$", summary, re.M)
    assert "- **edit_quality**: the FT edits did not take" in summary
    assert step_summary.read_text() == summary

    properties = _properties(project.path / "j.xml")
    for ability in ("nli", "sentiment"):
        case = properties[f"test_ability[{ability}]"]
        assert {"editguard.baseline", "editguard.edited", "editguard.difference", "editguard.interval", "editguard.negative_flips",
                "editguard.positive_flips", "editguard.verdict", "editguard.n", "editguard.tolerance"} <= set(case)  # fmt: skip
        assert case["editguard.n"] == "8" and case["editguard.tolerance"] == "0.5"
    assert properties["test_ability[nli]"]["editguard.verdict"] == "pass"
    assert properties["test_edit_quality"]["editguard.verdict"] == "fail"

    page = project.path / "r.html"
    shown = rendered(page, tmp_path)
    assert [(name, loaded) for name, loaded, width, _ in shown["images"] if width > 0] == [("forest", True), ("curve", True)]
    assert shown["failing"] == []  # marking a failing ability's row: test_the_html_report_renders_with_its_images_...
    assert shown["headings"][:5] == ["editguard: REGRESSED", "Abilities", "Paired difference (edited - baseline) of every ability, with its interval and the tolerance", "Edit quality", "Edit-count curve"]
    assert screenshot(page, tmp_path / "r.png").stat().st_size > 10_000


def test_a_run_that_could_not_check_says_so_everywhere_and_is_quiet_under_q(project: pytest.Pytester, tmp_path: Path) -> None:
    result = project.runpytest_inprocess(*GATE, "-q", "-k", "test_ability", "--editguard-markdown", "s.md", "--editguard-html", "r.html", "--junitxml", "j.xml")
    assert result.ret == 4
    assert "editguard: model" not in result.stdout.str()  # -q: no progress lines
    summary = (project.path / "s.md").read_text()
    assert summary.startswith("## editguard: COULD NOT CHECK\n")
    assert "- no baseline for nli at " in summary and "--editguard-update-baselines" in summary and "| ability" not in summary
    page = (project.path / "r.html").read_text()
    assert "editguard could not check 2 of 2 abilities" in page and "<li>no baseline for nli at " in page and "id='abilities'" not in page
    assert _properties(project.path / "j.xml")["test_ability[nli]"]["editguard.verdict"] == "could not check"
    assert rendered(project.path / "r.html", tmp_path)["headings"] == ["editguard: COULD NOT CHECK"]


def test_under_xdist_each_worker_writes_its_progress_to_stderr(project: pytest.Pytester) -> None:
    result = project.runpytest_subprocess(*GATE, "-n", "2", "-k", "test_ability", "--editguard-markdown", "s.md")
    assert result.ret == 4  # no baselines
    for worker in ("gw0", "gw1"):
        result.stderr.fnmatch_lines([f"[[]{worker}[]] editguard: model tiny-gpt2 loaded on cpu in * s"])
    assert (project.path / "s.md").read_text().startswith("## editguard: COULD NOT CHECK\n")  # written once, by the controller


def test_a_model_that_does_not_load_stops_the_run_and_the_summary_says_why(project: pytest.Pytester) -> None:
    result = project.runpytest_inprocess(*GATE, "--editguard-model", "nowhere/model", "--editguard-markdown", "s.md")
    assert result.ret == 4
    summary = (project.path / "s.md").read_text()
    assert summary.startswith("## editguard: COULD NOT CHECK\n") and "nowhere/model" in summary


# ----------------------------------------------------------------------------- the page in a browser


def test_the_html_report_renders_with_its_images_and_marks_failing_rows(tmp_path: Path) -> None:
    curve = {"plain": [[1, 0.9, "pass"], [5, 0.6, "fail"]]}
    rows = (
        Row("closed_qa", "BoolQ", "pass", baseline=0.5, edited=0.5, tolerance=0.05, n=160, metric="accuracy", lower=-0.02, upper=0.04, passed=True, curve=curve),
        Row("sentiment", "SST-2", "fail", baseline=0.97, edited=0.56, tolerance=0.05, n=160, metric="accuracy", lower=-0.48, upper=-0.33,
            negative_flips=69, positive_flips=3, passed=False, message="sentiment regressed ...", curve=curve,
            worsened=[{"id": "7", "prompt": "Review: dull\nSentiment:", "expected": " negative", "base": 1.0, "edited": 0.0, "parsed": True}]),
        Row("canary", "facts", "pass", baseline=1.0, edited=1.0, tolerance=0.0, n=5, metric="accuracy", passed=True),
    )  # fmt: skip
    draw_curves(tmp_path / "curve.png", rows, "m: edits")
    page = write_html(tmp_path / "report.html", Run("REGRESSED", 1, rows, (), "m", "", tmp_path / "curve.png"))
    shown = rendered(page, tmp_path)
    assert [(name, loaded, width > 0) for name, loaded, width, _ in shown["images"]] == [("forest", True, True), ("curve", True, True)]
    assert shown["failing"] == ["sentiment"]
