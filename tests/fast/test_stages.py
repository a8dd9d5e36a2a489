"""The session's stages, each on its own: given fakes for the stages it reads, no model is loaded."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from editguard.errors import GateProblem
from editguard.statistics.metrics import Score
from editguard.settings import Settings
from editguard.stages.baselines import Baselines
from editguard.stages.edits import EditInfo, EditVariant
from editguard.stages.examples import Examples, sample
from editguard.stages.verdicts import Verdicts
from editguard.tasks import Task
from editguard.statistics.verdict import Outcome

ABILITY = "sentiment"


@dataclass(frozen=True)
class FakeBase:
    name: str = "fake-model"
    fingerprint: str = "w0"
    dtype: str = "float32"
    identity: Any = None

    @property
    def key(self) -> str:
        return self.fingerprint if self.identity is None else self.identity.key


class FakeScoring:
    """Per-example outcomes by delta: ``None`` is the base; a delta is a mapping id -> outcome."""

    def __init__(self, base_outcome: float = 1.0):
        self.base_outcome = base_outcome
        self.calls: list[tuple[str, int]] = []

    def results(self, task: Task, examples: Any, delta: Any = None) -> dict[str, Any]:
        from editguard.statistics.metrics import ExampleResult

        self.calls.append((task.name, len(examples)))
        return {e.id: ExampleResult(self.base_outcome if delta is None else delta.get(e.id, self.base_outcome)) for e in examples}

    def score(self, task: Task, examples: Any, delta: Any = None) -> Score:
        return Score.from_results(task.name, task.metric, self.results(task, examples, delta))


class FakeEdits:
    def __init__(self, *deltas: dict[str, float]):
        self.variants = [EditVariant(f"edit {i + 1}", d, EditInfo(f"fake edit {i + 1}", None, 0.0, ())) for i, d in enumerate(deltas)]
        self.curve_series = {"plain": {i + 1: d for i, d in enumerate(deltas)}}


def _stages(tmp_path: Path, scoring: FakeScoring | None = None, **changes: Any) -> tuple[Settings, Examples, Baselines]:
    settings = Settings(**{"baselines": tmp_path / "baselines", "limit": 40, "abilities": (ABILITY,), **changes})
    examples = Examples(settings)
    return settings, examples, Baselines(settings, examples, scoring or FakeScoring(), FakeBase)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- examples


def test_examples_are_a_fixed_stratified_sample_of_the_probe_data(tmp_path: Path) -> None:
    settings, examples, _ = _stages(tmp_path)
    task = examples.task(ABILITY)
    chosen = examples.sample(task)
    assert len(chosen) == 40 and len(examples.all(task)) > 40
    assert {e.stratum for e in chosen} == {"0", "1"}
    assert [e.id for e in chosen] == [e.id for e in sample(list(reversed(examples.all(task))), 40)][::-1]
    assert examples.fingerprint(task) == Examples(replace(settings, limit=10)).fingerprint(task)  # the sample is not the data


def test_data_that_does_not_load_is_a_gate_problem_naming_the_source(tmp_path: Path) -> None:
    _, examples, _ = _stages(tmp_path, data={ABILITY: f"file:{tmp_path / 'absent.jsonl'}"})
    with pytest.raises(GateProblem, match=r"cannot load the sentiment data \(file:.*absent.jsonl\)"):
        examples.all(examples.task(ABILITY))


# ----------------------------------------------------------------------------- baselines


def test_a_missing_baseline_says_how_to_record_it(tmp_path: Path) -> None:
    _, _, baselines = _stages(tmp_path)
    with pytest.raises(GateProblem, match="no baseline for sentiment at .*--editguard-update-baselines"):
        baselines.checked(ABILITY)


def test_a_recorded_baseline_is_read_back_and_checked(tmp_path: Path) -> None:
    _, _, baselines = _stages(tmp_path)
    baseline, path = baselines.record(ABILITY)
    assert path == tmp_path / "baselines" / "fake-model" / "sentiment.json"
    assert (baseline.score, baseline.n, baseline.model_fingerprint) == (1.0, 40, "w0")
    assert baselines.checked(ABILITY) == baseline


def test_a_baseline_of_other_weights_or_a_smaller_sample_is_not_used(tmp_path: Path) -> None:
    settings, examples, baselines = _stages(tmp_path)
    baselines.record(ABILITY)
    other_weights = Baselines(settings, examples, FakeScoring(), lambda: FakeBase(fingerprint="w1"))  # type: ignore[arg-type]
    with pytest.raises(GateProblem, match="is stale: it was recorded on other base weights"):
        other_weights.checked(ABILITY)
    _, _, larger = _stages(tmp_path, limit=80)
    with pytest.raises(GateProblem, match="lacks example .* smaller --editguard-limit"):
        larger.checked(ABILITY)


# ----------------------------------------------------------------------------- verdicts


def _verdicts(tmp_path: Path, edits: FakeEdits, **changes: Any) -> Verdicts:
    scoring = FakeScoring()
    settings, examples, baselines = _stages(tmp_path, scoring, **changes)
    baselines.record(ABILITY)
    return Verdicts(settings, examples, scoring, baselines, edits)  # type: ignore[arg-type]


def _broken(tmp_path: Path, count: int) -> dict[str, float]:
    """A delta (for the fake scoring) that turns the first ``count`` sampled examples wrong."""
    _, examples, _ = _stages(tmp_path)
    return {e.id: 0.0 for e in examples.sample(examples.task(ABILITY))[:count]}


def test_the_worst_edited_model_decides(tmp_path: Path) -> None:
    verdicts = _verdicts(tmp_path, FakeEdits({}, _broken(tmp_path, 30), {}), tolerance=0.1)
    judged = verdicts.worst(verdicts.inputs(ABILITY))
    assert judged.variant.label == "edit 2"
    assert judged.verdict.outcome is Outcome.FAIL
    assert (judged.verdict.negative_flips, judged.verdict.positive_flips) == (30, 0)


def test_an_unchanged_model_passes_and_the_curve_has_a_point_per_count(tmp_path: Path) -> None:
    verdicts = _verdicts(tmp_path, FakeEdits({}, _broken(tmp_path, 30)), tolerance=0.1)
    assert verdicts.verdict(verdicts.inputs(ABILITY), {}).outcome is Outcome.PASS
    curve = verdicts.curve(verdicts.inputs(ABILITY))
    assert [(count, verdict) for count, _, verdict in curve["plain"]] == [(1, "pass"), (2, "fail")]


def test_early_stopping_scores_a_chunk_at_a_time_and_stops_when_settled(tmp_path: Path) -> None:
    verdicts = _verdicts(tmp_path, FakeEdits({}), tolerance=0.3, early_stop=True, chunk=10, limit=160)
    verdict = verdicts.verdict(verdicts.inputs(ABILITY), {})
    assert verdict.sequential and verdict.outcome is Outcome.PASS
    assert verdict.n < 160
    scoring = verdicts.scoring
    assert [n for _, n in scoring.calls[-3:]] == sorted(n for _, n in scoring.calls[-3:])  # growing chunks  # type: ignore[attr-defined]


def test_the_stages_import_no_torch() -> None:
    code = "import editguard.session, editguard.stages.verdicts, sys; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
