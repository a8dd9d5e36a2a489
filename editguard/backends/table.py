"""The backend kinds, by their ``--editguard-backend`` name: how each opens a run's backends, how a baseline records
it, and what it needs before the run starts.  The only place a backend's name decides anything."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class BackendKind:
    name: str
    description: str  # for --help and the options reference
    records_as: str  # a baseline's "backend": "hf" (in process) or "engine" (a served model)
    open: Callable[[Any, Callable[[], Any], Callable[[], Sequence[tuple[str, str]]], bool], Any]  # -> protocol.Backends
    start_problem: Callable[[Any], str | None]  # what stops the run before a model loads (None: nothing)


def _open_in_process(settings: Any, base: Callable[[], Any], identity_edits: Any, progress: bool) -> Any:
    from editguard.backends.inprocess import InProcessBackends

    return InProcessBackends(settings, base, progress=progress)


def _open_served(settings: Any, base: Callable[[], Any], identity_edits: Any, progress: bool) -> Any:
    from editguard.backends.served import ServedBackends

    return ServedBackends(settings, base, identity_edits)


def _open_managed(settings: Any, base: Callable[[], Any], identity_edits: Any, progress: bool) -> Any:
    from editguard.backends.served import ManagedBackends

    return ManagedBackends(settings, base, identity_edits)


def _nothing(settings: Any) -> str | None:
    return None


def _engine_python_missing(settings: Any) -> str | None:
    if Path(settings.engine_python).is_file():
        return None
    return (
        f"--editguard-engine-python {settings.engine_python} does not exist; --editguard-backend vllm starts vLLM with the "
        "Python of its own environment (make engine-env builds .venv-engine), or give --editguard-endpoint URL of a running server"
    )


BACKENDS: dict[str, BackendKind] = {
    kind.name: kind
    for kind in (
        BackendKind("hf", "the model in this process (default)", "hf", _open_in_process, _nothing),
        BackendKind("engine", "an OpenAI-compatible completions server such as vLLM, at --editguard-endpoint", "engine", _open_served, _nothing),
        BackendKind(
            "vllm", "a vLLM server editguard starts from --editguard-engine-python, serving the base and each edit as a LoRA "
            "adapter (or the one at --editguard-endpoint)", "engine", _open_managed, _engine_python_missing,
        ),  # fmt: skip
    )
}
RECORDED_WORDS = {"hf": "in process", "engine": "through an engine"}  # a baseline's "backend", in a sentence


def backend_kind(name: str) -> BackendKind:
    return BACKENDS[name]
