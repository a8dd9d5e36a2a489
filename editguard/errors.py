"""The gate's own outcomes that are not verdicts: problems that stop it from checking an ability.

A ``GateProblem`` is "could not check", as opposed to "regressed": no baseline, a stale or corrupt one,
data that does not load, an edit that could not be made.  Its message is one sentence a person can act
on, naming the option or file (and record and field where there is one) and how to fix it.  When it was
caused by an exception deep inside a library, the cause stays chained, and ``full_traceback`` shows it
on request (pytest's ``-v`` or ``--tb=long``).

"Could not check" has its own exit status, ``COULD_NOT_CHECK`` (pytest's usage-error status, 4), whether
the problem was found at start-up or by a test; 1 stays "regressed", and wins when a run has both.
``remembered`` caches a stage's result or the problem that stopped it, so a problem is found once per
process, not once per test; ``shown`` cuts a user's value before a message echoes it.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, TypeVar, overload

T = TypeVar("T")

COULD_NOT_CHECK = 4  # the exit status of a run that could not check an ability and saw no regression
SHOWN_CHARS = 200  # the most characters of a user's value that a message echoes


class GateProblem(Exception):
    """The gate cannot compare this ability; the message says what is wrong and how to fix it."""

    def full_traceback(self) -> str:
        """The traceback of the exception that caused this problem ("" when there is none)."""
        cause = self.__cause__
        while isinstance(cause, GateProblem | RuntimeError) and cause.__cause__ is not None:
            cause = cause.__cause__  # the library's own exception, not our wrappers of it
        return "".join(traceback.format_exception(cause)) if cause is not None else ""


def innermost_frame(error: BaseException, package: str) -> str | None:
    """``file:line (in function)`` of the innermost frame of ``error``'s traceback inside ``package``."""
    frames = [frame for frame in traceback.extract_tb(error.__traceback__) if f"/{package}/" in frame.filename.replace("\\", "/")]
    if not frames:
        return None
    frame = frames[-1]
    parts = Path(frame.filename).parts
    where = "/".join(parts[parts.index(package) :]) if package in parts else frame.filename
    return f"{where}:{frame.lineno} (in {frame.name})"


def shown(value: object, limit: int = SHOWN_CHARS) -> str:
    """``repr(value)``, cut to about ``limit`` characters with the full length said, for messages."""
    text = repr(value)
    if len(text) <= limit:
        return text
    length = f"{len(value):,} characters" if isinstance(value, str) else f"{len(text):,} characters as text"
    return f"{text[:limit]}... ({length})"


def brief(error: BaseException) -> str:
    """``Class: first line of the message``, cut for a sentence (a library's message can be pages long)."""
    lines = str(error).strip().splitlines()
    first = lines[0] if lines else ""
    first = first if len(first) <= SHOWN_CHARS else first[:SHOWN_CHARS] + "..."
    return f"{error.__class__.__name__}: {first}" if first else error.__class__.__name__


class remembered(Generic[T]):
    """A ``cached_property`` that also remembers the ``GateProblem`` its first call raised, and raises that
    problem again on every later access instead of redoing the work (a model that does not load is tried once)."""

    def __init__(self, function: Callable[[Any], T]):
        self.function = function
        self.name = function.__name__
        self.__doc__ = function.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, instance: None, owner: type) -> remembered[T]: ...

    @overload
    def __get__(self, instance: object, owner: type) -> T: ...

    def __get__(self, instance: object | None, owner: type) -> T | remembered[T]:
        if instance is None:
            return self
        store = instance.__dict__.setdefault("_remembered", {})
        if self.name not in store:
            try:
                store[self.name] = (True, self.function(instance))
            except GateProblem as problem:
                store[self.name] = (False, problem)
        done, outcome = store[self.name]
        if not done:
            raise outcome
        return outcome  # type: ignore[no-any-return]


def not_a_file(path: Path) -> str | None:
    """What stands at ``path`` where a file should be, as a message says it ("a folder", "a link to /dev/null (a
    device)"), or None when it is a file (or a link to one) or nothing is there."""
    try:
        if path.is_file() or not (path.exists() or path.is_symlink()):
            return None
    except OSError:  # a name the system cannot look up (too long): nothing is there
        return None
    if path.is_symlink():
        target = os.readlink(path)
        return f"a link to nothing ({target} does not exist)" if not path.exists() else f"a link to {target} ({_kind(path)})"
    return _kind(path)


def _kind(path: Path) -> str:
    if path.is_dir():
        return "a folder"
    if path.is_char_device() or path.is_block_device():
        return "a device"
    return "a named pipe" if path.is_fifo() else "a socket" if path.is_socket() else "not a regular file"
