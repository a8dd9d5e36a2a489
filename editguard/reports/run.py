"""The run, told once as data (``Run``): the verdict from the exit status, the rows after Holm's correction, why
the gate could not check, how the verdicts were decided, and where its reports went.  The terminal, Markdown, HTML,
JSON and JUnit writers all render this one value."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from editguard.errors import COULD_NOT_CHECK as COULD_NOT_CHECK_STATUS
from editguard.statistics.metrics import METRICS
from editguard.reports.lines import verdict_cell
from editguard.reports.rows import COULD_NOT_CHECK, Row
from editguard.statistics.verdict import GatedVerdict, Outcome, RunVerdict, holm_correct

PASS, REGRESSED, NOT_CHECKED, RECORDED = (verdict.value for verdict in (RunVerdict.PASS, RunVerdict.REGRESSED, RunVerdict.COULD_NOT_CHECK, RunVerdict.RECORDED))
_BY_STATUS = {0: PASS, 1: REGRESSED, COULD_NOT_CHECK_STATUS: NOT_CHECKED}
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
    update_baselines: bool = False
    stack: Mapping[str, str] = field(default_factory=dict)  # the versions that decide outputs (stack.output_versions)
    written: tuple[tuple[str, Path], ...] = ()  # (what, file) of each report written
    unwritten: tuple[str, ...] = ()  # one sentence per report that could not be written

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
    if status == 0 and rows and all(row.verdict in (Outcome.RECORDED.value, Outcome.SKIPPED.value) for row in rows):
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


def with_holm(rows: Sequence[Row], alpha: float, fail_rule: str = "margin") -> tuple[list[Row], bool]:
    """Rows with Holm-adjusted p-values over the gated abilities, an inconclusive ability that Holm rejects failed
    (``verdict.holm_correct`` decides).  Returns the rows and whether any verdict changed."""
    from dataclasses import replace

    family = [row for row in rows if row.p_value is not None and row.role == "ability"]  # a canary is gated alone
    decisions = holm_correct({row.ability: _gated(row) for row in family}, alpha, fail_rule)
    result, changed = [], False
    for row in rows:
        if row.ability in decisions:
            decision = decisions[row.ability]
            row = replace(row, adjusted_p_value=decision.adjusted_p_value)
            if decision.outcome.value != row.verdict:
                row, changed = replace(row, verdict=decision.outcome.value, passed=False, note="failed by Holm over all abilities"), True
        elif row.p_value is not None:  # a canary: a family of one, its p-value is its own
            row = replace(row, adjusted_p_value=row.p_value)
        result.append(row)
    return result, changed


def _gated(row: Row) -> GatedVerdict:
    """What Holm's correction needs of a row, with the difference in the metric's better direction (a metric
    registered only on a worker counts as higher-is-better here)."""
    difference = None if row.difference is None or row.tolerance is None else row.difference
    if difference is not None and row.metric in METRICS and not METRICS[row.metric].higher_is_better:
        difference = -difference
    return GatedVerdict(Outcome(row.verdict), row.p_value or 0.0, difference, row.tolerance or 0.0, row.sequential)


def statement(rows: Sequence[Row], settings: Any) -> str:
    """How the verdicts were decided, in one sentence (the terminal's "statistics:" line)."""
    gated = sum(row.p_value is not None and row.role == "ability" for row in rows)  # Holm's family, not the canary
    return (
        f"paired comparison on the same examples; PASS when the {1 - settings.alpha:.0%} lower bound of edited - baseline "
        f"is above -tolerance, FAIL by the {settings.fail_rule} rule at Holm's level over {gated} abilities, so the chance "
        f"of any false FAIL, or of a false PASS of the whole gate, is at most {settings.alpha:g}; "
        f"inconclusive abilities {'fail' if settings.inconclusive == 'fail' else 'pass with a warning'}"
    )
