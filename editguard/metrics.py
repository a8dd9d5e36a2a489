"""Metrics and scores: per-example outcomes and how they aggregate.  Plain Python, no model.

A ``Score`` keeps every example's outcome keyed by example id, not just the mean, so a base and an
edited model can be compared on exactly the same examples.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True)
class Metric:
    name: str
    description: str
    aggregate: Callable[[Sequence[float]], float]
    higher_is_better: bool = True


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


METRICS: Mapping[str, Metric] = MappingProxyType(
    {
        "accuracy": Metric("accuracy", "fraction of examples whose highest-likelihood choice is the gold one", mean),
    }
)


def get_metric(name: str) -> Metric:
    if name not in METRICS:
        close = difflib.get_close_matches(name, METRICS, n=1)
        raise KeyError(f"unknown metric {name!r}" + (f"; did you mean {close[0]!r}?" if close else ""))
    return METRICS[name]


@dataclass(frozen=True)
class Score:
    ability: str
    metric: str
    outcomes: Mapping[str, float]  # example id -> outcome (1.0 right / 0.0 wrong for accuracy)

    @property
    def n(self) -> int:
        return len(self.outcomes)

    @property
    def value(self) -> float:
        return get_metric(self.metric).aggregate([self.outcomes[key] for key in sorted(self.outcomes)])

    def restricted_to(self, ids: Sequence[str]) -> Score:
        """The same score over a subset of its examples (all of ``ids`` must be present)."""
        return Score(self.ability, self.metric, {key: self.outcomes[key] for key in ids})
