"""``--editguard-backend vllm`` from the command line, with a stand-in server (tests/data/fake_vllm.py) that dies or
hangs: a server that dies mid-run is "could not check" in one sentence quoting its log, with no baseline written, and
Ctrl-C stops the server editguard started.  (Real vLLM: tests/model/test_engine.py.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from engine_support import alive, echo, serve, stand_in_python

EDITGUARD = Path(sys.executable).parent / "editguard"


def _setup(tmp_path: Path, cache_dir: Path, mode: str) -> tuple[list[str], dict[str, str]]:
    python = stand_in_python(tmp_path)
    env = {key: value for key, value in os.environ.items() if key not in ("CI", "PYTEST_ADDOPTS") and not key.startswith("PYTEST_XDIST")}
    env.update(FAKE_VLLM_MODE=mode, FAKE_VLLM_PIDFILE=str(tmp_path / "pid"), COLUMNS="120")
    command = [
        str(EDITGUARD), "-p", "no:cacheprovider", "--editguard-backend", "vllm", "--editguard-engine-python", str(python),
        "--editguard-abilities", "sentiment", "--editguard-limit", "8", "--editguard-device", "cpu", "--editguard-update-baselines",
        "--editguard-baselines", str(tmp_path / "baselines"), "--editguard-cache-dir", str(cache_dir),
    ]  # fmt: skip
    return command, env


@pytest.mark.parametrize(
    ("mode", "said", "logged"),
    [("die", "the vLLM server editguard started for 'base' exited mid-run (exit 7)", "Fatal: engine core died"),
     ("exit", "the vLLM server for 'base' exited while starting (exit 3)", "RuntimeError: no model weights found")],
)  # fmt: skip
def test_a_server_that_dies_is_could_not_check_and_no_baseline(tmp_path: Path, cache_dir: Path, mode: str, said: str, logged: str) -> None:
    command, env = _setup(tmp_path, cache_dir, mode)
    result = subprocess.run(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
    told = [line for line in result.stdout.splitlines() if line.startswith("could not check: ")]
    assert result.returncode == 4, result.stdout[-3000:]
    assert told and said in told[0], result.stdout[-3000:]
    assert logged in told[0] and "Traceback" not in result.stdout
    assert not list((tmp_path / "baselines").rglob("*.json"))
    assert not alive(int((tmp_path / "pid").read_text()))


def _as_from_a_terminal() -> None:
    """In the child before it runs editguard: Ctrl-C's signal at its default, as a shell starts a command.  A child
    inherits an ignored SIGINT, and Python then installs no KeyboardInterrupt handler: after some earlier test in the
    same xdist worker the run ignored the signal and this test hung until its timeout (the whole suite, twice)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_stops_the_server_editguard_started(tmp_path: Path, cache_dir: Path) -> None:
    command, env = _setup(tmp_path, cache_dir, "hang")
    run = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, preexec_fn=_as_from_a_terminal
    )
    pidfile = tmp_path / "pid"
    deadline = time.monotonic() + 240
    while not pidfile.is_file() or not pidfile.read_text():
        assert run.poll() is None and time.monotonic() < deadline, run.stdout.read() if run.stdout else ""
        time.sleep(0.2)
    server = int(pidfile.read_text())
    time.sleep(3)  # the server answers /health; editguard's requests now wait on it
    run.send_signal(signal.SIGINT)
    output, _ = run.communicate(timeout=120)
    assert run.returncode != 0 and "KeyboardInterrupt" in output, output[-3000:]
    assert not alive(server)
    assert not list((tmp_path / "baselines").rglob("*.json"))


def test_an_engine_serving_another_model_is_refused_before_any_baseline(tiny: object, cache_dir: Path, tmp_path: Path) -> None:
    """The served-model check on the tiny model, against a server answering as some other model would (every echoed
    token at log-probability -1): one sentence naming the endpoint and the served name, and no baseline written.
    (Against real vLLM serving the wrong model: tests/model/test_engine.py.)"""
    from editguard.errors import GateProblem
    from editguard.session import Session
    from editguard.settings import Settings

    for url in serve(echo):
        settings = Settings(model="tiny-gpt2", device="cpu", cache_dir=cache_dir, backend="engine", endpoint=url, served_base="other",
                            update_baselines=True, baselines=tmp_path / "baselines", rescore=True)  # fmt: skip
        with pytest.raises(GateProblem, match=rf"^the engine at {url} serves 'other', which is not the base model editguard gates: on 7 check sentences"):
            Session(settings).baselines.record("sentiment")
    assert not list((tmp_path / "baselines").rglob("*.json"))
