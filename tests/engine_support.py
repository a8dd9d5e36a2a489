"""The stand-in vLLM server (tests/data/fake_vllm.py) as an engine environment's Python, and process checks, shared
by the tests of the server's life cycle.  (``tests/`` is on the import path through its conftest.py.)"""

from __future__ import annotations

import os
import sys
from pathlib import Path

FAKE = Path(__file__).resolve().parent / "data" / "fake_vllm.py"


def stand_in_python(folder: Path) -> Path:
    """An executable that runs like an environment's Python given ``-m vllm...``: the stand-in server."""
    python = folder / "engine" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE}" "$@"\n')
    python.chmod(0o755)
    return python


def alive(pid: int) -> bool:
    """Whether the process runs (a zombie, dead but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split()[2] != "Z"
