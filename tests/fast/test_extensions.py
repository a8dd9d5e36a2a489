"""One file per extension, proved: for each kind the architecture page lists (an ability, a metric, an editing method,
an editing mode, a data source, a report format, a scoring backend), a toy registered in the one place that kind
lives is picked up by a gate run end to end on a fake backend: the stages (examples, scoring, baselines, edits,
verdicts), Holm's correction and the report writers, with no model.  Each test names the file a newcomer adds to."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from editguard.backends.table import BACKENDS, BackendKind
from editguard.editing import methods as methods_module
from editguard.editing import modes as modes_module
from editguard.editing.recipes import Method
from editguard.reports.rows import Measures, verdict_row
from editguard.reports.run import Run, run_verdict, with_holm
from editguard.reports.terminal import terminal_lines
from editguard.reports.writers import WRITERS, Writer, planned
from editguard.settings import Settings, build_settings
from editguard.stages.baselines import Baselines
from editguard.stages.edits import Edits
from editguard.stages.examples import Examples
from editguard.stages.scoring import Scoring
from editguard.stages.verdicts import Verdicts
from editguard.statistics import metrics as metrics_module
from editguard.tasks import registry as ability_registry
from editguard.tasks import sources as sources_module

torch = pytest.importorskip("torch")


# ----------------------------------------------------------------------------- the fake backend and the toy base


class WordCounter:
    """A backend with no model: a continuation's log-likelihood is how often its first word appears in the context,
    less the size of the edit applied (so a large toy edit makes every answer less likely, alike)."""

    tokenizer = None

    def __init__(self, delta: Any = None):
        self.shift = 0.0 if delta is None else float(sum(t.abs().sum() for t in delta.tensors.values()))

    def loglikelihood_with_lengths(self, requests: Sequence[Any]) -> list[tuple[float, int]]:
        return [(float(r.context.count(r.continuation.split()[0])) - self.shift, 1) for r in requests]

    def generate(self, requests: Sequence[Any]) -> list[str]:
        return ["" for _ in requests]

    def truncated(self, requests: Sequence[Any]) -> list[bool]:
        return [False] * len(requests)

    def identity(self) -> dict[str, Any]:
        return {"backend": "word-counter"}

    def close(self) -> None:
        return None


class WordCounters:
    def backend(self, delta: Any = None, *, max_batch: int | None = None) -> WordCounter:
        return WordCounter(delta)

    def identity(self) -> dict[str, Any]:
        return {"backend": "word-counter"}

    def explain(self, error: Exception) -> str:
        return str(error)

    def close(self) -> None:
        return None


WORD_COUNTER = BackendKind("words", "a backend that counts words (tests)", "hf", lambda *args: WordCounters(), lambda settings: None)


@pytest.fixture(autouse=True)
def fake_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(BACKENDS, "words", WORD_COUNTER)


def toy_base() -> Any:
    """The base model: one weight, so that an editor has something to change."""
    model = torch.nn.Module()
    model.weight = torch.nn.Parameter(torch.zeros(2, 2))
    return SimpleNamespace(name="toy", key="toy-key", fingerprint="toy-weights", dtype="float32", device="cpu", identity=None,
                           model=model, tokenizer=None)  # fmt: skip


def gate(tmp_path: Path, ability: str = "sentiment", **changes: Any) -> tuple[Run, Settings]:
    """Record the baseline of ``ability`` on the fake backend, gate the edit, and tell the run as the reports do."""
    values = dict(backend="words", baselines=tmp_path / "baselines", cache_dir=tmp_path / "cache", limit=16, no_signal="gate", tolerance=0.5)
    settings = Settings(**{**values, **changes})  # type: ignore[arg-type]
    base = toy_base()
    examples = Examples(settings)
    scoring = Scoring(settings, examples, lambda: base, progress=False)
    baselines = Baselines(settings, examples, scoring, lambda: base)
    baselines.record(ability)
    verdicts = Verdicts(settings, examples, scoring, baselines, Edits(settings, lambda: base))
    inputs = verdicts.inputs(ability)
    judged = verdicts.worst(inputs)
    curve = verdicts.curve(inputs) if settings.edit_counts else None
    row = verdict_row(inputs.task, judged.verdict, judged.variant.info, Measures(available=len(inputs.examples), curve=curve))
    rows, _ = with_holm([row], settings.alpha, settings.fail_rule)
    status = 0 if rows[0].passed else 1
    return Run(run_verdict(status, rows), status, tuple(rows), model="toy"), settings


def _toy_editor_session(record: Method, model: Any, tokenizer: Any, hparams: dict[str, Any], **options: Any) -> Any:
    return ToyEditor(model, hparams)


class ToyEditor:
    """An edit session that adds ``step`` to the weight per request."""

    def __init__(self, model: Any, hparams: dict[str, Any]):
        self.model, self.step = model, float(hparams.get("step", 0.01))

    def __enter__(self) -> ToyEditor:
        self.saved = self.model.weight.detach().clone()
        return self

    def __exit__(self, *exc: object) -> None:
        self.restart()

    def apply(self, requests: Sequence[Any]) -> list[dict[str, Any]]:
        with torch.no_grad():
            self.model.weight.add_(self.step * len(requests))
        return [{"editguard": {"weights_changed": True, "seconds": 0.0}} for _ in requests]

    def apply_batch(self, requests: Sequence[Any]) -> list[dict[str, Any]]:
        return self.apply(requests)

    def delta(self) -> Any:
        from editguard.editing.delta import WeightDelta

        return WeightDelta({"weight": self.model.weight.detach() - self.saved})

    def restart(self) -> None:
        with torch.no_grad():
            self.model.weight.copy_(self.saved)


TOY_METHOD = Method("TOY", lambda model: {"step": 0.01}, lambda model, hparams: ["weight"], _toy_editor_session, lambda: "toy 1", batchable=True)


@pytest.fixture
def toy_method(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setitem(methods_module.METHODS, "TOY", TOY_METHOD)
    yield


# ----------------------------------------------------------------------------- one test per kind of extension


def test_a_scoring_backend_is_one_record_in_backends_table(tmp_path: Path, toy_method: None) -> None:
    """editguard/backends/table.py: the word counter above scored the base and the edited model; the settings accept
    its name, and the output cache keys its results by its identity."""
    run, settings = gate(tmp_path, method="TOY")
    assert run.rows[0].verdict == "pass" and run.rows[0].n == 16
    assert build_settings({"backend": "words"}, {}, {}, rootdir=tmp_path).backend == "words"
    cached = list((tmp_path / "cache" / "outputs").glob("sentiment.*.json"))
    assert cached and all(json.loads(path.read_text())["material"]["evaluator"] == {"backend": "word-counter"} for path in cached)


def test_an_editing_method_is_one_record_in_methods_table(tmp_path: Path, toy_method: None) -> None:
    """editguard/editing/methods.py: the toy editor's delta is what the gate judged, cached under its description."""
    run, _ = gate(tmp_path, method="TOY")
    assert run.rows[0].edit.startswith("3 TOY edits (sequential) from demo edits")
    entries = list((tmp_path / "cache" / "edits").glob("*/edit.json"))  # the edit, and those of its first 1 and 2 requests
    assert len(entries) == 3 and all(json.loads(entry.read_text())["key_material"]["editor"] == "TOY" for entry in entries)


def test_an_editing_mode_is_one_record_in_modes_table(tmp_path: Path, toy_method: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """editguard/editing/modes.py: a mode that edits the requests in reverse order, one after another; the gate and
    its edit-count curve run it, and settings accept its name."""
    reverse = modes_module.Mode("reverse", "the requests last first", lambda run, requests: list(run.apply(list(requests)[::-1])))
    monkeypatch.setitem(modes_module.MODES, "reverse", reverse)
    run, _ = gate(tmp_path, method="TOY", mode="reverse", edit_counts=(1, 3))
    assert run.rows[0].edit.startswith("3 TOY edits (reverse)")
    assert [point[0] for point in (run.rows[0].curve or {})["plain"]] == [1, 3]
    assert build_settings({"mode": "reverse"}, {}, {}, rootdir=tmp_path).mode == "reverse"


def test_an_ability_is_one_record_in_the_ability_registry(tmp_path: Path, toy_method: None) -> None:
    """editguard/tasks/<ability>.py (its ABILITY record; registered here by hand as the registry does on discovery)."""
    sentiment = ability_registry.get_ability("sentiment")
    toy = dataclasses.replace(sentiment, name="toy_reviews", tasks=tuple(dataclasses.replace(task, name="toy_reviews") for task in sentiment.tasks))
    data = tmp_path / "toy.jsonl"
    data.write_text("".join(json.dumps({"idx": i, "sentence": f"a {'fine' if i % 2 else 'dull'} film", "label": i % 2}) + "\n" for i in range(8)))
    ability_registry.register(toy)
    try:
        run, _ = gate(tmp_path, ability="toy_reviews", method="TOY", data={"toy_reviews": f"file:{data}"})
    finally:
        ability_registry.unregister("toy_reviews")
    assert (run.rows[0].ability, run.rows[0].n, run.rows[0].verdict) == ("toy_reviews", 8, "pass")


def test_a_metric_is_one_record_in_the_metric_registry(tmp_path: Path, toy_method: None) -> None:
    """editguard/statistics/metrics.py (register_metric): an ability scored by a new metric is judged by its record."""
    metrics_module.register_metric("toy_accuracy", "accuracy under another name (tests)", metrics_module.mean, "binary")
    sentiment = ability_registry.get_ability("sentiment")
    toy = dataclasses.replace(
        sentiment, name="toy_metric", tasks=tuple(dataclasses.replace(task, name="toy_metric", metric="toy_accuracy") for task in sentiment.tasks)
    )
    data = tmp_path / "toy.jsonl"
    data.write_text("".join(json.dumps({"idx": i, "sentence": f"film {i}", "label": i % 2}) + "\n" for i in range(8)))
    ability_registry.register(toy)
    try:
        run, _ = gate(tmp_path, ability="toy_metric", method="TOY", data={"toy_metric": f"file:{data}"})
    finally:
        ability_registry.unregister("toy_metric")
        metrics_module.unregister_metric("toy_accuracy")
    assert (run.rows[0].metric, run.rows[0].verdict) == ("toy_accuracy", "pass")
    assert any("toy_accuracy" in line for line in terminal_lines(run))


def test_a_data_source_is_one_record_in_the_source_kinds(tmp_path: Path, toy_method: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """editguard/tasks/sources.py (a SourceKind): ``memory:`` reads records made in the test; settings accept it."""
    from editguard.tasks.readers import Rows

    records = [{"idx": i, "sentence": f"a {'good' if i % 2 else 'bad'} show", "label": i % 2} for i in range(6)]
    kind = sources_module.SourceKind(
        "memory:NAME", lambda kind, rest, text: sources_module.DataSource("memory", path=rest), lambda source: f"memory:{source.path}",
        lambda ability, source: Rows(f"memory:{source.path}", [dict(record) for record in records]),
    )  # fmt: skip
    monkeypatch.setitem(sources_module.SOURCE_KINDS, "memory", kind)
    run, _ = gate(tmp_path, method="TOY", data={"sentiment": "memory:reviews"})
    assert run.rows[0].n == 6
    assert build_settings({"data": [("sentiment", "memory:reviews")]}, {}, {}, rootdir=tmp_path).data == {"sentiment": "memory:reviews"}


def test_a_report_format_is_one_record_in_the_writers_table(tmp_path: Path, toy_method: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """editguard/reports/writers.py (a Writer over the Run): --editguard-output csv=FILE names its file."""

    def write_csv(path: Path, run: Run) -> Path:
        path.write_text("ability,verdict\n" + "".join(f"{row.ability},{row.verdict}\n" for row in run.rows))
        return path

    monkeypatch.setitem(WRITERS, "csv", Writer("CSV table", "csv", write_csv))
    settings = build_settings({"output": [("csv", str(tmp_path / "run.csv"))], "backend": "words"}, {}, {}, rootdir=tmp_path)
    run, _ = gate(tmp_path, method="TOY")
    for what, path, write in planned(run, settings, {}):
        write()
    assert (tmp_path / "run.csv").read_text() == "ability,verdict\nsentiment,pass\n"
