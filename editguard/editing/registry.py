"""The editing choices settings offer, read from their owners: the methods (``methods.METHODS``) and the modes
(``modes.MODES``), and the sentence for an unknown name.

Plain Python only: ``editguard.settings`` reads this module when the plugin loads, before any model.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from editguard.editing.methods import BATCH_METHODS, METHODS  # noqa: F401  (the editor table, for settings)
from editguard.editing.modes import MODES, mode_of  # noqa: F401  (the mode table, for settings and the help text)
from editguard.editing.recipes import EditError  # noqa: F401  (what mode_of raises)


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
