"""The editing methods and modes by name: what settings, the help text and the editor know about each.

One record per method (``METHODS``: its easyeditor hyper-parameter class, whether it edits several facts
in one call, whether it needs the request's ground truth) and per mode (``MODES``: what it does, in the
help's words).  How a method is configured and run (defaults, touched parameters) is in ``methods``, how a
mode runs in ``modes``; both check at import that they cover exactly these names.

Plain Python only: ``editguard.settings`` reads this module when the plugin loads, before any model.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class MethodInfo:
    name: str
    hparams_class: str  # the easyeditor class name
    batchable: bool = False  # accepts several requests in one call (batch mode)
    needs_ground_truth: bool = False  # the request must give the answer it replaces


@dataclass(frozen=True)
class ModeInfo:
    name: str
    summary: str  # what it does, as the --editguard-mode help says it


METHODS: dict[str, MethodInfo] = {
    "ROME": MethodInfo("ROME", "ROMEHyperParams"),
    "MEMIT": MethodInfo("MEMIT", "MEMITHyperParams", batchable=True),
    "FT": MethodInfo("FT", "FTHyperParams", batchable=True),
    "KN": MethodInfo("KN", "KNHyperParams", needs_ground_truth=True),
}

BATCH_METHODS = tuple(name for name, info in METHODS.items() if info.batchable)

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
