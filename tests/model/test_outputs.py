"""The output cache: a re-run with unchanged keys reads it; a changed model, prompt or dtype misses."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from editguard.statistics.metrics import ExampleResult
from editguard.backends.outputs import OutputCache
from editguard.settings import Settings
from editguard.stages.examples import Examples
from editguard.stages.scoring import Scoring, score_examples

ABILITY = "sentiment"


@pytest.fixture
def model(tmp_path: Path) -> Any:
    """A fresh tiny model (a test may change its dtype)."""
    from editguard.models import TINY, load_model

    return load_model(TINY, device="cpu", cache_dir=tmp_path)


def _delta(model: Any, scale: float) -> Any:
    """A small real edit of the tiny model: one MLP weight nudged."""
    from editguard.editing.delta import WeightDelta

    weight = dict(model.model.named_parameters())["transformer.h.0.mlp.c_proj.weight"]
    return WeightDelta({"transformer.h.0.mlp.c_proj.weight": weight.detach() * scale})


def _stages(tmp_path: Path, model: Any, examples: type[Examples] = Examples, scorer: Any = score_examples, **changes: Any) -> Scoring:
    values: dict[str, Any] = {"model": "tiny-gpt2", "device": "cpu", "cache_dir": tmp_path / "cache", "limit": 6}
    settings = Settings(**{**values, **changes})
    return Scoring(settings, examples(settings), lambda: model, scorer=scorer)


def _scored(scoring: Scoring, delta: Any = None) -> tuple[dict[str, Any], int]:
    """(outcomes, how many of them the output cache served)."""
    task = scoring.examples.task(ABILITY)
    score = scoring.score(task, scoring.examples.sample(task), delta)
    return dict(score.outcomes), scoring.cached_counts[(ABILITY, delta is not None)]


def _never(*args: Any) -> Any:
    pytest.fail("scored although the cache holds every result")


def test_a_rerun_with_unchanged_keys_reads_the_cache(tmp_path: Path, model: Any) -> None:
    first, served = _scored(_stages(tmp_path, model))
    assert served == 0
    second, served = _scored(_stages(tmp_path, model, scorer=_never))
    assert (second, served) == (first, 6)


def test_a_changed_model_misses(tmp_path: Path, model: Any) -> None:
    _scored(_stages(tmp_path, model))
    edited = _stages(tmp_path, model)
    assert _scored(edited, _delta(model, 0.5))[1] == 0  # base + delta is another model
    assert _scored(edited)[1] == 6  # the base itself is unchanged
    assert _scored(_stages(tmp_path, model), _delta(model, -0.5))[1] == 0  # another delta, another model
    assert _scored(_stages(tmp_path, model, scorer=_never), _delta(model, 0.5))[1] == 6


def test_a_changed_prompt_misses(tmp_path: Path, model: Any) -> None:
    _scored(_stages(tmp_path, model))

    class Reworded(Examples):
        def task(self, ability: str) -> Any:
            return dataclasses.replace(super().task(ability), template="Review: {sentence}\nThe review is")

    assert _scored(_stages(tmp_path, model, examples=Reworded))[1] == 0


def test_a_changed_dtype_misses(tmp_path: Path, model: Any) -> None:
    import torch

    _scored(_stages(tmp_path, model))
    model.model.to(torch.float64)
    scoring = _stages(tmp_path, model)
    assert scoring.evaluator_settings["dtype"] == "torch.float64"
    assert _scored(scoring)[1] == 0


def test_rescore_ignores_the_cache_and_refreshes_it(tmp_path: Path, model: Any) -> None:
    first, _ = _scored(_stages(tmp_path, model))
    again, served = _scored(_stages(tmp_path, model, rescore=True))
    assert (again, served) == (first, 0)


def test_a_smaller_sample_is_served_and_a_larger_one_scores_only_the_rest(tmp_path: Path, model: Any) -> None:
    _scored(_stages(tmp_path, model))
    assert _scored(_stages(tmp_path, model, limit=3))[1] == 3
    assert _scored(_stages(tmp_path, model, limit=10))[1] == 6


def test_a_damaged_entry_is_a_miss_and_is_rewritten(tmp_path: Path, model: Any) -> None:
    scoring = _stages(tmp_path, model)
    first, _ = _scored(scoring)
    material = scoring.material(scoring.examples.task(ABILITY))
    path = scoring.outputs.path(material)
    assert path is not None and path.is_file()
    path.write_text("{not json", encoding="utf-8")
    again, served = _scored(_stages(tmp_path, model))
    assert (again, served) == (first, 0)
    assert OutputCache(tmp_path / "cache").load(material)


def test_results_round_trip_through_json() -> None:
    results = [ExampleResult(1.0, True, 0.5), ExampleResult([2.0, 3.0, 4.0], False, None), ExampleResult(0.25)]
    assert [ExampleResult.from_json(result.as_json()) for result in results] == results
