"""The stand-in vLLM server (tests/data/fake_vllm.py) as an engine environment's Python, and process checks, shared
by the tests of the server's life cycle; a local OpenAI-style server whose answers a test chooses.  (``tests/`` is on the import path through its conftest.py.)"""

from __future__ import annotations

import json
import socket
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from editguard.atomic import _process_alive

FAKE = Path(__file__).resolve().parent / "data" / "fake_vllm.py"


def stand_in_python(folder: Path) -> Path:
    """An executable that runs like an environment's Python given ``-m vllm...``: the stand-in server."""
    python = folder / "engine" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE}" "$@"\n')
    python.chmod(0o755)
    return python


alive = _process_alive  # whether the process runs (a zombie, dead but not yet reaped, does not): the lock's own check


def serve(answer: Any, *, answers: int | None = None) -> Iterator[str]:
    """A server whose every POST gets ``answer(payload)``; after ``answers`` answers it closes connections unanswered."""
    count = {"n": 0}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            count["n"] += 1
            if answers is not None and count["n"] > answers:
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)  # the engine died: no answer at all
                return
            body = json.dumps(answer(payload)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def echo(payload: dict[str, Any]) -> dict[str, Any]:
    """An answer as some model gives it: every echoed prompt token at log-probability -1."""
    return {"choices": [{"text": " yes", "logprobs": {"token_logprobs": [None] + [-1.0] * (len(payload["prompt"]) - 1)}}]}
