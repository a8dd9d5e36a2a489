"""A gate's rows: what one gate test contributes to the run (``Row``), made from the stages' values, and the flat
properties JUnit XML carries.  Rows travel from xdist workers to the controller as plain dicts in the test report's
``user_properties`` (``PROPERTY``)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from editguard.statistics.metrics import METRICS
from editguard.statistics.verdict import Outcome

PROPERTY = "editguard"
COULD_NOT_CHECK = Outcome.COULD_NOT_CHECK.value  # a row's verdict when a GateProblem stopped the gate before a verdict


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
    def ratio_of(self) -> str | None:
        """What a difference of this row's metric is a log ratio of (its record's ``ratio_of``: perplexity), if any."""
        metric = METRICS.get(self.metric)
        return None if metric is None else metric.ratio_of

    @property
    def ratio(self) -> tuple[float, float | None, float | None] | None:
        """The difference of a log metric as the ratio edited / base (a perplexity ratio), with its interval."""
        if self.ratio_of is None or self.difference is None:
            return None
        bounds = [None if bound is None else math.exp(bound) for bound in (self.lower, self.upper)]
        return math.exp(self.difference), bounds[0], bounds[1]

    @property
    def higher_is_better(self) -> bool:
        """The metric's direction, from its record (a metric registered only on a worker: higher)."""
        metric = METRICS.get(self.metric)
        return metric is None or metric.higher_is_better

    def as_dict(self) -> dict[str, Any]:
        ratio = self.ratio
        extra = {} if ratio is None else {f"{self.ratio_of}_ratio": ratio[0], f"{self.ratio_of}_ratio_interval": list(ratio[1:])}
        return {**asdict(self), "difference": self.difference, **extra}

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> Row:
        fields = cls.__dataclass_fields__
        return cls(**{key: value for key, value in record.items() if key in fields})


def problem_row(ability: str, dataset: str, problem: str, *, metric: str = "", chance: float | None = None) -> Row:
    """The gate could not check this ability: the row carries the sentence that says why, and no verdict."""
    return Row(ability, dataset, COULD_NOT_CHECK, note=problem, metric=metric, chance=chance)


def recorded_row(task: Any, baseline: Any, path: Path, cached: int, truncated: int = 0) -> Row:
    """A baseline was recorded (``--editguard-update-baselines``)."""
    return Row(
        task.name, task.dataset, Outcome.RECORDED.value, baseline=baseline.score, n=baseline.n, note=f"wrote {path}",
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


@dataclass(frozen=True)
class Measures:
    """What the stages measured beside an ability's verdict, for its row."""

    unparsed: float | None = None  # share of the edited model's outputs that could not be parsed
    truncated: int = 0  # examples with a request cut to the model's context
    cached: int = 0  # the edited model's results read from the output cache
    available: int | None = None  # examples in the run's sample
    jitter: int | None = None  # --editguard-noise-floor: base outcomes that changed when re-scored
    variant: str = ""  # which edited model the verdict is about (single mode)
    curve: dict[str, list[list[Any]]] | None = None  # the edit-count curve
    dtype: str = ""
    backends: tuple[str, str] = ("", "")  # where the baseline and the edited model were scored
    worsened: list[dict[str, Any]] | None = None  # the examples that got worse (the largest drop first)
    stack_drift: dict[str, Any] | None = None  # a baseline recorded on another stack, re-scored here
    role: str = "ability"  # "canary" for a canary (gated alone)
    relative_change: dict[str, float] | None = None  # a canary's ||delta|| / ||weight|| per edited tensor


def verdict_row(task: Any, verdict: Any, edit: Any, measures: Measures = Measures()) -> Row:
    """An ability's verdict (``verdict.Verdict``) on an edit (``stages.edits.EditInfo``), with what the stages measured
    beside it.  The interval is of ``edited - baseline`` as the table shows it (the verdict's bounds are in the
    metric's better direction: for a lower-is-better metric they are mirrored back here)."""
    low, high = (verdict.lower, verdict.upper) if verdict.higher_is_better else (-verdict.upper, -verdict.lower)
    measured = {name: getattr(measures, name) for name in Measures.__dataclass_fields__}
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
