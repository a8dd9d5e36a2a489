from __future__ import annotations

import json
import os
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
    from editguard.reports.lines import backend_lines
    from editguard.reports.rows import Row

    def rows(*backends: tuple[str, str]) -> list[Row]:
        return [Row(ability, "", "pass", backends=pair) for ability, pair in zip(("nli", "sentiment"), backends)]

    assert backend_lines(rows(("hf", "hf"), ("hf", "hf"))) == []
    assert backend_lines(rows(("engine", "engine"), ("engine", "engine"))) == ["scored: through the engine (--editguard-backend)"]
    mixed = backend_lines(rows(("hf", "engine"), ("engine", "engine")))
    assert mixed[1].startswith("warning: the baselines of nli were scored in process and the edited model through an engine,")
    assert mixed[1].endswith("record the baselines with the same --editguard-backend (--editguard-update-baselines) to compare like with like")


# Found by the fuzz tier (tests/fuzz/test_fuzz_baselines.py)


def _recorded(tmp_path: Path, **changes: object) -> Path:
    path = BaselineStore(tmp_path).write(_baseline())
    path.write_text(json.dumps(json.loads(path.read_text()) | changes))
    return path


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('{"n": ' + "1" * 5000 + "}", r"is not valid JSON \(Exceeds the limit \(4300 digits\) for integer string conversion: value has 5000 digits\); re-record"),
        ("[" * 100_000 + "]" * 100_000, r"is not valid JSON \(maximum recursion depth exceeded while decoding a JSON array"),
    ],
)
def test_a_number_too_long_or_nesting_too_deep_for_python_is_not_valid_json(tmp_path: Path, text: str, says: str) -> None:
    path = BaselineStore(tmp_path).write(_baseline())
    path.write_text(text)
    with pytest.raises(BaselineError, match=says):
        BaselineStore(tmp_path).read("m", "sentiment")


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"versions": ""}, r"field 'versions' is '', not a JSON object"),
        ({"unparsed": ""}, r"field 'unparsed' is '', not a whole number"),
        ({"unparsed": 3}, r"field 'unparsed' is 3, not a count of the 2 examples"),
        ({"extras": [0.5]}, r"field 'extras' is \[0.5\], not a JSON object"),
        ({"extras": {"mrr": "high"}}, r"field 'extras', metric 'mrr': 'high' is not a finite number"),
        ({"versions": {"torch": None}}, r"field 'versions', package 'torch': None is not a version"),
        ({"backend": None}, r"field 'backend' is None, not a string"),
        ({"dtype": 16}, r"field 'dtype' is 16, not a string"),
    ],
)
def test_an_optional_field_of_the_wrong_type_is_refused(tmp_path: Path, changes: dict, says: str) -> None:
    path = _recorded(tmp_path, **changes)
    with pytest.raises(BaselineError, match=f"baseline {path}: {says}; re-record it with --editguard-update-baselines"):
        BaselineStore(tmp_path).read("m", "sentiment")


@pytest.mark.parametrize(("metric", "outcome"), [("entity_f1", [1]), ("entity_f1", []), ("study_entity_recall", [1, 1, 1])])
def test_counts_that_the_metric_cannot_score_are_refused(tmp_path: Path, metric: str, outcome: list) -> None:
    _recorded(tmp_path, metric=metric, outcomes={"0": outcome, "1": outcome})
    with pytest.raises(BaselineError, match=rf"field 'outcomes' holds lists of {len(outcome)} counts, not the counts metric '{metric}' reads"):
        BaselineStore(tmp_path).read("m", "sentiment")


def test_a_format_of_another_editguard_says_what_to_do(tmp_path: Path) -> None:
    _recorded(tmp_path, format=2)
    with pytest.raises(BaselineError, match=r"format 2 is not supported by this editguard \(expects 1\); re-record it with"):
        BaselineStore(tmp_path).read("m", "sentiment")


# Unclear inputs made clear: a baseline file that is no file is not "no baseline"


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda path, tmp: path.symlink_to(os.devnull), rf"is a link to {os.devnull} \(a device\), not a baseline file; remove the link"),
        (lambda path, tmp: path.symlink_to(tmp), r"is a link to .* \(a folder\), not a baseline file; remove the link"),
        (lambda path, tmp: path.symlink_to(tmp / "nowhere"), r"is a link to nothing \(.*nowhere does not exist\), not a baseline file"),
        (lambda path, tmp: path.mkdir(), r"is a folder, not a baseline file; remove it"),
    ],
)
def test_a_baseline_path_that_is_no_file_says_what_it_is(tmp_path: Path, make: object, says: str) -> None:
    from types import SimpleNamespace

    from editguard.errors import GateProblem
    from editguard.preflight import check_baseline_file

    store = BaselineStore(tmp_path / "baselines")
    path = store.path("m", "sentiment")
    path.parent.mkdir(parents=True)
    make(path, tmp_path)  # type: ignore[operator]
    message = f"baseline {path} {says}.* and record the baseline with --editguard-update-baselines$"
    with pytest.raises(BaselineError, match=message):
        store.read("m", "sentiment")
    settings = SimpleNamespace(baselines=tmp_path / "baselines", protocol="default")
    with pytest.raises(GateProblem, match=message):  # the start-up check says the same
        check_baseline_file(settings, "m", "sentiment")  # type: ignore[arg-type]
