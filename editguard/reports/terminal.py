"""The run on the terminal: the lines of pytest's "editguard" section, built as data from the ``Run``."""

from __future__ import annotations

from editguard.reports.lines import (
    backend_lines,
    canary_lines,
    curve_lines,
    dtypes,
    stack_lines,
    table,
    truncated_lines,
    unwritable_lines,
)
from editguard.reports.run import Run
from editguard.statistics.verdict import Outcome

_EDIT_SOURCES: dict[bool | None, str] = {
    True: "reused from the edit cache (not recomputed)",
    False: "computed in this run and cached",
}


def terminal_lines(run: Run) -> list[str]:
    """Everything the section says, in order: how the edit and the scores were had, the table, the checks beside
    it, the statistics, notes per ability, and where the reports went (or why one could not be written)."""
    if not run.rows:
        return [f"editguard {what}: {path}" for what, path in run.written] + [f"editguard: {sentence}" for sentence in run.unwritten]
    lines = _header(run) + table(run.rows) + truncated_lines(run.rows) + _checks(run)
    if run.statement:
        lines.append("statistics: " + run.statement)
    lines += _notes(run)
    lines += [f"{what}: {path}" for what, path in run.written]
    return lines + [f"editguard: {sentence}" for sentence in run.unwritten]


def _header(run: Run) -> list[str]:
    rows = run.rows
    sources = dict(_EDIT_SOURCES)
    if any(row.unwritable for row in rows):
        sources[False] = "computed in this run (not cached: the cache folder cannot be written, see below)"
    lines = [f"edit: {description}, {sources.get(reused, 'loaded')}" for description, reused in sorted({(row.edit, row.edit_reused) for row in rows if row.edit}, key=str)]
    cached = sum(row.cached for row in rows)
    if cached:
        scored = sum(row.n or 0 for row in rows)
        lines.append(f"model outputs: {cached} of {scored} example results read from the output cache (--editguard-rescore scores them again)")
    if dtypes(rows):
        lines.append(f"model dtype: {dtypes(rows)} (--editguard-dtype)")
    return lines + backend_lines(rows) + stack_lines(rows) + unwritable_lines(rows)


def _checks(run: Run) -> list[str]:
    """Edit quality, the canary's ratio, the first edit count of each curve."""
    lines = []
    for row in run.quality:
        for label, values in (row.quality or {}).items():
            shown = ", ".join(f"{k} {v:.2f}" for k, v in values.items() if isinstance(v, float))
            lines.append(f"edit quality ({label}): {shown}  {row.verdict.upper()}")
    for row in run.abilities:
        lines += canary_lines(row)
    lines += curve_lines(run.abilities)
    return lines


def _notes(run: Run) -> list[str]:
    lines = []
    for row in run.abilities:
        if row.sequential:
            lines.append(f"{row.ability}: early stopping used {row.n} of {row.available} examples ({row.verdict})")
        if row.jitter is not None:
            lines.append(
                f"{row.ability}: noise floor: {row.jitter} base outcomes changed when re-scored with batch size 1 in another order"
                + ("" if row.jitter == 0 else "  <- the evaluator is not exact here; treat small differences with care")
            )
        if row.note and row.note.startswith("failed by Holm"):
            lines.append(f"{row.ability}: {row.note}")
    return lines + [f"{row.ability}: {row.note}" for row in run.rows if row.verdict == Outcome.RECORDED.value]
