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
    with pytest.raises(OSError):
        store.write(_baseline(score=0.9))
    assert path.read_text() == before
    assert [p.name for p in path.parent.iterdir()] == ["sentiment.json"]


def test_staleness_says_why() -> None:
    current = dict(task_version=1, task_fingerprint="t", model_fingerprint="w")
    assert staleness(_baseline(), **current) is None
    assert "task version" in str(staleness(_baseline(task_version=0), **current))
    assert "data or prompt changed" in str(staleness(_baseline(task_fingerprint="x"), **current))
    assert "other base weights" in str(staleness(_baseline(model_fingerprint="x"), **current))
