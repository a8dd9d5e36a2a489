"""Metrics and scores: per-example outcomes and how they aggregate.  Plain Python, no model.

A ``Score`` keeps every example's outcome keyed by example id, not just the aggregate, so a base and an
edited model can be compared on exactly the same examples.  Most outcomes are one number per example
(1/0 for accuracy, a ROUGE value); entity F1 keeps counts per example, because F1 is not a mean of
per-sentence F1s.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

Outcome = float | list[float]


@dataclass(frozen=True)
class Metric:
    name: str
    description: str
    aggregate: Callable[[Sequence[Outcome]], float]
    higher_is_better: bool = True


def mean(values: Sequence[Outcome]) -> float:
    numbers = [float(value) for value in values]  # type: ignore[arg-type]
    return sum(numbers) / len(numbers) if numbers else 0.0


def _counts(outcome: Outcome) -> list[float]:
    if not isinstance(outcome, list):
        raise TypeError(f"expected per-example counts, got {outcome!r}")
    return outcome


def micro_f1(counts: Sequence[Outcome]) -> float:
    """Counts per example are (true positives, predicted, gold); 1.0 when nothing was there to find."""
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


METRICS: Mapping[str, Metric] = MappingProxyType(
    {
        "accuracy": Metric("accuracy", "fraction of examples answered right", mean),
        "exact_match": Metric("exact_match", "fraction of answers equal to a gold answer after SQuAD normalisation", mean),
        "recall@1": Metric("recall@1", "fraction of examples whose top-ranked option is the gold one", mean),
        "rouge": Metric("rouge", "mean over examples of the mean of ROUGE-1/2/L F", mean),
        "entity_f1": Metric("entity_f1", "entity-level micro F1 (seqeval's definition)", micro_f1),
        "study_entity_recall": Metric("study_entity_recall", "the study's NER score: substring recall, macro over types", macro_recall),
    }
)


def get_metric(name: str) -> Metric:
    if name not in METRICS:
        close = difflib.get_close_matches(name, METRICS, n=1)
        raise KeyError(f"unknown metric {name!r}" + (f"; did you mean {close[0]!r}?" if close else ""))
    return METRICS[name]


@dataclass(frozen=True)
class ExampleResult:
    """One example's result: its outcome, whether the output could be parsed, its reciprocal rank (choices)."""

    outcome: Outcome
    parsed: bool = True
    reciprocal_rank: float | None = None

    def as_json(self) -> dict[str, object]:
        return {"outcome": self.outcome, "parsed": self.parsed, "reciprocal_rank": self.reciprocal_rank}

    @classmethod
    def from_json(cls, record: Mapping[str, object]) -> ExampleResult:
        outcome = record["outcome"]
        rank = record.get("reciprocal_rank")
        return cls(
            list(outcome) if isinstance(outcome, list) else float(outcome),  # type: ignore[arg-type]
            bool(record.get("parsed", True)),
            None if rank is None else float(rank),  # type: ignore[arg-type]
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

    def restricted_to(self, ids: Sequence[str]) -> Score:
        """The same score over a subset of its examples (all of ``ids`` must be present)."""
        return Score(self.ability, self.metric, {key: self.outcomes[key] for key in ids})
