"""Reports: the per-ability table on the terminal and the JSON file for CI systems.

A ``Row`` is what one gate test contributes; rows travel from xdist workers to the controller as
plain dicts in the test report's ``user_properties``.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from editguard import atomic
from editguard.metrics import METRICS
from editguard.stack import describe_versions
from editguard.verdict import GatedVerdict, Outcome, holm_correct

PROPERTY = "editguard"
COULD_NOT_CHECK = "could not check"  # a row's verdict when a GateProblem stopped the gate before a verdict


@dataclass(frozen=True)
class Row:
    ability: str
    dataset: str
    verdict: str  # pass, fail, inconclusive, recorded, skipped, or COULD_NOT_CHECK
    baseline: float | None = None
    edited: float | None = None
    tolerance: float | None = None
    n: int | None = None
    note: str = ""
    edit: str = ""  # how the edit was obtained, for the summary line
    edit_reused: bool | None = None
    metric: str = ""
    chance: float | None = None
    unparsed: float | None = None  # fraction of the edited model's outputs that could not be parsed
    cached: int = 0  # results of the scored model read from the output cache instead of computed
    lower: float | None = None  # confidence bounds of edited - baseline
    upper: float | None = None
    negative_flips: int | None = None  # examples that got worse / better
    positive_flips: int | None = None
    p_value: float | None = None  # H0: no drop beyond the tolerance
    adjusted_p_value: float | None = None  # Holm over the abilities of the run (set on the controller)
    minimum_detectable_drop: float | None = None
    examples_needed: int | None = None
    sequential: bool = False  # decided by early stopping
    available: int | None = None  # examples in the run's sample (n is how many were used)
    jitter: int | None = None  # --editguard-noise-floor: base outcomes that changed when re-scored
    passed: bool | None = None  # the test's outcome (an inconclusive verdict may pass with a warning)
    variant: str = ""  # which edited model the verdict is about (single mode: the worst edit)
    curve: dict[str, list[list[Any]]] | None = None  # series name -> [edit count, edited score, verdict]
    quality: dict[str, Any] | None = None  # edit quality per gated edit (the edit_quality row)
    worker: str = ""  # the xdist worker that produced the row ("" without xdist)
    dtype: str = ""  # the precision the models were scored in (float32, bfloat16, float16)
    backends: tuple[str, str] = ("", "")  # where the baseline and the edited model were scored (hf, engine)
    message: str = ""  # the test's failure message, which ends with the remedy ("" when it passed)
    worsened: list[dict[str, Any]] | None = None  # the first WORSENED_SHOWN examples that got worse (Verdicts.worsened)
    role: str = "ability"  # "ability" (Holm's family) or "canary" (gated alone)
    relative_change: dict[str, float] | None = None  # canary rows: ||delta|| / ||weight|| per edited tensor
    stack_drift: dict[str, Any] | None = None  # a baseline recorded on another stack (stages.baselines.StackDrift)
    unwritable: dict[str, str] | None = None  # cache folders the run could not write -> why (atomic.unwritable_caches)
    truncated: int = 0  # examples with a request longer than the model's context, cut from the left (Evaluator.truncated)

    @property
    def difference(self) -> float | None:
        if self.baseline is None or self.edited is None:
            return None
        return self.edited - self.baseline

    @property
    def perplexity_ratio(self) -> tuple[float, float | None, float | None] | None:
        """A log-perplexity row's difference as a ratio of perplexities (edited / base), with its interval."""
        if self.metric != "log_perplexity" or self.difference is None:
            return None
        bounds = [None if bound is None else math.exp(bound) for bound in (self.lower, self.upper)]
        return math.exp(self.difference), bounds[0], bounds[1]

    def as_dict(self) -> dict[str, Any]:
        ratio = self.perplexity_ratio
        extra = {} if ratio is None else {"perplexity_ratio": ratio[0], "perplexity_ratio_interval": list(ratio[1:])}
        return {**asdict(self), "difference": self.difference, **extra}

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> Row:
        fields = cls.__dataclass_fields__
        return cls(**{key: value for key, value in record.items() if key in fields})


def truncated_lines(rows: Sequence[Row]) -> list[str]:
    """One line per ability whose prompts did not all fit the model's context: how many were cut, and how."""
    return [
        f"{row.ability}: {row.truncated} of {row.n} examples were longer than the model's context and were cut from the "
        "left (as lm-evaluation-harness does; the base and the edited model read the same cut prompts)"
        for row in sorted(rows, key=lambda row: row.ability)
        if row.truncated
    ]


def unwritable_lines(rows: Sequence[Row]) -> list[str]:
    """One warning per cache folder a worker could not write (the run went on without caching there)."""
    folders = {folder: cause for row in rows for folder, cause in (row.unwritable or {}).items()}
    return [f"warning: {atomic.unwritable_sentence(folder, cause)}" for folder, cause in sorted(folders.items())]


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


# ----------------------------------------------------------------------------- rows from the stages' results


def problem_row(ability: str, dataset: str, problem: str, *, metric: str = "", chance: float | None = None) -> Row:
    """The gate could not check this ability: the row carries the sentence that says why, and no verdict."""
    return Row(ability, dataset, COULD_NOT_CHECK, note=problem, metric=metric, chance=chance)


def recorded_row(task: Any, baseline: Any, path: Path, cached: int, truncated: int = 0) -> Row:
    """A baseline was recorded (``--editguard-update-baselines``)."""
    return Row(
        task.name, task.dataset, "recorded", baseline=baseline.score, n=baseline.n, note=f"wrote {path}",
        metric=task.metric, chance=task.chance, unparsed=baseline.unparsed / baseline.n if baseline.n else 0.0, cached=cached,
        dtype=baseline.dtype, truncated=truncated,
    )  # fmt: skip


def no_signal_row(task: Any, signal: Any, policy: str) -> Row:
    """The base model is not clearly above chance (``verdict.Signal``): no verdict; skipped or failed by ``policy``."""
    return Row(
        task.name, task.dataset, Outcome.NO_SIGNAL.value, baseline=signal.score, n=signal.n,
        metric=task.metric, chance=task.chance, note=f"one-sided test of H0 score <= chance + tolerance: p = {signal.p_value:.2g}",
        passed=False if policy == "fail" else None,
    )  # fmt: skip


def verdict_row(task: Any, verdict: Any, edit: Any, **measured: Any) -> Row:
    """An ability's verdict (``verdict.Verdict``) on an edit (``stages.edits.EditInfo``).

    ``measured`` holds what the stages measured beside the verdict: unparsed, cached, available, jitter,
    variant, curve, dtype.  The interval is of ``edited - baseline`` as the table shows it (the verdict's bounds are
    in the metric's better direction: for a lower-is-better metric they are mirrored back here).
    """
    low, high = (verdict.lower, verdict.upper) if verdict.higher_is_better else (-verdict.upper, -verdict.lower)
    return Row(
        task.name, task.dataset, verdict.outcome.value, baseline=verdict.baseline, edited=verdict.observed,
        tolerance=verdict.tolerance, n=verdict.n, edit=edit.description, edit_reused=edit.reused, metric=task.metric,
        chance=task.chance, lower=_finite(low), upper=_finite(high),
        negative_flips=verdict.negative_flips, positive_flips=verdict.positive_flips, p_value=verdict.p_value,
        minimum_detectable_drop=_finite(verdict.minimum_detectable_drop), examples_needed=verdict.examples_needed,
        sequential=verdict.sequential, passed=verdict.passed, **measured,
    )  # fmt: skip


def quality_row(measured: Sequence[tuple[str, Any]], minimum: float, requests: int) -> tuple[Row, list[str]]:
    """The edit-quality row, and one line per gated edit that did not take (reliability below ``minimum``,
    or a request at 0)."""
    failures, summary = [], {}
    for label, quality in measured:
        summary[label] = quality.as_dict()
        reliability = quality.reliability
        zero = [i + 1 for i, r in enumerate(quality.per_request) if r.reliability == 0]
        if reliability is not None and (reliability < minimum or zero):
            failures.append(f"{label}: reliability {reliability:.2f}" + (f" (requests {zero} did not take at all)" if zero else ""))
    worst = min((q.reliability for _, q in measured if q.reliability is not None), default=None)
    row = Row(
        "edit_quality", "edit requests", "fail" if failures else "pass", edited=worst, metric="reliability",
        tolerance=minimum, n=requests, quality=summary, passed=not failures,
    )  # fmt: skip
    return row, failures


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


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
    ratio = row.perplexity_ratio
    if ratio is None:
        return []
    point, low, high = ratio
    bounds = f"[{'-' if low is None else f'{low:.3f}'}, {'-' if high is None else f'{high:.3f}'}]"
    limit = "" if row.tolerance is None else f", FAIL beyond {math.exp(row.tolerance):.3f}"
    lines = [f"{row.ability}: perplexity ratio edited/base {point:.3f} {bounds} on {row.n} sentences{limit}  {verdict_cell(row)}"]
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


def write_json(path: Path, rows: Sequence[Row], context: Mapping[str, Any]) -> None:
    """Write the report atomically (fsynced, following the umask)."""
    document = {
        **context,
        "passed": all(row.passed if row.passed is not None else row.verdict in ("pass", "recorded", "skipped", Outcome.NO_SIGNAL.value) for row in rows),
        "abilities": [row.as_dict() for row in sorted(rows, key=lambda r: r.ability)],
    }
    atomic.write_json(path, document, indent=2)


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


TITLE_CHARS_PER_INCH = 12  # characters of a 10-point title per inch of figure, so that a long title wraps, not cut
_ROUND_COUNTS = frozenset({1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000})


def draw_curves(path: Path, rows: Sequence[Row], title: str) -> None:
    """One panel per ability: edited score against edit count per series, with the baseline and the tolerance."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    gated = sorted((row for row in rows if row.curve), key=lambda r: r.ability)
    columns = min(4, len(gated))
    lines = -(-len(gated) // columns)
    figure, axes = plt.subplots(lines, columns, figsize=(4 * columns, 3 * lines), squeeze=False)
    for axis in axes.flat[len(gated):]:
        axis.set_visible(False)
    for axis, row in zip(axes.flat, gated):
        for name, points in (row.curve or {}).items():
            axis.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=name)
        if row.baseline is not None:
            axis.axhline(row.baseline, color="grey", linewidth=1, label="baseline")
            worse = "-" if _better(row.metric) > 0 else "+"
            limit = row.baseline - _better(row.metric) * (row.tolerance or 0)
            axis.axhline(limit, color="red", linestyle="--", linewidth=1, label=f"baseline {worse} tolerance")
        axis.set_title(f"{row.ability} ({row.metric})")
        axis.set_xlabel("number of edits")
        axis.set_xscale("log")
        counts = sorted({point[0] for points in (row.curve or {}).values() for point in points})
        shown = counts if len(counts) <= 8 else [c for c in counts if c in _ROUND_COUNTS or c == counts[-1]]
        axis.set_xticks(shown, [str(count) for count in shown])  # the counts themselves, not 2 x 10^0
        axis.minorticks_off()
    axes.flat[0].legend(fontsize=7)
    figure.suptitle(textwrap.fill(title, width=int(TITLE_CHARS_PER_INCH * figure.get_figwidth())), fontsize=10)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def junit_properties(row: Row) -> list[tuple[str, str]]:
    """The row as flat ``editguard.NAME`` properties, which pytest's ``--junitxml`` writes into the test case
    (CI tools that read JUnit XML show them); a value the row does not have is left out."""
    values: dict[str, Any] = {
        "ability": row.ability, "metric": row.metric, "verdict": row.verdict, "baseline": row.baseline,
        "edited": row.edited, "difference": row.difference, "lower": row.lower, "upper": row.upper,
        "interval": interval(row) if row.lower is not None or row.upper is not None else None,
        "tolerance": row.tolerance, "n": row.n, "negative_flips": row.negative_flips, "positive_flips": row.positive_flips,
        "note": row.note.splitlines()[0] if row.note else None,
    }  # fmt: skip
    shown = {name: format(value, ".6g") if isinstance(value, float) else str(value) for name, value in values.items() if value not in (None, "")}
    return [(f"{PROPERTY}.{name}", value) for name, value in shown.items()]
