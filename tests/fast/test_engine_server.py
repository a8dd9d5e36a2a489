"""The life cycle of the vLLM server editguard starts (``editguard.backends.engine_server``): started, waited for, its death
told in one sentence that quotes its log, and always stopped with its whole process group.  A stand-in server
(tests/data/fake_vllm.py) plays vLLM here: these tests are about processes; tests/model/test_engine.py runs real vLLM."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from engine_support import alive, stand_in_python

from editguard.backends.engine import Endpoint, EngineError
from editguard.backends.engine_server import VllmServer


def _server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str, **extra: object) -> VllmServer:
    monkeypatch.setenv("FAKE_VLLM_MODE", mode)
    monkeypatch.setenv("FAKE_VLLM_PIDFILE", str(tmp_path / "pid"))
    return VllmServer(stand_in_python(tmp_path), "/models/base", "base", "float32", tmp_path / "logs" / "vllm.log", **extra)  # type: ignore[arg-type]


def test_the_command_asks_vllm_for_the_base_and_lora_on_the_edited_module_kind_only(tmp_path: Path) -> None:
    server = VllmServer(Path("/env/bin/python"), "/models/base", "base", "bfloat16", tmp_path / "log", lora_targets=("down_proj",), extra_args=("--tensor-parallel-size", "8"))
    command = server.command(8123)
    assert command[:3] == ["/env/bin/python", "-m", "vllm.entrypoints.openai.api_server"]
    assert command[command.index("--model") + 1] == "/models/base" and command[command.index("--dtype") + 1] == "bfloat16"
    assert "--enable-lora" in command and command[command.index("--lora-target-modules") + 1] == "down_proj"
    assert command[-2:] == ["--tensor-parallel-size", "8"]
    assert "--enable-lora" not in VllmServer(Path("p"), "m", "base", "float32", tmp_path / "log").command(8123)


def test_a_missing_engine_python_says_how_to_make_one(tmp_path: Path) -> None:
    server = VllmServer(tmp_path / "nowhere" / "python", "/models/base", "base", "float32", tmp_path / "log")
    with pytest.raises(EngineError, match=r"^--editguard-engine-python .*nowhere/python does not exist; .*make engine-env"):
        server.start()


def test_a_server_that_exits_while_starting_is_one_sentence_quoting_its_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server = _server(tmp_path, monkeypatch, "exit")
    with pytest.raises(EngineError) as raised:
        server.start()
    message = str(raised.value)
    assert message.startswith("the vLLM server for 'base' exited while starting (exit 3): last lines of ")
    assert "RuntimeError: no model weights found" in message and str(server.log_path) in message
    assert "\n" not in message


def test_a_server_that_never_answers_health_is_stopped_at_the_deadline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server = _server(tmp_path, monkeypatch, "silent", start_timeout_s=3.0)
    with pytest.raises(EngineError, match=r"did not answer /health within 3 s"):
        server.start()
    pid = int((tmp_path / "pid").read_text())
    assert not alive(pid) and server.process is None


def test_a_server_that_dies_mid_run_says_so_and_stop_is_idempotent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server = _server(tmp_path, monkeypatch, "die")
    url = server.start()
    assert server.healthy() and server.died() is None
    with pytest.raises(EngineError):
        Endpoint(url, "base", timeout_s=5).post("/v1/completions", {"prompt": [1, 2]})
    deadline = time.monotonic() + 10
    while server.died() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    said = server.died()
    assert said is not None and said.startswith("the vLLM server editguard started for 'base' exited mid-run (exit 7)")
    assert "Fatal: engine core died" in said
    server.stop()
    server.stop()


def test_stop_ends_the_whole_process_group(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server = _server(tmp_path, monkeypatch, "hang")
    server.start()
    pid = int((tmp_path / "pid").read_text())
    assert alive(pid)
    server.stop()
    assert not alive(pid)


def test_the_server_dies_with_editguard_even_when_editguard_is_killed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import signal
    import subprocess

    monkeypatch.setenv("FAKE_VLLM_MODE", "hang")
    monkeypatch.setenv("FAKE_VLLM_PIDFILE", str(tmp_path / "pid"))
    python = stand_in_python(tmp_path)
    starter = (
        "import sys, time; from pathlib import Path; from editguard.backends.engine_server import VllmServer; "
        f"VllmServer(Path({str(python)!r}), 'm', 'base', 'float32', Path({str(tmp_path / 'log')!r})).start(); "
        "print('started', flush=True); time.sleep(600)"
    )
    editguard = subprocess.Popen([sys.executable, "-c", starter], stdout=subprocess.PIPE, text=True)
    assert editguard.stdout is not None and editguard.stdout.readline().strip() == "started"
    server = int((tmp_path / "pid").read_text())
    editguard.send_signal(signal.SIGKILL)  # no clean-up code runs: only the kernel can stop the server now
    editguard.wait()
    deadline = time.monotonic() + 10
    while alive(server) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(server)
