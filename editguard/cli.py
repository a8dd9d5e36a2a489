"""The ``editguard`` command: the gate as one command, ``pytest --pyargs editguard.gate`` plus your arguments.

Exit status: 0 every gated ability passed; 1 an ability regressed (or was inconclusive, unless
``--editguard-inconclusive warn``); 4 the gate could not check (bad input, a missing or stale baseline,
a model or device that does not load; one sentence says which and how to fix it).  1 wins over 4.
"""

from __future__ import annotations

import os
import sys


# pytest plugins other packages install that the gate never uses: each is imported and its modules assertion-
# rewritten at every start (hypothesis alone is 73 modules), 3 s of the command's start-up on two cores.
UNUSED_PLUGINS = ("-p", "no:hypothesispytest", "-p", "no:anyio", "-p", "no:random_order")


def main(argv: list[str] | None = None) -> int:
    import pytest

    _without_scikit_learn()

    args = joined_values(list(sys.argv[1:] if argv is None else argv))
    # pytest guesses its rootdir from every argument that looks like a path, option values included, so
    # `--editguard-edited /elsewhere/x` would move it (and the default baselines/ folder): pin it to here.
    rootdir = [] if any(arg.startswith("--rootdir") for arg in args) else ["--rootdir", os.getcwd()]
    return int(pytest.main(["--pyargs", "editguard.gate", "-p", "no:cacheprovider", *UNUSED_PLUGINS, *rootdir, *args]))


def _without_scikit_learn() -> None:
    """transformers imports scikit-learn with its generation code whenever it is installed (easyeditor requires it),
    for assisted generation's confidence threshold alone, which editguard never uses: 3 of the command's ~12 s of
    start-up on two cores.  This process is editguard's own, so transformers is told it is absent here."""
    try:
        from transformers.utils import import_utils
    except ImportError:  # pragma: no cover - transformers is a dependency
        return
    import_utils._sklearn_available = False


def joined_values(args: list[str]) -> list[str]:
    """``--editguard-X VALUE`` as ``--editguard-X=VALUE``: pytest guesses its configuration file from path-like
    arguments, and a separate value (``--editguard-edited /elsewhere/delta.safetensors``) would make it read
    the configuration of the folder that file is in; joined, the configuration is the working directory's."""
    from editguard.settings import OPTIONS

    takes_value = {option.cli for option in OPTIONS if not option.flag}
    joined: list[str] = []
    pending: str | None = None
    for arg in args:
        if pending is not None:
            joined.append(f"{pending}={arg}")
            pending = None
        elif arg in takes_value:
            pending = arg
        else:
            joined.append(arg)
    return joined + ([pending] if pending is not None else [])


if __name__ == "__main__":
    raise SystemExit(main())
