"""The output cache: a re-run with unchanged keys reads it; a changed model, prompt or dtype misses."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from editguard.metrics import ExampleResult
from editguard.outputs import OutputCache
from editguard.session import Session
from editguard.settings import Settings

ABILITY = "sentiment"


def _delta_file(tmp_path: Path, scale: float, name: str) -> Path:
    """A small real edit of the tiny model: one MLP weight nudged."""
    from editguard.editing.delta import WeightDelta
    from editguard.models import TINY, load_model

    model = load_model(TINY, device="cpu", cache_dir=tmp_path).model
    weight = dict(model.named_parameters())["transformer.h.0.mlp.c_proj.weight"]
    path = tmp_path / name
    WeightDelta({"transformer.h.0.mlp.c_proj.weight": weight.detach() * scale}).save(path)
    return path


def _session(tmp_path: Path, **changes: Any) -> Session:
    values: dict[str, Any] = {"model": "tiny-gpt2", "device": "cpu", "cache_dir": tmp_path / "cache", "limit": 6}
    settings = Settings(**{**values, **changes})
    return Session(settings)


def _scored(session: Session, *, edited: bool = False) -> tuple[dict[str, float], int]:
    """(outcomes, how many of them the output cache served)."""
    score = session.score(ABILITY, edited=edited)
    return dict(score.outcomes), session.cached_counts[(ABILITY, edited)]


def test_a_rerun_with_unchanged_keys_reads_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, served = _scored(_session(tmp_path))
    assert served == 0
    again = _session(tmp_path)
    monkeypatch.setattr(Session, "_score_now", lambda *args: pytest.fail("scored although the cache holds every result"))
    second, served = _scored(again)
    assert (second, served) == (first, 6)


def test_a_changed_model_misses(tmp_path: Path) -> None:
    _scored(_session(tmp_path))
    edited = _session(tmp_path, edited=_delta_file(tmp_path, 0.5, "a.safetensors"))
    assert _scored(edited, edited=True)[1] == 0  # base + delta is another model
    assert _scored(edited, edited=False)[1] == 6  # the base itself is unchanged
    other = _session(tmp_path, edited=_delta_file(tmp_path, -0.5, "b.safetensors"))
    assert _scored(other, edited=True)[1] == 0  # another delta, another model
    assert _scored(_session(tmp_path, edited=tmp_path / "a.safetensors"), edited=True)[1] == 6


def test_a_changed_prompt_misses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _scored(_session(tmp_path))
    original = Session.task
    reworded = lambda self, ability: dataclasses.replace(original(self, ability), template="Review: {sentence}\nThe review is")  # noqa: E731
    monkeypatch.setattr(Session, "task", reworded)
    assert _scored(_session(tmp_path))[1] == 0


def test_a_changed_dtype_misses(tmp_path: Path) -> None:
    import torch

    _scored(_session(tmp_path))
    session = _session(tmp_path)
    session.base.model.to(torch.float64)
    assert session.evaluator_settings["dtype"] == "torch.float64"
    assert _scored(session)[1] == 0


def test_rescore_ignores_the_cache_and_refreshes_it(tmp_path: Path) -> None:
    first, _ = _scored(_session(tmp_path))
    again, served = _scored(_session(tmp_path, rescore=True))
    assert (again, served) == (first, 0)


def test_a_smaller_sample_is_served_and_a_larger_one_scores_only_the_rest(tmp_path: Path) -> None:
    _scored(_session(tmp_path))
    assert _scored(_session(tmp_path, limit=3))[1] == 3
    assert _scored(_session(tmp_path, limit=10))[1] == 6


def test_a_damaged_entry_is_a_miss_and_is_rewritten(tmp_path: Path) -> None:
    session = _session(tmp_path)
    first, _ = _scored(session)
    path = session.outputs.path(session.output_material(session.task(ABILITY)))
    assert path is not None and path.is_file()
    path.write_text("{not json", encoding="utf-8")
    again, served = _scored(_session(tmp_path))
    assert (again, served) == (first, 0)
    assert OutputCache(tmp_path / "cache").load(session.output_material(session.task(ABILITY)))


def test_results_round_trip_through_json() -> None:
    results = [ExampleResult(1.0, True, 0.5), ExampleResult([2.0, 3.0, 4.0], False, None), ExampleResult(0.25)]
    assert [ExampleResult.from_json(result.as_json()) for result in results] == results
