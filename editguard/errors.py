"""The gate's own outcomes that are not verdicts: problems that stop it from checking an ability.

A ``GateProblem`` is "could not check", as opposed to "regressed": no baseline, a stale or corrupt one,
data that does not load, an edit that could not be made.  Its message is one sentence a person can act
on, naming the option or file (and record and field where there is one) and how to fix it.  When it was
caused by an exception deep inside a library, the cause stays chained, and ``full_traceback`` shows it
on request (pytest's ``-v``).
"""

from __future__ import annotations

import traceback
from pathlib import Path


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
