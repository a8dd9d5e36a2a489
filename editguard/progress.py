"""Progress of a run as it happens: one line per phase for a log, tqdm bars on a terminal, nothing under -q.

The stages report through ``reporter()`` (the model loaded or converted, each edit, each ability scored,
early stopping's decision); the plugin installs the run's reporter with ``use`` and puts the previous one
back when the run ends.  The default reporter says nothing, so the library is silent outside the gate.

A reporter gets two writers from whoever configures it: ``write`` takes one finished line (the plugin
writes it through pytest's terminal reporter, with output capture paused, so it reaches a CI log while
the test runs), and ``stream`` is a file-like object for tqdm bars (only on a terminal).  Either may be
None.  A leaf module: no torch, no pytest.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")

PREFIX = "editguard: "
BAR_DELAY_S = 3.0  # a bar appears only for work longer than this


@dataclass(frozen=True)
class Reporter:
    """Where progress goes: ``write`` takes one line (None: no lines), ``stream`` draws bars (None: no bars)."""

    write: Callable[[str], object] | None = None
    stream: Any = None  # a file-like object with write and flush (tqdm's file)

    def line(self, text: str) -> None:
        """One line for the log, prefixed ``editguard: ``."""
        if self.write is not None:
            self.write(PREFIX + text)

    def done(self, text: str, started: float) -> None:
        """``text`` with the seconds since ``started`` (a ``time.perf_counter()`` value)."""
        self.line(f"{text} in {seconds(time.perf_counter() - started)}")

    def each(self, items: Sequence[T], what: str, describe: Callable[[T], str] = str, first: int = 1) -> Iterator[T]:
        """Yield ``items``: a bar over them on a terminal, and in a log one line per item with its time, written
        once the caller has finished with it: ``what 2 of 3: describe(item) in 12.3 s`` (numbered from ``first``;
        "of n" only when the items are all there is)."""
        with self.bar(len(items), what, unit=" " + what.split()[-1]) as advance:
            for index, item in enumerate(items, first):
                started = time.perf_counter()
                yield item
                advance(1)
                of = f" of {len(items)}" if first == 1 and len(items) > 1 else ""
                self.done(f"{what} {index}{of}: {describe(item)}", started)

    @contextmanager
    def bar(self, total: int, what: str, unit: str = " req") -> Iterator[Callable[[int], None]]:
        """A tqdm bar of ``total`` steps on the terminal stream; the block calls the yielded ``advance(n)``."""
        if self.stream is None:
            yield _ignore
            return
        from tqdm.auto import tqdm

        with tqdm(total=total, desc=f"editguard {what}", unit=unit, delay=BAR_DELAY_S, file=self.stream, leave=False) as shown:
            yield shown.update


def _ignore(steps: int) -> None:
    return None


def seconds(value: float) -> str:
    """``0.4 s``, ``12.3 s``, ``2 min 05 s``."""
    if value < 60:
        return f"{value:.1f} s"
    minutes, rest = divmod(round(value), 60)
    return f"{minutes} min {rest:02d} s"


_current = Reporter()


def reporter() -> Reporter:
    """The reporter the stages write to (silent unless the plugin installed one)."""
    return _current


def use(new: Reporter) -> Reporter:
    """Install ``new`` as the run's reporter; returns the one it replaces (to put back when the run ends)."""
    global _current
    previous, _current = _current, new
    return previous


def timed(text: str, work: Callable[..., T], *arguments: Any) -> T:
    """``work(*arguments)``, and a line ``text in 12.3 s`` once it is done."""
    started = time.perf_counter()
    result = work(*arguments)
    reporter().done(text, started)
    return result
