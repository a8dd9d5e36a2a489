"""The engine backend's failures, against real HTTP servers on this machine: nobody listening, a server that answers
something unusable, a server that stops mid-run.  Each is one EngineError sentence naming the endpoint.  (Scores
from a real vLLM server are compared with the in-process evaluator in tests/model/test_engine.py.)"""

from __future__ import annotations

import pytest
from engine_support import echo as _echo
from engine_support import serve as _serve

from editguard.backends import engine
from editguard.backends.engine import Endpoint, EngineBackend, EngineError
from editguard.backends.engine_server import _free_port
from editguard.evaluator import GenerationRequest, LoglikelihoodRequest


class Words:
    """A tokenizer stand-in (these tests are about HTTP, not tokens): one id per word."""

    def __call__(self, text: str, add_special_tokens: bool = True) -> dict[str, list[int]]:
        return {"input_ids": [len(word) for word in text.split()]}


@pytest.fixture(autouse=True)
def _quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine.time, "sleep", lambda seconds: None)


def test_nobody_listening_is_one_sentence_naming_the_endpoint() -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    backend = EngineBackend(Endpoint(url, "base", timeout_s=2), Words())
    with pytest.raises(EngineError, match=rf"^the engine at {url} did not answer after 3 tries \(.*\); check that the server is running"):
        backend.loglikelihood([LoglikelihoodRequest("the film was", " good")])


def test_an_answer_without_logprobs_or_choices_is_refused() -> None:
    for answer, said in [
        (lambda payload: {"choices": [{"text": "x"}]}, "did not echo the prompt's logprobs"),
        (lambda payload: {"error": "no"}, "answered without choices"),
    ]:
        for url in _serve(answer):
            with pytest.raises(EngineError, match=said):
                EngineBackend(Endpoint(url, "base"), Words()).loglikelihood([LoglikelihoodRequest("the film was", " good")])


def test_a_server_that_dies_mid_run_is_an_error_not_a_score() -> None:
    for url in _serve(_echo, answers=2):
        backend = EngineBackend(Endpoint(url, "base", timeout_s=2), Words(), concurrency=1)
        requests = [LoglikelihoodRequest(f"context number {i}", " good") for i in range(4)]
        with pytest.raises(EngineError, match="did not answer after 3 tries"):
            backend.loglikelihood(requests)


def test_scores_and_generations_read_from_a_well_formed_answer() -> None:
    for url in _serve(_echo):
        backend = EngineBackend(Endpoint(url, "base"), Words())
        (total, length), = backend.loglikelihood_with_lengths([LoglikelihoodRequest("the film was", " very good")])
        assert (total, length) == (-2.0, 2)  # the last two echoed tokens are the continuation's
        assert backend.generate([GenerationRequest("the film", 4, ("s",))]) == [" ye"]  # cut at the stop string
