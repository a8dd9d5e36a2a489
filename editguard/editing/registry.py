"""The editing modes by name (``MODES``: what each does, in the help's words), and the sentences for unknown names.

How a mode runs is in ``modes``, which checks at import that it covers exactly these names.  The methods are one
table of their own (``methods.METHODS``, re-exported here for settings and the help text).

Plain Python only: ``editguard.settings`` reads this module when the plugin loads, before any model.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class ModeInfo:
    name: str
    summary: str  # what it does, as the --editguard-mode help says it


from editguard.editing.methods import BATCH_METHODS, METHODS  # noqa: E402  (the editor table's names, for settings)

MODES: dict[str, ModeInfo] = {
    "single": ModeInfo("single", "each edit alone on the base; the worst is gated"),
    "sequential": ModeInfo("sequential", "edits accumulate, default"),
    "batch": ModeInfo("batch", f"one call, {'/'.join(BATCH_METHODS)}"),
}


def unknown(kind: str, name: str, known: Iterable[str]) -> str:
    """One sentence for an unknown name: the closest known one, else all of them."""
    names = list(known)
    close = difflib.get_close_matches(name, names, n=1)
    if close:
        return f"{name!r} is not a {kind}; did you mean {close[0]!r}?"
    return f"{name!r} is not a {kind}; use one of {', '.join(names)}"


def check_covers(what: str, implemented: Iterable[str], registered: Iterable[str]) -> None:
    """An implementation table must cover exactly the registered names: fail at import, not mid-gate."""
    missing, extra = sorted(set(registered) - set(implemented)), sorted(set(implemented) - set(registered))
    if missing or extra:
        raise RuntimeError(
            f"{what} does not match editguard/editing/registry.py: "
            f"not implemented {missing or 'none'}, not registered {extra or 'none'}; add the record or the implementation"
        )
