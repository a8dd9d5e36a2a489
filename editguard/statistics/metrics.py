"""Metrics and scores: what each metric is, and per-example outcomes.  Plain Python, no model, no numpy.

A ``Metric`` is the one record of everything the gate knows about a metric: how per-example outcomes
aggregate into a score, what one outcome is (``OutcomeKind``), which paired analysis decides its verdict
(``Analysis``; ``editguard.statistics`` maps each to its method), whether higher is better, and whether early
stopping applies.  Metrics are added with ``register_metric``, which checks the record there and then, so an
incomplete metric fails when it is registered rather than in the middle of a gate.

A ``Score`` keeps every example's outcome keyed by example id, not just the aggregate, so a base and an
edited model can be compared on exactly the same examples.  Most outcomes are one number per example
(1/0 for accuracy, a ROUGE value); entity F1 keeps counts per example, because F1 is not a mean of
per-sentence F1s.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType

Outcome = float | list[float]
Aggregate = Callable[[Sequence[Outcome]], float]


class OutcomeKind(str, Enum):
    """What one example's outcome is."""

    BINARY = "binary"  # 0 or 1 (right or wrong)
    CONTINUOUS = "continuous"  # one number in [0, 1] (a ROUGE value, a token F1)
    COUNTS = "counts"  # a vector of counts (entity true positives, predicted, gold), aggregated as a whole
    REAL = "real"  # one unbounded number (a sentence's log-perplexity)


class Analysis(str, Enum):
    """How the paired evidence about ``edited - base`` is built; ``editguard.statistics`` holds each method."""

    SCORE_INTERVAL = "score_interval"  # 0/1 outcomes averaged: the corrected paired score test and its bounds
    MEAN_BOOTSTRAP = "mean_bootstrap"  # outcomes in [0, 1] averaged: paired bootstrap, worst-case with few changes
    AGGREGATE_BOOTSTRAP = "aggregate_bootstrap"  # any outcomes: paired bootstrap of the metric's own aggregate


def mean(values: Sequence[Outcome]) -> float:
    numbers = [float(value) for value in values]  # type: ignore[arg-type]
    return sum(numbers) / len(numbers) if numbers else 0.0


def _counts(outcome: Outcome) -> list[float]:
    if not isinstance(outcome, list):
        raise TypeError(f"expected per-example counts, got {outcome!r}")
    return outcome


def micro_f1(counts: Sequence[Outcome]) -> float:
    """Counts per example are (true positives, predicted, gold); 1.0 when nothing was there to find.

    Depends on the summed counts only (``micro_f1(rows) == micro_f1([sum of rows])``), which is what lets
    ``editguard.statistics`` bootstrap it from sums.
    """
    rows = [_counts(count) for count in counts]
    true_positives = sum(row[0] for row in rows)
    denominator = sum(row[1] + row[2] for row in rows)
    return 2 * true_positives / denominator if denominator else 1.0


def macro_recall(counts: Sequence[Outcome]) -> float:
    """Counts per example are (found, gold) pairs per type; recall per type, averaged over the types present."""
    if not counts:
        return 0.0
    rows = [_counts(count) for count in counts]
    recalls = []
    for column in range(0, len(rows[0]), 2):
        found = sum(row[column] for row in rows)
        gold = sum(row[column + 1] for row in rows)
        if gold:
            recalls.append(found / gold)
    return sum(recalls) / len(recalls) if recalls else 0.0


# --- the record and its registry ------------------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    """Everything about one metric; made and checked by ``register_metric``."""

    name: str
    description: str
    aggregate: Aggregate  # per-example outcomes (sorted by example id) -> the score
    kind: OutcomeKind
    analysis: Analysis
    higher_is_better: bool = True
    ratio_of: str | None = None  # the outcome is a log: a difference is shown as the ratio of this quantity (perplexity)

    @property
    def sequential(self) -> bool:
        """Whether the anytime-valid early-stopping path applies: one outcome in [0, 1] per example, averaged."""
        return self.kind in _UNIT_KINDS and self.aggregate is mean


_UNIT_KINDS = (OutcomeKind.BINARY, OutcomeKind.CONTINUOUS)  # one number in [0, 1] per example
_MEAN_ANALYSES = (Analysis.SCORE_INTERVAL, Analysis.MEAN_BOOTSTRAP)  # methods for a mean of such numbers
_DEFAULT_ANALYSIS = {
    OutcomeKind.BINARY: Analysis.SCORE_INTERVAL,
    OutcomeKind.CONTINUOUS: Analysis.MEAN_BOOTSTRAP,
    OutcomeKind.COUNTS: Analysis.AGGREGATE_BOOTSTRAP,
    OutcomeKind.REAL: Analysis.AGGREGATE_BOOTSTRAP,
}
_REGISTRY: dict[str, Metric] = {}
METRICS: Mapping[str, Metric] = MappingProxyType(_REGISTRY)  # a read-only live view: name -> record


def _choice(enum: type[OutcomeKind] | type[Analysis], value: object, what: str, metric: str) -> str:
    """``value`` as a member's value of ``enum``, or a ValueError naming the choices."""
    choices = [member.value for member in enum]
    if value not in choices:
        raise ValueError(f"metric {metric!r}: unknown {what} {value!r}; choose one of {', '.join(choices)}")
    return str(value.value if isinstance(value, Enum) else value)


def _check_analysis(name: str, kind: OutcomeKind, analysis: Analysis, aggregate: Aggregate) -> None:
    if analysis not in _MEAN_ANALYSES:
        return
    if aggregate is not mean:
        raise ValueError(f"metric {name!r}: the {analysis.value} analysis is for averaged outcomes (aggregate=mean); use aggregate_bootstrap")
    allowed = (OutcomeKind.BINARY,) if analysis is Analysis.SCORE_INTERVAL else _UNIT_KINDS
    if kind not in allowed:
        raise ValueError(f"metric {name!r}: the {analysis.value} analysis needs {' or '.join(k.value for k in allowed)} outcomes, not {kind.value}")


def register_metric(
    name: str,
    description: str,
    aggregate: Aggregate,
    kind: OutcomeKind | str,
    *,
    analysis: Analysis | str | None = None,
    higher_is_better: bool = True,
    ratio_of: str | None = None,
) -> Metric:
    """Check and register a metric; the record is returned.  Raises ValueError for a name already taken, a
    missing aggregate or description, an unknown kind or analysis, or an analysis that does not fit the metric.

    Without ``analysis``: the paired score test for 0/1 outcomes and the bootstrap of the mean for numbers in
    [0, 1] when the aggregate is ``mean``, else the bootstrap of the aggregate.
    """
    if not name or not description:
        raise ValueError(f"metric {name!r}: a metric needs a name and a description")
    if name in _REGISTRY:
        raise ValueError(f"metric {name!r} is already registered ({_REGISTRY[name].description})")
    if not callable(aggregate):
        raise ValueError(f"metric {name!r}: aggregate must be a function from per-example outcomes to a score, got {aggregate!r}")
    outcome_kind = OutcomeKind(_choice(OutcomeKind, kind, "outcome kind", name))
    default = _DEFAULT_ANALYSIS[outcome_kind] if aggregate is mean else Analysis.AGGREGATE_BOOTSTRAP
    chosen = default if analysis is None else Analysis(_choice(Analysis, analysis, "analysis", name))
    _check_analysis(name, outcome_kind, chosen, aggregate)
    metric = Metric(name, description, aggregate, outcome_kind, chosen, bool(higher_is_better), ratio_of)
    _REGISTRY[name] = metric
    return metric


def unregister_metric(name: str) -> None:
    """Remove a registered metric (for tests that register their own)."""
    get_metric(name)
    del _REGISTRY[name]


def get_metric(name: str) -> Metric:
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, _REGISTRY, n=1)
        raise KeyError(f"unknown metric {name!r}" + (f"; did you mean {close[0]!r}?" if close else ""))
    return _REGISTRY[name]


register_metric("accuracy", "fraction of examples answered right", mean, OutcomeKind.BINARY)
register_metric("exact_match", "fraction of answers equal to a gold answer after SQuAD normalisation", mean, OutcomeKind.BINARY)
register_metric("recall@1", "fraction of examples whose top-ranked option is the gold one", mean, OutcomeKind.BINARY)
register_metric("rouge", "mean over examples of the mean of ROUGE-1/2/L F", mean, OutcomeKind.CONTINUOUS)
register_metric("entity_f1", "entity-level micro F1 (seqeval's definition)", micro_f1, OutcomeKind.COUNTS)
register_metric(
    "log_perplexity", "mean over sentences of the mean negative log-likelihood per token (exp of a difference: the perplexity ratio)",
    mean, OutcomeKind.REAL, higher_is_better=False, ratio_of="perplexity",
)  # fmt: skip
register_metric("study_entity_recall", "the study's NER score: substring recall, macro over types", macro_recall, OutcomeKind.COUNTS)


@dataclass(frozen=True)
class ExampleResult:
    """One example's result: its outcome, whether the output could be parsed, its reciprocal rank (choices)."""

    outcome: Outcome
    parsed: bool = True
    reciprocal_rank: float | None = None
    truncated: bool = False  # a request of the example was longer than the model's context and was cut from the left

    def as_json(self) -> dict[str, object]:
        record: dict[str, object] = {"outcome": self.outcome, "parsed": self.parsed, "reciprocal_rank": self.reciprocal_rank}
        return record | ({"truncated": True} if self.truncated else {})

    @classmethod
    def from_json(cls, record: Mapping[str, object]) -> ExampleResult:
        outcome = record["outcome"]
        rank = record.get("reciprocal_rank")
        return cls(
            list(outcome) if isinstance(outcome, list) else float(outcome),  # type: ignore[arg-type]
            bool(record.get("parsed", True)),
            None if rank is None else float(rank),  # type: ignore[arg-type]
            bool(record.get("truncated", False)),
        )


@dataclass(frozen=True)
class Score:
    ability: str
    metric: str
    outcomes: Mapping[str, Outcome]  # example id -> outcome
    unparsed: int = 0  # examples whose output could not be parsed (counted as wrong)
    extras: Mapping[str, float] = field(default_factory=dict)  # secondary metrics, e.g. MRR

    @property
    def n(self) -> int:
        return len(self.outcomes)

    @property
    def value(self) -> float:
        return get_metric(self.metric).aggregate([self.outcomes[key] for key in sorted(self.outcomes)])

    @property
    def unparsed_rate(self) -> float:
        return self.unparsed / self.n if self.n else 0.0

    @classmethod
    def from_results(cls, ability: str, metric: str, results: Mapping[str, ExampleResult]) -> Score:
        """The score of per-example results; mean reciprocal rank is reported when the results carry ranks."""
        ranks = [r.reciprocal_rank for r in results.values() if r.reciprocal_rank is not None]
        extras = {"mrr": round(sum(ranks) / len(ranks), 6)} if ranks else {}
        outcomes = {key: results[key].outcome for key in sorted(results)}
        return cls(ability, metric, outcomes, unparsed=sum(not r.parsed for r in results.values()), extras=extras)
