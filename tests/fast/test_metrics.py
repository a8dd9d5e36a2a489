"""The metric records: one record per metric, checked when it is registered, read by stats and verdict."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence

import pytest

from editguard.statistics.metrics import (
    METRICS,
    Analysis,
    Metric,
    Outcome,
    OutcomeKind,
    get_metric,
    macro_recall,
    mean,
    micro_f1,
    register_metric,
    unregister_metric,
)


@pytest.fixture
def register() -> Iterator[Callable[..., Metric]]:
    """``register_metric`` for one test: whatever it registers is unregistered afterwards."""
    names: list[str] = []

    def add(*args: object, **kwargs: object) -> Metric:
        metric = register_metric(*args, **kwargs)  # type: ignore[arg-type]
        names.append(metric.name)
        return metric

    yield add
    for name in names:
        unregister_metric(name)


def median(values: Sequence[Outcome]) -> float:
    numbers = sorted(float(value) for value in values)  # type: ignore[arg-type]
    return numbers[len(numbers) // 2]


@pytest.mark.parametrize(
    ("name", "kind", "analysis", "sequential"),
    [
        ("accuracy", OutcomeKind.BINARY, Analysis.SCORE_INTERVAL, True),
        ("entity_f1", OutcomeKind.COUNTS, Analysis.AGGREGATE_BOOTSTRAP, False),
        ("exact_match", OutcomeKind.BINARY, Analysis.SCORE_INTERVAL, True),
        ("recall@1", OutcomeKind.BINARY, Analysis.SCORE_INTERVAL, True),
        ("rouge", OutcomeKind.CONTINUOUS, Analysis.MEAN_BOOTSTRAP, True),
        ("study_entity_recall", OutcomeKind.COUNTS, Analysis.AGGREGATE_BOOTSTRAP, False),
    ],
)
def test_every_built_in_metric_carries_its_kind_analysis_and_direction(
    name: str, kind: OutcomeKind, analysis: Analysis, sequential: bool
) -> None:
    metric = get_metric(name)
    assert (metric.name, metric.kind, metric.analysis, metric.sequential) == (name, kind, analysis, sequential)
    assert metric.higher_is_better and metric.description


def test_the_built_in_aggregates() -> None:
    assert get_metric("entity_f1").aggregate is micro_f1
    assert get_metric("study_entity_recall").aggregate is macro_recall
    assert micro_f1([[1.0, 2.0, 2.0], [1.0, 1.0, 2.0]]) == pytest.approx(4 / 7)
    assert micro_f1([[0.0, 0.0, 0.0]]) == 1.0
    assert macro_recall([[1.0, 2.0, 0.0, 0.0], [1.0, 2.0, 1.0, 4.0]]) == pytest.approx((2 / 4 + 1 / 4) / 2)


def test_an_unknown_metric_says_what_was_meant() -> None:
    with pytest.raises(KeyError, match="did you mean 'accuracy'"):
        get_metric("acuracy")


def test_a_scalar_metric_registers_with_the_mean_bootstrap(register: Callable[..., Metric]) -> None:
    metric = register("token_f1", "SQuAD token F1 per example, averaged", mean, "continuous")
    assert get_metric("token_f1") is metric is METRICS["token_f1"]
    assert (metric.kind, metric.analysis, metric.sequential) == (OutcomeKind.CONTINUOUS, Analysis.MEAN_BOOTSTRAP, True)


def test_another_aggregate_gets_the_bootstrap_of_that_aggregate(register: Callable[..., Metric]) -> None:
    metric = register("median_rouge", "median ROUGE over examples", median, OutcomeKind.CONTINUOUS)
    assert metric.analysis is Analysis.AGGREGATE_BOOTSTRAP and not metric.sequential


def test_registering_a_name_twice_fails(register: Callable[..., Metric]) -> None:
    register("token_f1", "SQuAD token F1 per example, averaged", mean, OutcomeKind.CONTINUOUS)
    with pytest.raises(ValueError, match="already registered"):
        register_metric("token_f1", "another token F1", mean, OutcomeKind.CONTINUOUS)
    with pytest.raises(ValueError, match="already registered"):
        register_metric("accuracy", "another accuracy", mean, OutcomeKind.BINARY)


@pytest.mark.parametrize(
    ("arguments", "keywords", "message"),
    [
        (("token_f1", "token F1", None, "continuous"), {}, "aggregate must be a function"),
        (("token_f1", "token F1", mean, "scalar"), {}, "unknown outcome kind 'scalar'; choose one of binary"),
        (("token_f1", "", mean, "continuous"), {}, "needs a name and a description"),
        (("token_f1", "token F1", mean, "continuous"), {"analysis": "t_test"}, "unknown analysis 't_test'"),
        (("token_f1", "token F1", mean, "continuous"), {"analysis": "score_interval"}, "needs binary outcomes"),
        (("token_f1", "token F1", median, "continuous"), {"analysis": "mean_bootstrap"}, "aggregate=mean"),
        (("entities", "entity counts", mean, "counts"), {"analysis": "mean_bootstrap"}, "binary or continuous"),
    ],
)
def test_an_incomplete_or_inconsistent_metric_fails_when_it_is_registered(
    arguments: tuple[object, ...], keywords: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        register_metric(*arguments, **keywords)  # type: ignore[arg-type]
    assert arguments[0] not in METRICS


def test_unregistering_an_unknown_metric_fails() -> None:
    with pytest.raises(KeyError, match="unknown metric"):
        unregister_metric("token_f1")


def test_the_metrics_module_imports_neither_numpy_nor_torch() -> None:
    code = "import sys, editguard.statistics.metrics; sys.exit('numpy' in sys.modules or 'torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
