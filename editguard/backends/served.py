"""Backends served by an engine: a running OpenAI-compatible server (``--editguard-backend engine``), or vLLM servers
editguard starts itself (``vllm``).  Each served model is checked, once, to be the model it stands for: its
log-likelihoods of a few fixed sentences (and of the first edits' new targets, where an edit shows) must equal the
in-process model's to ``SERVED_TOLERANCE`` nats per token, through the same backend seam."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cached_property
from typing import Any

from editguard.backends.inprocess import InProcessBackend
from editguard.backends.protocol import BackendError

SERVED_TOLERANCE = 0.1  # nats per token: float32 engines agree to ~1e-4, bfloat16 ones to a few hundredths
_IDENTITY_SENTENCES = (
    ("The quick brown fox", " jumps over the lazy dog."),
    ("Water boils at", " one hundred degrees Celsius at sea level."),
    ("In 1969, two astronauts", " walked on the surface of the Moon for the first time."),
    ("She opened the window", " and let the cool morning air into the quiet room."),
)


def identity_requests(edits: Sequence[tuple[str, str]]) -> list[Any]:
    """Fixed sentences, then each edit's prompt with its new target: where a different or wrongly edited model shows."""
    from editguard.evaluator import LoglikelihoodRequest

    pairs = list(_IDENTITY_SENTENCES) + [(prompt, " " + target.strip()) for prompt, target in edits]
    return [LoglikelihoodRequest(context, continuation) for context, continuation in pairs]


class ServedBackends:
    """Backends of models a running engine serves: the base (as named, or the first it lists) and the edited model
    (``--editguard-served-edited``, on ``--editguard-edited-endpoint`` when it is apart)."""

    kind = "engine"

    def __init__(self, settings: Any, base: Callable[[], Any], identity_edits: Callable[[], Sequence[tuple[str, str]]] = tuple):
        self.settings, self._base, self.identity_edits = settings, base, identity_edits
        self._checked: set[tuple[str, str]] = set()  # (url, served name) that showed they serve the right model

    def backend(self, delta: Any = None, *, max_batch: int | None = None) -> Any:
        from editguard.backends.engine import EngineBackend

        served = EngineBackend(self.endpoint(delta), self._base().tokenizer)
        self._check_served(served, delta)
        return served

    def endpoint(self, delta: Any = None) -> Any:
        from editguard.backends.engine import Endpoint

        settings = self.settings
        if delta is not None:
            return Endpoint(settings.edited_endpoint or settings.endpoint, str(settings.served_edited))
        return Endpoint(settings.endpoint, settings.served_base or self._first_served)

    @cached_property
    def _first_served(self) -> str:
        from editguard.backends.engine import Endpoint

        served = Endpoint(str(self.settings.endpoint), "").served_models()
        if not served:
            raise BackendError(f"the engine at {self.settings.endpoint} serves no model; start it with the base model")
        return served[0]

    def identity(self) -> dict[str, Any]:
        """The engine's own numerics: its results are kept apart from in-process ones."""
        from editguard.backends.engine import ENGINE_VERSION
        from editguard.stack import output_versions

        settings = self.settings
        served = {"base": settings.served_base, "edited": settings.served_edited, "url": settings.endpoint, "edited_url": settings.edited_endpoint}
        return {"backend": "engine", "version": ENGINE_VERSION, "served": served, "transformers": output_versions()["transformers"]}

    def explain(self, error: BackendError) -> str:
        return str(error)

    def close(self) -> None:
        return None

    def _check_served(self, served: Any, delta: Any) -> None:
        """The served model is the one it stands for (``SERVED_TOLERANCE``); checked once per served name."""
        endpoint = served.endpoint
        if (endpoint.url, endpoint.model) in self._checked:
            return
        requests = identity_requests(self.identity_edits())
        remote = served.loglikelihood_with_lengths(requests)
        local = InProcessBackend(self._base(), delta).loglikelihood_with_lengths(requests)
        gap = max(abs(a / n - b / n) for (a, n), (b, _) in zip(remote, local))
        if gap > SERVED_TOLERANCE:
            what = "the base model" if delta is None else "the edited model"
            raise BackendError(
                f"the engine at {endpoint.url} serves {endpoint.model!r}, which is not {what} editguard gates: on {len(requests)} "
                f"check sentences its log-probabilities differ from {self.settings.model!r}{'' if delta is None else ' with the edit'} "
                f"by up to {gap:.2f} nats per token (at most {SERVED_TOLERANCE} is rounding); {self._served_fix(delta)}"
            )
        self._checked.add((endpoint.url, endpoint.model))

    def _served_fix(self, delta: Any) -> str:
        return f"serve that model, or name it with {'--editguard-served-base' if delta is None else '--editguard-served-edited'}"


class ManagedBackends(ServedBackends):
    """vLLM servers editguard starts from ``--editguard-engine-python``: the base, each delta as a LoRA adapter on it
    (or as its exported checkpoint on a second server); stopped by ``close``."""

    kind = "vllm"

    @cached_property
    def engine(self) -> Any:
        from editguard.backends.engine_server import ManagedEngine

        settings = self.settings
        workdir = settings.cache_dir / "engine"
        return ManagedEngine(settings.engine_python, self._base, workdir, extra_args=ManagedEngine.parse_args(settings.engine_args))

    def endpoint(self, delta: Any = None) -> Any:
        return self.engine.endpoint(delta)

    def identity(self) -> dict[str, Any]:
        """The model is the in-process one (its identity keys the results), served by this engine."""
        from editguard.backends.engine import ENGINE_VERSION
        from editguard.stack import output_versions

        settings = self.settings
        engine = {"python": str(settings.engine_python), "args": settings.engine_args, "dtype": str(self._base().model.dtype)}
        return {"backend": "vllm", "version": ENGINE_VERSION, "engine": engine, "transformers": output_versions()["transformers"]}

    def explain(self, error: BackendError) -> str:
        from editguard.backends.engine_server import ServerError

        died = None if isinstance(error, ServerError) or "engine" not in self.__dict__ else self.engine.died()
        return died or str(error)

    def close(self) -> None:
        if "engine" in self.__dict__:
            self.engine.close()

    def _served_fix(self, delta: Any) -> str:  # editguard chose what to serve: its engine or its export is at fault
        return f"look for the cause in the server's log under {self.settings.cache_dir / 'engine'}"
