"""Progress as the gate runs (``editguard.progress``), through pytest: a line per phase when the output is not a
terminal, bars on a terminal, nothing under -q; an xdist worker's lines go to stderr, tagged with its name."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable
from typing import Any

import pytest

from editguard.plugin.state import PROGRESS_KEY


def show_progress(config: pytest.Config) -> None:
    """Progress as the gate runs (``editguard.progress``): a line per phase when the output is not a terminal,
    bars on a terminal, nothing under -q.  Output capture is paused for each write, so a line reaches a CI log
    while the test runs."""
    from editguard import progress

    if config.get_verbosity() < 0 or PROGRESS_KEY in config.stash:
        return
    capture = config.pluginmanager.getplugin("capturemanager")
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    bars = worker is None and sys.__stderr__ is not None and sys.__stderr__.isatty()
    stream = _Uncaptured(capture, sys.__stderr__) if bars else None
    config.stash[PROGRESS_KEY] = progress.use(progress.Reporter(_line_writer(config, capture, worker), stream))


def _line_writer(config: pytest.Config, capture: Any, worker: str | None) -> Callable[[str], object] | None:
    """Lines go to pytest's terminal when it is not a terminal (a log).  pytest does not show an xdist worker's
    output, so a worker writes its lines to stderr, tagged with its name."""
    if worker is not None:
        stderr = _Uncaptured(capture, sys.__stderr__)
        return lambda line: stderr.write(f"[{worker}] {line}\n")
    terminal = config.pluginmanager.getplugin("terminalreporter")
    if terminal is None or terminal.isatty():
        return None
    return lambda line: _uncaptured(capture, lambda: (terminal.write_line(line), terminal.flush()))


def _uncaptured(capture: Any, write: Callable[[], Any]) -> None:
    streams = sys.stdout, sys.stderr  # resuming capture resets them: keep a redirection in force (EasyEdit's prints)
    with capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext():
        write()
    sys.stdout, sys.stderr = streams


class _Uncaptured:
    """A file for tqdm (and a worker's lines) that writes to ``file`` with pytest's output capture paused."""

    def __init__(self, capture: Any, file: Any):
        self.capture, self.file = capture, file
        self.encoding = getattr(file, "encoding", "utf-8")

    def write(self, text: str) -> int:
        _uncaptured(self.capture, lambda: (self.file.write(text), self.file.flush()))
        return len(text)

    def flush(self) -> None:
        return None

    def isatty(self) -> bool:
        return bool(self.file.isatty())
