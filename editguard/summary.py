"""What a person reads about a gate run: its verdict in one word, and the Markdown summary.

``Run`` holds what every human-facing report says about a run (the verdict, the rows after Holm's
correction, why the gate could not check, how the verdicts were decided).  ``markdown`` renders it for a
file or GitHub's job summary (``$GITHUB_STEP_SUMMARY``); it reads as plain text too.  The HTML report
(``editguard.webreport``) renders the same ``Run``.  No pytest here: the plugin builds the ``Run``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from editguard import atomic
from editguard.errors import COULD_NOT_CHECK as COULD_NOT_CHECK_STATUS
from editguard.report import COULD_NOT_CHECK, Row, first_failing_counts, interval, number, stack_lines, truncated_lines, verdict_cell

PASS, REGRESSED, NOT_CHECKED, RECORDED = "PASS", "REGRESSED", "COULD NOT CHECK", "BASELINES RECORDED"
_BY_STATUS = {0: PASS, 1: REGRESSED, COULD_NOT_CHECK_STATUS: NOT_CHECKED}
STEP_SUMMARY = "GITHUB_STEP_SUMMARY"  # GitHub Actions shows the Markdown appended to this file on the job's page
QUALITY = "edit_quality"


@dataclass(frozen=True)
class Run:
    """One gate run as the reports tell it."""

    verdict: str  # PASS, REGRESSED, COULD NOT CHECK, BASELINES RECORDED, or "ERROR (exit status N)"
    status: int  # the run's exit status
    rows: tuple[Row, ...] = ()
    problems: tuple[str, ...] = ()  # why the gate could not check, one sentence each
    model: str = ""
    statement: str = ""  # how the verdicts were decided (the terminal's "statistics:" line)
    curve: Path | None = None  # the edit-count curve PNG, when one was drawn

    @property
    def abilities(self) -> list[Row]:
        return sorted((row for row in self.rows if row.ability != QUALITY), key=lambda row: row.ability)

    @property
    def quality(self) -> list[Row]:
        return [row for row in self.rows if row.ability == QUALITY]

    @property
    def edits(self) -> list[str]:
        return sorted({row.edit for row in self.rows if row.edit})

    def judged(self) -> bool:
        """Whether any ability has a verdict (else the reports give the reasons instead of a table)."""
        return any(row.verdict != COULD_NOT_CHECK for row in self.abilities)


def run_verdict(status: int, rows: Sequence[Row]) -> str:
    """The run's verdict from its exit status (what CI acts on): 0 PASS, 1 REGRESSED, 4 COULD NOT CHECK."""
    if status == 0 and rows and all(row.verdict in ("recorded", "skipped") for row in rows):
        return RECORDED
    return _BY_STATUS.get(status, f"ERROR (exit status {status})")


def problems_of(rows: Sequence[Row], more: Sequence[str] = ()) -> tuple[str, ...]:
    """The distinct sentences that say why the gate could not check, in the order they came."""
    found = [row.note.splitlines()[0] for row in rows if row.verdict == COULD_NOT_CHECK and row.note] + list(more)
    return tuple(dict.fromkeys(sentence for sentence in found if sentence))


def failing(row: Row) -> bool:
    """A row whose test failed: a regression, an inconclusive verdict that fails, or could not check."""
    return row.passed is False or row.verdict in ("fail", COULD_NOT_CHECK)


def headline(run: Run) -> str:
    """One sentence under the verdict."""
    abilities = run.abilities
    if run.verdict == NOT_CHECKED:
        unchecked = sum(row.verdict == COULD_NOT_CHECK for row in abilities)
        if unchecked:
            return f"editguard could not check {unchecked} of {len(abilities)} abilities (exit status {run.status}), so they have no verdict:"
        return f"editguard could not check the edited model (exit status {run.status}), so there is no verdict:"
    if run.verdict == REGRESSED:
        failed = [f"{row.ability} ({verdict_cell(row)})" for row in [*abilities, *run.quality] if failing(row)]
        return f"Failed (exit status 1): {', '.join(failed) or 'a test outside the gate'}."
    if run.verdict == RECORDED:
        return f"Baselines recorded for {len(abilities)} abilities; nothing was gated."
    if run.verdict == PASS:
        warned = [row.ability for row in abilities if row.verdict == "inconclusive"]
        silent = [row.ability for row in abilities if row.verdict == "no signal"]
        also = f" ({', '.join(warned)} inconclusive: passed with a warning)" if warned else ""
        if silent:
            also += f"; {', '.join(silent)} had no signal (the base model is not clearly above chance): neither passed nor failed"
        gated = len(abilities) - len(silent)
        return f"All {gated} gated abilities stayed within tolerance of their baselines{also}."
    return f"The run ended with exit status {run.status} before the gate could give a verdict."


# ----------------------------------------------------------------------------- cells shared with the HTML report


COLUMNS = ("ability", "metric", "baseline", "edited", "diff", "interval", "tolerance", "n", "flips -/+", "p (Holm)", "verdict")


def cells(row: Row) -> tuple[str, ...]:
    """One table row, as text, in ``COLUMNS`` order (any row, a canary's or one this version does not know, included)."""
    used = "-" if row.n is None else (f"{row.n}/{row.available}" if row.available and row.available != row.n else str(row.n))
    return (
        row.ability, row.metric or "-", number(row.baseline), number(row.edited), number(row.difference, signed=True),
        interval(row), number(row.tolerance), used,
        "-" if row.negative_flips is None else f"{row.negative_flips}/{row.positive_flips}",
        "-" if row.adjusted_p_value is None else f"{row.adjusted_p_value:.2g}", verdict_cell(row),
    )  # fmt: skip


def quality_lines(row: Row) -> list[str]:
    """``label: reliability 1.00, generalisation 0.67, locality 0.33`` per gated edit."""
    return [
        f"{label}: " + ", ".join(f"{name} {value:.2f}" for name, value in values.items() if isinstance(value, float))
        for label, values in (row.quality or {}).items()
    ]


def remedy(row: Row) -> str:
    """What the row's failure says to do: its failure message (which ends with the remedy), or its note."""
    return " ".join((row.message or row.note).split())


def curve_lines(run: Run) -> list[str]:
    """Per ability with a curve: the first edit count that FAILs, and the first whose score is below the margin."""
    return [
        f"{row.ability}: " + "; ".join(
            f"{name}: FAIL at {failed or 'none'}, below baseline - tolerance at {below or 'none'}"
            for name, (failed, below) in first_failing_counts(row).items()
        )
        for row in run.abilities
        if row.curve
    ]  # fmt: skip


# ----------------------------------------------------------------------------- Markdown


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
        lines += ["**Edit-count curve**: " + str(run.curve), ""] + [f"- {line}" for line in curve_lines(run)] + [""]
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


def write_markdown(path: Path | None, run: Run, environ: Mapping[str, str] | None = None) -> list[Path]:
    """Write the summary to ``path`` (when given) and append it to ``$GITHUB_STEP_SUMMARY`` (when set); returns
    the files written."""
    return [write() for _, _, write in markdown_writes(path, run, environ)]


def markdown_writes(path: Path | None, run: Run, environ: Mapping[str, str] | None = None) -> list[tuple[str, Path, Callable[[], Path]]]:
    """The Markdown writes to make, each (what, where, write): ``path`` when given, and an append to
    ``$GITHUB_STEP_SUMMARY`` when it is set; each may fail alone."""
    text = markdown(run)
    writes = [("Markdown summary", path, lambda: atomic.write_text(path, text))] if path is not None else []
    step_summary = (os.environ if environ is None else environ).get(STEP_SUMMARY)
    if step_summary:
        target = Path(step_summary)

        def append() -> Path:
            before = target.read_text(encoding="utf-8") if target.is_file() else ""
            return atomic.write_text(target, before + ("\n" if before and not before.endswith("\n") else "") + text)

        writes.append((f"job summary (${STEP_SUMMARY})", target, append))
    return writes
