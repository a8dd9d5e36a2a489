"""Aggregates of per-example outcomes as the bootstrap computes them: ``SumAggregate`` (``MEAN``, ``MICRO_F1``),
a function of sums so that many resamples are one matrix product, and ``vectorised``, which picks one for a metric's
aggregate where there is one."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from editguard.statistics.metrics import mean, micro_f1
from editguard.statistics.common import FloatArray, Outcomes


def _as_column(outcomes: FloatArray) -> FloatArray:
    if outcomes.ndim != 1:
        raise ValueError("mean outcomes must be one number per example")
    return outcomes.reshape(-1, 1)


def _mean_of_sums(sums: FloatArray, n: int) -> FloatArray:
    return np.asarray(sums[..., 0] / n, dtype=float)


def _f1_statistics(outcomes: FloatArray) -> FloatArray:
    """What micro F1 sums: the counts themselves, (n, 3)."""
    if outcomes.ndim != 2 or outcomes.shape[1] != 3:
        raise ValueError("entity counts must be [true positives, predicted, gold] for every example")
    return outcomes


def _f1_of_sums(sums: FloatArray, n: int) -> FloatArray:
    """``metrics.micro_f1`` of each row of summed counts (..., 3) -> (...): it depends on the sums alone."""
    rows = sums.reshape(-1, 3).tolist()
    return np.array([micro_f1([row]) for row in rows], dtype=float).reshape(sums.shape[:-1])


@dataclass(frozen=True)
class SumAggregate:
    """An aggregate that is a function of sums of per-example statistics, so many resamples are one matrix product.

    ``statistics`` maps the outcomes array (n, ...) to (n, m); ``combine`` maps sums (..., m) and the number of
    examples to the aggregate (...).  Calling it on a sequence of outcomes gives the aggregate as a float.
    """

    name: str
    statistics: Callable[[FloatArray], FloatArray]
    combine: Callable[[FloatArray, int], FloatArray]

    def __call__(self, outcomes: Outcomes) -> float:
        values = self.statistics(np.asarray(outcomes, dtype=float))
        return float(self.combine(values.sum(axis=0), len(values)))


MEAN = SumAggregate("mean", _as_column, _mean_of_sums)
MICRO_F1 = SumAggregate("micro_f1", _f1_statistics, _f1_of_sums)  # metrics.micro_f1 from summed counts
_VECTORISED: Mapping[Callable[..., float], SumAggregate] = {mean: MEAN, micro_f1: MICRO_F1}


def vectorised(aggregate: Callable[[Sequence[Any]], float]) -> Callable[[Sequence[Any]], float]:
    """The ``SumAggregate`` that computes a metric's aggregate from sums, where there is one; else the aggregate."""
    return _VECTORISED.get(aggregate, aggregate)


def _as_list(outcomes: Outcomes) -> list[Any]:
    """Outcomes as a plain list (rows of an array become lists), which is what a generic aggregate is given."""
    return outcomes.tolist() if isinstance(outcomes, np.ndarray) else list(outcomes)
