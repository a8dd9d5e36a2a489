"""A stand-in for ``vllm serve``, for the tests of the server's life cycle
(start, health wait, death, stop), which are about processes, not about vLLM (real vLLM: tests/model/test_engine.py).

Used as ``--editguard-engine-python``: it is run as ``fake_vllm.py -m vllm.entrypoints.openai.api_server --model MODEL --port N ...``.  It writes its pid to
$FAKE_VLLM_PIDFILE, then behaves as $FAKE_VLLM_MODE says: ``exit`` (print a line and exit 3 while starting),
``silent`` (never answer /health), ``die`` (answer /health, exit 7 on the first completion), ``hang`` (answer /health,
never answer a completion)."""

import http.server
import os
import sys
import time

mode = os.environ.get("FAKE_VLLM_MODE", "die")
with open(os.environ["FAKE_VLLM_PIDFILE"], "w") as pidfile:
    pidfile.write(str(os.getpid()))
print(f"fake vllm starting in mode {mode}: {' '.join(sys.argv[1:])}", flush=True)
if mode == "exit":
    print("RuntimeError: no model weights found", flush=True)
    sys.exit(3)
if mode == "silent":
    time.sleep(3600)
port = int(sys.argv[sys.argv.index("--port") + 1])


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        self.send_response(200 if self.path == "/health" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self) -> None:  # noqa: N802
        if mode == "die":
            print("Fatal: engine core died", flush=True)
            os._exit(7)
        time.sleep(3600)

    def log_message(self, *args: object) -> None:
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
