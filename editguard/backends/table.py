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
    settled: Callable[[dict[str, Any], Path], str | None] = lambda values, rootdir: None  # the option values it needs


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


ENGINE_ONLY = ("endpoint", "served_base", "served_edited", "edited_endpoint")  # options for a served model
VLLM_ONLY = ("engine_python", "engine_args")  # options for the vLLM servers editguard starts


_VLLM_ONLY_SAID = (
    "--editguard-engine-python and --editguard-engine-args are for the vLLM server that --editguard-backend vllm starts; "
    "add --editguard-backend vllm or drop them"
)


def _in_process_options(values: dict[str, Any], rootdir: Path) -> str | None:
    if any(name in values for name in VLLM_ONLY):
        return _VLLM_ONLY_SAID
    if "edited_endpoint" in values:
        return "--editguard-edited-endpoint is for --editguard-backend engine; add --editguard-backend engine --editguard-endpoint URL or drop it"
    return None


def _served_options(values: dict[str, Any], rootdir: Path) -> str | None:
    if any(name in values for name in VLLM_ONLY):
        return _VLLM_ONLY_SAID
    if "endpoint" not in values:
        return "--editguard-backend engine needs --editguard-endpoint URL: the server that serves the base and the edited model"
    if "served_edited" not in values and not values.get("update_baselines"):
        return (
            "--editguard-backend engine needs --editguard-served-edited NAME: the served name of the edited model (serve the "
            "adapter that --editguard-export-edited writes with vllm serve --enable-lora --lora-modules NAME=DIR/lora)"
        )
    return None


def _managed_options(values: dict[str, Any], rootdir: Path) -> str | None:
    """vllm with --editguard-endpoint is a running server: an engine like any other (settled as one)."""
    if "endpoint" in values:
        for name in VLLM_ONLY:
            values.pop(name, None)
        values["backend"] = "engine"
        return _served_options(values, rootdir)
    values.setdefault("engine_python", default_engine_python(rootdir))
    return None


def default_engine_python(rootdir: Path) -> Path:
    """The Python that starts vLLM when no --editguard-engine-python is given: this one, when vLLM is installed
    beside editguard (one environment), else the project's ``.venv-engine`` (``make engine-env``)."""
    import importlib.util
    import sys

    if importlib.util.find_spec("vllm") is not None:
        return Path(sys.executable)
    return rootdir / ".venv-engine" / "bin" / "python"


BACKENDS: dict[str, BackendKind] = {
    kind.name: kind
    for kind in (
        BackendKind("hf", "the model in this process, default", "hf", _open_in_process, _nothing, _in_process_options),
        BackendKind(
            "engine", "an OpenAI-compatible completions server such as vLLM, at --editguard-endpoint", "engine", _open_served,
            _nothing, _served_options,
        ),
        BackendKind(
            "vllm", "a vLLM server editguard starts from --editguard-engine-python, serving the base and each edit as a LoRA "
            "adapter; or the one at --editguard-endpoint", "engine", _open_managed, _engine_python_missing, _managed_options,
        ),
    )  # fmt: skip
}
RECORDED_WORDS = {"hf": "in process", "engine": "through an engine"}  # a baseline's "backend", in a sentence


def backend_kind(name: str) -> BackendKind:
    return BACKENDS[name]
