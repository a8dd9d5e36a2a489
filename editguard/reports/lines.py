"""The cells and lines every human-facing report shares: numbers, intervals, verdict cells, the abilities table,
the canary's and the curve's lines, and the lines about the run (stack, truncation, caches, backends)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from editguard import atomic
from editguard.statistics.metrics import METRICS
from editguard.reports.rows import COULD_NOT_CHECK, Row
from editguard.stack import describe_versions
from editguard.statistics.verdict import Outcome


def number(value: float | None, signed: bool = False) -> str:
    """A score cell: three decimals, signed for differences, "-" when there is none."""
    if value is None:
        return "-"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def verdict_cell(row: Row) -> str:
    """The verdict cell: an inconclusive ability that passes with a warning says so."""
    return row.verdict.upper() + (" (warn)" if row.verdict == "inconclusive" and row.passed else "")


def canary_lines(row: Row) -> list[str]:
    """A canary's perplexity ratio with its interval and limit, and the relative size of each edited tensor's change."""
    ratio = row.ratio
    if ratio is None:
        return []
    point, low, high = ratio
    bounds = f"[{'-' if low is None else f'{low:.3f}'}, {'-' if high is None else f'{high:.3f}'}]"
    limit = "" if row.tolerance is None else f", FAIL beyond {math.exp(row.tolerance):.3f}"
    lines = [f"{row.ability}: {row.ratio_of} ratio edited/base {point:.3f} {bounds} on {row.n} sentences{limit}  {verdict_cell(row)}"]
    if row.relative_change:
        sizes = ", ".join(f"{name} {size:.4f}" for name, size in row.relative_change.items())
        lines.append(f"{row.ability}: relative size of the change, ||delta|| / ||weight||: {sizes}")
    return lines


def interval(row: Row) -> str:
    """The interval cell of a row's paired difference."""
    if row.lower is None and row.upper is None:
        return "-"
    low = "-inf" if row.lower is None else f"{row.lower:+.3f}"
    high = "+inf" if row.upper is None else f"{row.upper:+.3f}"
    return f"[{low}, {high}]"


def _used(row: Row) -> str:
    if row.n is None:
        return "-"
    return f"{row.n}/{row.available}" if row.available and row.available != row.n else str(row.n)


def table(rows: Sequence[Row]) -> list[str]:
    header = ("ability", "metric", "chance", "baseline", "edited", "diff", "interval", "tolerance", "n", "flips -/+", "p (Holm)", "unparsed", "verdict")
    body = [
        (
            row.ability,
            row.metric,
            number(row.chance),
            number(row.baseline),
            number(row.edited),
            number(row.difference, signed=True),
            interval(row),
            number(row.tolerance),
            _used(row),
            "-" if row.negative_flips is None else f"{row.negative_flips}/{row.positive_flips}",
            "-" if row.adjusted_p_value is None else f"{row.adjusted_p_value:.2g}",
            "-" if row.unparsed is None else f"{row.unparsed:.0%}",
            verdict_cell(row),
        )
        for row in sorted(rows, key=lambda r: r.ability)
        if row.ability != "edit_quality"
    ]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]

    def render(line: Sequence[str]) -> str:
        return "  ".join(cell.ljust(width) if i < 2 else cell.rjust(width) for i, (cell, width) in enumerate(zip(line, widths))).rstrip()

    return [render(header), "  ".join("-" * width for width in widths), *map(render, body)]

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


def first_failing_counts(row: Row) -> dict[str, tuple[int | None, int | None]]:
    """Per series of the edit-count curve: the first count the gate FAILs, and the first whose score is below
    baseline - tolerance (a point estimate: on few examples the verdict there may still be inconclusive)."""
    sign = _better(row.metric)
    margin = None if row.baseline is None or row.tolerance is None else row.baseline - sign * row.tolerance
    return {
        name: (
            next((count for count, _, verdict in points if verdict == "fail"), None),
            next((count for count, score, _ in points if margin is not None and sign * (score - margin) < -1e-12), None),
        )
        for name, points in (row.curve or {}).items()
    }


def _better(metric: str) -> float:
    """+1 when a higher score is better, -1 when lower is (a metric registered only on a worker: higher)."""
    return -1.0 if metric in METRICS and not METRICS[metric].higher_is_better else 1.0


def curve_lines(rows: Sequence[Row]) -> list[str]:
    """Per ability with a curve: the first edit count that FAILs, and the first past the tolerance (the score below
    baseline - tolerance, or above baseline + tolerance for a metric where lower is better)."""
    lines = []
    for row in sorted(rows, key=lambda r: r.ability):
        past = "below baseline - tolerance" if row.higher_is_better else "above baseline + tolerance"
        firsts = "; ".join(
            f"{name}: FAIL at {failed or 'none'}, score {past} at {below or 'none'}" for name, (failed, below) in first_failing_counts(row).items()
        )
        lines += [f"{row.ability}: first edit count -- {firsts}"] if row.curve else []
    return lines


def truncated_lines(rows: Sequence[Row]) -> list[str]:
    """One line per ability whose prompts did not all fit the model's context: how many were cut, and how."""
    return [
        f"{row.ability}: {row.truncated} of {row.n} examples were longer than the model's context and were cut from the "
        "left (as lm-evaluation-harness does; the base and the edited model read the same cut prompts)"
        for row in sorted(rows, key=lambda row: row.ability)
        if row.truncated
    ]


def unwritable_lines(rows: Sequence[Row]) -> list[str]:
    """One warning per cache folder a worker could not write (the run went on without caching there); a folder
    inside another one already told of is not told again (the cache, its edits and its outputs on one full disk)."""
    folders = {folder: cause for row in rows for folder, cause in (row.unwritable or {}).items()}
    told = [folder for folder in folders if not any(other != folder and Path(folder).is_relative_to(other) for other in folders)]
    return [f"warning: {atomic.unwritable_sentence(folder, folders[folder])}" for folder in sorted(told)]


def stack_lines(rows: Sequence[Row]) -> list[str]:
    """One line when baselines were recorded on another stack: what the gate did about it, and what it changed."""
    drifts = [row.stack_drift for row in rows if row.stack_drift]
    if not drifts:
        return []
    recorded = " / ".join(sorted({describe_versions(drift["recorded"]) for drift in drifts}))
    changed, n = sum(drift["changed"] for drift in drifts), sum(drift["n"] for drift in drifts)
    return [
        f"stack: baselines recorded on {recorded}, this run on {describe_versions(drifts[0]['now'])}: the base model was "
        f"re-scored on this stack and the edited model is compared with those outcomes; {changed} of {n} base outcomes "
        "differ from the stored baselines (--editguard-update-baselines records them on this stack)"
    ]


def backend_lines(rows: Sequence[Row]) -> list[str]:
    """Where the scores came from, said when it is not in process, and a warning when baselines and edited
    models were scored by different backends: outcomes the two disagree on would count as the edit's."""
    from editguard.backends.table import RECORDED_WORDS

    scored = [row for row in rows if all(row.backends)]
    mixed = sorted((row for row in scored if row.backends[0] != row.backends[1]), key=lambda row: row.ability)
    lines = []
    if any(row.backends[1] != "hf" for row in scored):
        lines.append("scored: through the engine (--editguard-backend)")
    if mixed:
        baseline, edited = mixed[0].backends
        lines.append(
            f"warning: the baselines of {', '.join(row.ability for row in mixed)} were scored {RECORDED_WORDS[baseline]} and the edited model "
            f"{RECORDED_WORDS[edited]}, so an example the two backends score differently counts as a change the edit made; "
            "record the baselines with the same --editguard-backend (--editguard-update-baselines) to compare like with like"
        )
    return lines


def dtypes(rows: Sequence[Row]) -> str:
    """The precision the rows were scored in ("" when none says; several joined, which only a mixed report shows)."""
    return ", ".join(sorted({row.dtype for row in rows if row.dtype}))
