from __future__ import annotations

import json
from pathlib import Path

import pytest

from editguard.baselines import Baseline, BaselineError, BaselineStore, staleness


def _baseline(**changes: object) -> Baseline:
    values: dict = dict(
        ability="sentiment", metric="accuracy", score=0.5, n=2, outcomes={"1": 1.0, "0": 0.0},
        task_version=1, task_fingerprint="t", model="m", model_fingerprint="w",
    )
    values.update(changes)
    return Baseline(**values)


def test_write_then_read_round_trips(tmp_path: Path) -> None:
    store = BaselineStore(tmp_path)
    path = store.write(_baseline())
    assert path == tmp_path / "m" / "sentiment.json"
    assert store.read("m", "sentiment") == _baseline()
    assert list(json.loads(path.read_text())["outcomes"]) == ["0", "1"]  # stable order for review diffs
    assert [p.name for p in path.parent.iterdir()] == ["sentiment.json"]  # no temporary files left


def test_missing_is_none(tmp_path: Path) -> None:
    assert BaselineStore(tmp_path).read("m", "sentiment") is None


def test_corrupt_files_raise_a_sentence_naming_the_file(tmp_path: Path) -> None:
    store = BaselineStore(tmp_path)
    path = store.write(_baseline())
    path.write_text("{ half", encoding="utf-8")
    with pytest.raises(BaselineError, match="not valid JSON"):
        store.read("m", "sentiment")
    path.write_text(json.dumps({"ability": "sentiment"}), encoding="utf-8")
    with pytest.raises(BaselineError, match=r"field 'metric' is missing"):
        store.read("m", "sentiment")


def test_a_failed_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = BaselineStore(tmp_path)
    path = store.write(_baseline())
    before = path.read_text()

    def explode(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", explode)
    with pytest.raises(BaselineError, match="cannot be written"):
        store.write(_baseline(score=0.9))
    assert path.read_text() == before
    assert [p.name for p in path.parent.iterdir()] == ["sentiment.json"]


def test_staleness_says_why() -> None:
    current = dict(task_version=1, task_fingerprint="t", model_fingerprint="w")
    assert staleness(_baseline(), **current) is None
    assert "task version" in str(staleness(_baseline(task_version=0), **current))
    assert "data or prompt changed" in str(staleness(_baseline(task_fingerprint="x"), **current))
    assert "other base weights" in str(staleness(_baseline(model_fingerprint="x"), **current))


def test_a_baseline_says_which_backend_scored_it_only_when_it_was_not_in_process(tmp_path: Path) -> None:
    store = BaselineStore(tmp_path)
    assert "backend" not in json.loads(store.write(_baseline()).read_text())  # files recorded in process stay as they were
    path = store.write(_baseline(ability="nli", backend="engine"))
    assert json.loads(path.read_text())["backend"] == "engine"
    assert store.read("m", "nli") == _baseline(ability="nli", backend="engine")


def test_baselines_and_edited_models_scored_by_different_backends_are_told() -> None:
    from editguard.plugin import backend_lines
    from editguard.report import Row

    def rows(*backends: tuple[str, str]) -> list[Row]:
        return [Row(ability, "", "pass", backends=pair) for ability, pair in zip(("nli", "sentiment"), backends)]

    assert backend_lines(rows(("hf", "hf"), ("hf", "hf"))) == []
    assert backend_lines(rows(("engine", "engine"), ("engine", "engine"))) == ["scored: through the engine (--editguard-backend)"]
    mixed = backend_lines(rows(("hf", "engine"), ("engine", "engine")))
    assert mixed[1].startswith("warning: the baselines of nli were scored in process and the edited model through an engine,")
    assert mixed[1].endswith("record the baselines with the same --editguard-backend (--editguard-update-baselines) to compare like with like")
