"""The Markdown summary of a run: verdict first, then why it could not check or the table, edit quality and what
to do.  Written to a file and appended to GitHub's job summary (``$GITHUB_STEP_SUMMARY``); it reads as plain text."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from editguard import atomic
from editguard.reports.lines import COLUMNS, cells, curve_lines, number, quality_lines, remedy, stack_lines, truncated_lines, verdict_cell
from editguard.reports.rows import COULD_NOT_CHECK, Row
from editguard.reports.run import NOT_CHECKED, Run, failing, headline

STEP_SUMMARY = "GITHUB_STEP_SUMMARY"  # GitHub Actions shows the Markdown appended to this file on the job's page


def markdown(run: Run) -> str:
    """The summary: verdict first, then the reasons it could not check or the table, edit quality, remedies."""
    lines = [f"## editguard: {run.verdict}", "", headline(run), ""]
    lines += ["Could not check:", ""] if run.problems and run.verdict != NOT_CHECKED else []
    lines += [f"- {_plain(problem)}" for problem in run.problems]
    lines += [""] if run.problems else []
    lines += _context(run)
    if run.judged():
        lines += _table(run.abilities) + [""]
        lines += [f"- {line}" for line in truncated_lines(run.rows)] + ([""] if truncated_lines(run.rows) else [])
    for row in run.quality:
        lines += [f"**Edit quality** ({row.verdict.upper()}, reliability at least {number(row.tolerance)}):", ""]
        lines += [f"- {line}" for line in quality_lines(row)] or [f"- {_plain(remedy(row))}"]
        lines += [""]
    lines += _remedies(run)
    if run.curve is not None:
        lines += ["**Edit-count curve**: " + str(run.curve), ""] + [f"- {line}" for line in curve_lines(run.abilities)] + [""]
    if run.statement:
        lines += [f"Statistics: {run.statement}.", ""]
    return "\n".join(lines).rstrip() + "\n"


def _context(run: Run) -> list[str]:
    lines = [f"Model: `{run.model}`"] if run.model else []
    lines += [f"Edit: {edit}" for edit in run.edits]
    lines += [line[0].upper() + line[1:] for line in stack_lines(run.rows)]
    return [line + "  " for line in lines] + ([""] if lines else [])


def _table(rows: Sequence[Row]) -> list[str]:
    def line(values: Sequence[str]) -> str:
        return "| " + " | ".join(_plain(value).replace("|", "\\|") for value in values) + " |"

    align = ["---", "---"] + ["--:"] * (len(COLUMNS) - 3) + ["---"]
    body = [line(cells(row)[:-1] + ((f"**{verdict_cell(row)}**" if failing(row) else verdict_cell(row)),)) for row in rows]
    return [line(COLUMNS), "| " + " | ".join(align) + " |", *body]


def _remedies(run: Run) -> list[str]:
    failed = [row for row in [*run.abilities, *run.quality] if failing(row) and row.verdict != COULD_NOT_CHECK]
    if not failed:
        return []
    return ["**What to do**", ""] + [f"- **{row.ability}**: {_plain(remedy(row))}" for row in failed] + [""]


def _plain(text: str) -> str:
    """One line (a message's traceback under -v stays in the test log)."""
    return " ".join(text.split())


def write_file(path: Path, run: Run) -> Path:
    """Write the summary to ``path``, atomically."""
    return atomic.write_text(path, markdown(run))


def step_summary_write(run: Run, environ: Mapping[str, str] | None = None) -> list[tuple[str, Path, Callable[[], Path]]]:
    """The append of the summary to ``$GITHUB_STEP_SUMMARY``, when that is set: (what, file, write)."""
    step_summary = (os.environ if environ is None else environ).get(STEP_SUMMARY)
    if not step_summary:
        return []
    target, text = Path(step_summary), markdown(run)

    def append() -> Path:
        before = target.read_text(encoding="utf-8") if target.is_file() else ""
        return atomic.write_text(target, before + ("\n" if before and not before.endswith("\n") else "") + text)

    return [(f"job summary (${STEP_SUMMARY})", target, append)]


def write_markdown(path: Path | None, run: Run, environ: Mapping[str, str] | None = None) -> list[Path]:
    """Write the summary to ``path`` (when given) and append it to ``$GITHUB_STEP_SUMMARY`` (when set); the files."""
    written = [write_file(path, run)] if path is not None else []
    return written + [write() for _, _, write in step_summary_write(run, environ)]
