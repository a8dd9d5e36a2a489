"""What a CI page and a person read, without a model: progress lines, the Markdown summary, the HTML page's
content, the JUnit properties, and the GitHub Actions recipe in docs/."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from editguard import progress
from editguard.errors import COULD_NOT_CHECK as COULD_NOT_CHECK_STATUS
from editguard.reports.curves import draw_curves
from editguard.reports.junit import junit_properties
from editguard.reports.rows import COULD_NOT_CHECK, Row
from editguard.settings import OPTIONS
from editguard.reports.markdown import STEP_SUMMARY, markdown, write_markdown
from editguard.reports.run import Run, problems_of, run_verdict
from editguard.reports.html import html_report

ROOT = Path(__file__).resolve().parents[2]
NO_BASELINE = "no baseline for sentiment at baselines/m/sentiment.json; record it by running the base model once with --editguard-update-baselines"
REMEDY = "sentiment (SST-2) regressed after the edit: ... allow it with --editguard-tolerance sentiment=0.49."
WORSE = [{"id": "7", "prompt": "Review: dull <b>film</b>\nSentiment:", "expected": " negative", "base": 1.0, "edited": 0.0, "parsed": True}]

PASSED = Row(
    "closed_qa", "BoolQ", "pass", baseline=0.5, edited=0.5, tolerance=0.05, n=160, metric="accuracy", lower=-0.025,
    upper=0.041, negative_flips=1, positive_flips=1, p_value=1.0, adjusted_p_value=1.0, passed=True, worsened=[],
    edit="3 ROME edits (sequential) from demo edits",
)  # fmt: skip
FAILED = Row(
    "sentiment", "SST-2", "fail", baseline=0.969, edited=0.556, tolerance=0.05, n=160, metric="accuracy", lower=-0.484,
    upper=-0.327, negative_flips=69, positive_flips=3, p_value=1e-12, adjusted_p_value=1.1e-12, passed=False,
    message=REMEDY, worsened=WORSE, edit="3 ROME edits (sequential) from demo edits",
)  # fmt: skip
CANARY = Row("canary", "facts the edit must not touch", "pass", baseline=1.0, edited=1.0, tolerance=0.0, n=5, metric="accuracy", passed=True)
QUALITY = Row(
    "edit_quality", "edit requests", "pass", edited=1.0, metric="reliability", tolerance=0.9, n=3, passed=True,
    quality={"all": {"reliability": 1.0, "generalisation": 0.67, "locality": 0.33}},
)  # fmt: skip
UNCHECKED = Row("sentiment", "SST-2", COULD_NOT_CHECK, note=NO_BASELINE, metric="accuracy")


def _regressed() -> Run:
    rows = (PASSED, FAILED, CANARY, QUALITY)
    return Run(run_verdict(1, rows), 1, rows, (), "smollm2", "paired comparison on the same examples")


def _unchecked() -> Run:
    rows = (UNCHECKED,)
    return Run(run_verdict(COULD_NOT_CHECK_STATUS, rows), COULD_NOT_CHECK_STATUS, rows, problems_of(rows), "smollm2")


# ----------------------------------------------------------------------------- the verdict


def test_the_verdict_is_the_exit_status_in_words() -> None:
    assert [run_verdict(status, [PASSED]) for status in (0, 1, COULD_NOT_CHECK_STATUS, 2)] == [
        "PASS", "REGRESSED", "COULD NOT CHECK", "ERROR (exit status 2)",
    ]  # fmt: skip
    assert run_verdict(0, [Row("sentiment", "SST-2", "recorded", baseline=0.9)]) == "BASELINES RECORDED"


# ----------------------------------------------------------------------------- Markdown


def test_the_markdown_summary_leads_with_the_verdict_then_table_quality_and_remedy() -> None:
    text = markdown(_regressed())
    lines = text.splitlines()
    assert lines[0] == "## editguard: REGRESSED"
    assert "Failed (exit status 1): sentiment (FAIL)." in lines
    header = next(line for line in lines if line.startswith("| ability"))
    assert "| interval |" in header and "| flips -/+ |" in header
    assert "| sentiment | accuracy | 0.969 | 0.556 | -0.413 | [-0.484, -0.327] | 0.050 | 160 | 69/3 | 1.1e-12 | **FAIL** |" in lines
    assert "| canary | accuracy | 1.000 | 1.000 | +0.000 | - | 0.000 | 5 | - | - | PASS |" in lines  # a row it does not know
    assert "- all: reliability 1.00, generalisation 0.67, locality 0.33" in lines
    assert f"- **sentiment**: {REMEDY}" in lines
    assert lines.index(header) < lines.index(f"- **sentiment**: {REMEDY}")


def test_a_run_that_could_not_check_gives_the_sentence_instead_of_a_table() -> None:
    text = markdown(_unchecked())
    assert text.startswith("## editguard: COULD NOT CHECK\n")
    assert f"- {NO_BASELINE}" in text.splitlines()
    assert "| ability" not in text


def test_the_summary_is_appended_to_the_github_step_summary(tmp_path: Path) -> None:
    step = tmp_path / "step_summary.md"
    step.write_text("# an earlier step\n")
    written = write_markdown(tmp_path / "s.md", _regressed(), {STEP_SUMMARY: str(step)})
    assert written == [tmp_path / "s.md", step]
    assert step.read_text() == "# an earlier step\n" + (tmp_path / "s.md").read_text()
    assert write_markdown(None, _regressed(), {}) == []


# ----------------------------------------------------------------------------- HTML


def test_the_html_page_is_self_contained_and_marks_the_failing_rows() -> None:
    page = html_report(_regressed(), b"forest-png", b"curve-png")
    assert not re.search(r"""(src|href)=['"]?(https?:)?//""", page) and "<script" not in page and "<link" not in page
    assert re.findall(r"<tr class='([^']*)' data-ability='sentiment'>", page) == ["row verdict-fail failing"]
    assert re.findall(r"<tr class='([^']*)' data-ability='closed_qa'>", page) == ["row verdict-pass"]
    assert "data:image/png;base64,Zm9yZXN0LXBuZw==" in page and "data:image/png;base64,Y3VydmUtcG5n" in page
    assert "Review: dull &lt;b&gt;film&lt;/b&gt;" in page  # escaped
    assert "69 examples got worse; the 1 with the largest drop:" in page
    assert "keeps no model output" in page


def test_the_html_page_of_a_run_that_could_not_check_gives_the_sentence() -> None:
    page = html_report(_unchecked(), None, None)
    assert "COULD NOT CHECK" in page and f"<li>{NO_BASELINE}</li>" in page
    assert "id='abilities'" not in page and "<img" not in page


# ----------------------------------------------------------------------------- JUnit


def test_junit_properties_are_flat_scores() -> None:
    properties = dict(junit_properties(FAILED))
    assert properties == {
        "editguard.ability": "sentiment", "editguard.metric": "accuracy", "editguard.verdict": "fail",
        "editguard.baseline": "0.969", "editguard.edited": "0.556", "editguard.difference": "-0.413",
        "editguard.lower": "-0.484", "editguard.upper": "-0.327", "editguard.interval": "[-0.484, -0.327]",
        "editguard.tolerance": "0.05", "editguard.n": "160", "editguard.negative_flips": "69", "editguard.positive_flips": "3",
    }  # fmt: skip
    assert dict(junit_properties(UNCHECKED))["editguard.note"] == NO_BASELINE


# ----------------------------------------------------------------------------- progress


def test_progress_is_silent_by_default_and_a_line_per_step_when_installed() -> None:
    assert progress.reporter().write is None and progress.reporter().stream is None
    lines: list[str] = []
    previous = progress.use(progress.Reporter(lines.append))
    try:
        assert list(progress.reporter().each(["a", "b"], "ROME edit")) == ["a", "b"]
        assert list(progress.reporter().each(["c"], "ROME edit", first=3)) == ["c"]
        progress.timed("model m loaded", lambda: None)
    finally:
        assert progress.use(previous).write == lines.append
    assert [re.sub(r"in \d+\.\d s$", "in T", line) for line in lines] == [
        "editguard: ROME edit 1 of 2: a in T", "editguard: ROME edit 2 of 2: b in T", "editguard: ROME edit 3: c in T",
        "editguard: model m loaded in T",
    ]  # fmt: skip
    assert (progress.seconds(0.42), progress.seconds(125)) == ("0.4 s", "2 min 05 s")


# ----------------------------------------------------------------------------- the CI recipe


def test_the_github_actions_recipe_tells_regressed_from_could_not_check() -> None:
    path = ROOT / "docs" / "github-actions.yml"
    workflow = yaml.safe_load(path.read_text())
    assert "pull_request" in workflow[True]  # YAML 1.1 reads the key `on` as True
    text = path.read_text()
    flags = {option.cli for option in OPTIONS}
    assert set(re.findall(r"--editguard-[a-z-]+", text)) <= flags
    assert re.search(rf"\b{COULD_NOT_CHECK_STATUS}\)", text) and re.search(r"\b1\)", text)  # the case arms
    assert "GITHUB_STEP_SUMMARY" in text or "--editguard-markdown" in text
    assert "upload-artifact" in text
    assert "docs/github-actions.yml" in (ROOT / "README.md").read_text()


@pytest.mark.parametrize("name", ["html", "markdown"])
def test_the_report_options_are_also_read_from_pyproject(name: str, tmp_path: Path) -> None:
    from editguard.settings import build_settings

    settings = build_settings({}, {name: "out/file"}, {}, rootdir=tmp_path)
    assert getattr(settings, name) == tmp_path / "out" / "file"


@pytest.mark.parametrize("panels", [1, 5])
def test_a_long_curve_title_wraps_inside_the_figure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, panels: int) -> None:
    """The curve's title names the method, the edit set and the cache key: wider than one panel, it wraps."""
    import matplotlib.pyplot as plt

    close, figures = plt.close, []
    monkeypatch.setattr(plt, "close", figures.append)
    title = "smollm2: 20 ROME edits (sequential) from zsre-20 (cache key 1e04acdfcc4640af), reused from the edit cache (not recomputed)"
    curve = {"plain": [[1, 4.36, "pass"], [20, 4.48, "fail"]]}
    rows = [Row(f"ability{i}", "", "fail", baseline=4.36, tolerance=0.05, metric="log_perplexity", curve=curve) for i in range(panels)]
    draw_curves(tmp_path / "curve.png", rows, title)
    (figure,) = figures
    try:
        (shown,) = [text for text in figure.texts if text.get_text()]
        box = shown.get_window_extent(figure.canvas.get_renderer())
        assert figure.bbox.x0 <= box.x0 and box.x1 <= figure.bbox.x1, (box, figure.bbox)
        assert shown.get_text().replace("\n", " ") == title
    finally:
        close(figure)
