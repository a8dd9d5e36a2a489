"""The gate's own outcomes that are not verdicts: problems that stop it from checking an ability.

A ``GateProblem`` is "could not check", as opposed to "regressed": no baseline, a stale or corrupt one,
data that does not load, an edit that could not be made.  Its message is one sentence a person can act
on, naming the option or file (and record and field where there is one) and how to fix it.
"""

from __future__ import annotations


class GateProblem(Exception):
    """The gate cannot compare this ability; the message says what is wrong and how to fix it."""
