"""Baseline files (``baselines.py``): well-formed records of every metric, mutated, and odd documents.

``BaselineStore.read`` gives a ``Baseline`` whose every field has its declared type and whose values a verdict
can be computed from (finite, of the metric's shape, as many outcomes as ``n``), or one ``BaselineError``
sentence naming the file; the start-up check (``preflight.check_baseline_file``) turns it into a ``GateProblem``.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from fuzz_support import FUZZ, ODD_DOCUMENTS, assert_one_sentence, byte_damage, count, fresh_folder, odd_bytes, odd_text, odd_value
from hypothesis import given, settings
from hypothesis import strategies as st

from editguard.baselines import Baseline, BaselineStore
from editguard.errors import GateProblem
from editguard.statistics.metrics import METRICS, OutcomeKind, get_metric
from editguard.preflight import check_baseline_file

counts = st.integers(0, 40)
OUTCOMES = {
    "accuracy": st.sampled_from([0, 1, 0.0, 1.0]),
    "exact_match": st.sampled_from([0, 1]),
    "recall@1": st.sampled_from([0.0, 1.0]),
    "rouge": st.floats(0, 1),
    "log_perplexity": st.floats(-20, 20),
    "entity_f1": st.lists(counts, min_size=3, max_size=3),
    "study_entity_recall": st.lists(counts, min_size=8, max_size=8),
}
ODD_OUTCOMES = st.one_of(
    odd_value,
    st.sampled_from([[], [1], [1, 2], [1, 2, 3, 4], [1, -1, 2], [float("nan"), 1, 1], [0.5], 0.5, 2, -1, True]),
)
words = st.text(max_size=12)


@st.composite
def baseline_record(draw: Any) -> dict[str, Any]:
    metric = draw(st.sampled_from(sorted(OUTCOMES)))
    outcomes = {str(key): draw(OUTCOMES[metric]) for key in draw(st.lists(st.integers(0, 10**6), max_size=6, unique=True))}
    record: dict[str, Any] = {
        "ability": draw(st.sampled_from(["sentiment", "ner", "canary"])), "metric": metric, "score": draw(st.floats(0, 1)),
        "n": len(outcomes), "outcomes": outcomes, "task_version": draw(st.integers(1, 3)), "task_fingerprint": draw(words),
        "model": "m", "model_fingerprint": draw(words),
    }  # fmt: skip
    optional = {
        "versions": {"torch": "2.13.0", "transformers": "5.23.0"}, "protocol": "default", "data": "probe",
        "dtype": draw(st.sampled_from(["float32", "bfloat16"])), "backend": draw(st.sampled_from(["hf", "engine"])),
        "unparsed": draw(st.integers(0, len(outcomes))), "extras": {"mrr": draw(st.floats(0, 1))}, "format": 1,
        "identity": draw(st.sampled_from([{}, {"tokenizer": {"vocab": "ab12"}, "config": "cd34"}])),
    }  # fmt: skip
    record.update({key: value for key, value in optional.items() if draw(st.booleans())})
    return record


@st.composite
def mutated(draw: Any, record: dict[str, Any]) -> Any:
    """The record kept, or one field dropped or set to an odd value, an outcome or ``n`` changed, or no object."""
    record = copy.deepcopy(record)
    kind = draw(st.sampled_from(["keep", "keep", "drop", "set", "set", "outcome", "shape", "n", "add", "replace"]))
    if kind == "replace":
        return draw(odd_value)
    if kind == "drop":
        del record[draw(st.sampled_from(sorted(record)))]
    elif kind == "set":
        record[draw(st.sampled_from(sorted(record)))] = draw(st.one_of(odd_value, odd_text))
    elif kind == "outcome":
        record["outcomes"][draw(st.sampled_from(["0", "1", *record["outcomes"]]))] = draw(ODD_OUTCOMES)
        record["n"] = len(record["outcomes"])
    elif kind == "shape":  # every outcome of one odd shape (lists of one count, say)
        shape = draw(ODD_OUTCOMES)
        record["outcomes"] = {key: shape for key in record["outcomes"] or ["0"]}
        record["n"] = len(record["outcomes"])
    elif kind == "n":
        record["n"] = draw(st.one_of(st.integers(-2, 8), st.sampled_from([1.0, "2", None, True])))
    elif kind == "add":
        record[draw(st.sampled_from(["colour", "format", "identity", "versions", "extras"]))] = draw(odd_value)
    return record


@st.composite
def baseline_file(draw: Any) -> bytes:
    record = draw(mutated(draw(baseline_record())))
    data = json.dumps(record, indent=draw(st.sampled_from([None, 2])), ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")
    return byte_damage(data, draw) if draw(st.integers(0, 7)) == 7 else data


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check_baseline(baseline: Baseline) -> None:
    """Each field of its declared type, and values a verdict can be computed from."""
    for name in ("ability", "metric", "task_fingerprint", "model", "model_fingerprint", "protocol", "data", "dtype", "backend"):
        assert isinstance(getattr(baseline, name), str), (name, getattr(baseline, name))
    for name in ("n", "task_version", "unparsed", "format"):
        value = getattr(baseline, name)
        assert isinstance(value, int) and not isinstance(value, bool), (name, value)
    assert _number(baseline.score)
    assert baseline.n == len(baseline.outcomes) and 0 <= baseline.unparsed <= baseline.n
    assert isinstance(baseline.versions, Mapping) and all(isinstance(v, str) for v in baseline.versions.values()), baseline.versions
    assert isinstance(baseline.extras, Mapping) and all(_number(v) for v in baseline.extras.values()), baseline.extras
    assert isinstance(baseline.identity, Mapping)
    metric = get_metric(baseline.metric)
    for outcome in baseline.outcomes.values():
        if metric.kind is OutcomeKind.COUNTS:
            assert isinstance(outcome, list) and all(_number(value) and value >= 0 for value in outcome)
        else:
            assert _number(outcome)
            assert metric.kind is OutcomeKind.REAL or 0 <= outcome <= 1
    assert math.isfinite(metric.aggregate(list(baseline.outcomes.values())))  # the score can be computed again


def _read(folder: Path, data: bytes) -> tuple[Path, Baseline | None, Exception | None]:
    store = BaselineStore(folder)
    path = store.path("m", "sentiment")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    try:
        return path, store.read("m", "sentiment"), None
    except Exception as error:  # noqa: BLE001 -- the property: editguard's own error, or none
        return path, None, error


def _start_up_check(folder: Path) -> Exception | None:
    """What the start-up check makes of the same file (a GateProblem, or nothing)."""
    settings = SimpleNamespace(baselines=folder, protocol="default")
    try:
        check_baseline_file(settings, "m", "sentiment")  # type: ignore[arg-type]
    except Exception as error:  # noqa: BLE001
        return error
    return None


@settings(FUZZ, max_examples=800)
@given(data=baseline_file())
def test_a_baseline_file_is_read_in_its_schema_or_refused_in_one_sentence(tmp_path: Path, data: bytes) -> None:
    count("baselines")
    folder = fresh_folder(tmp_path)
    path, baseline, error = _read(folder, data)
    if error is not None:
        assert_one_sentence(error, str(path))
        problem = _start_up_check(folder)
        assert isinstance(problem, GateProblem) and str(problem) == str(error)
        return
    assert baseline is not None
    _check_baseline(baseline)
    assert _start_up_check(folder) is None


@settings(FUZZ, max_examples=60)
@given(data=st.one_of(ODD_DOCUMENTS, odd_bytes))
def test_an_odd_baseline_document_is_one_sentence(tmp_path: Path, data: bytes) -> None:
    count("baselines-odd")
    path, baseline, error = _read(fresh_folder(tmp_path), data)
    assert baseline is None and error is not None
    assert_one_sentence(error, str(path))


def test_every_metric_is_fuzzed() -> None:
    assert set(OUTCOMES) == set(METRICS)
