"""The ``editguard`` command: the gate as one command, ``pytest --pyargs editguard.gate`` plus your arguments.

Exit status: 0 every gated ability passed; 1 an ability regressed (or was inconclusive, unless
``--editguard-inconclusive warn``); 4 the gate could not check (bad input, a missing or stale baseline,
a model or device that does not load; one sentence says which and how to fix it).  1 wins over 4.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import sys
from typing import Any

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
    """transformers 4.x imports scikit-learn with its generation code whenever it is installed (easyeditor requires it),
    for assisted generation's confidence threshold alone, which editguard never uses: 3 of the command's ~12 s of
    start-up on two cores (5.x imports it only when assisted generation runs, and has no flag to set).  This process is editguard's own, so transformers is told it is absent here, when it is
    first imported: importing it now would cost a command that stops at a mistyped option 5 s instead of 0.5 s."""
    loaded = sys.modules.get(_TRANSFORMERS_IMPORT_UTILS)
    if loaded is not None:
        loaded._sklearn_available = False  # type: ignore[attr-defined]
    elif not any(isinstance(finder, _NoScikitLearn) for finder in sys.meta_path):
        sys.meta_path.insert(0, _NoScikitLearn())


_TRANSFORMERS_IMPORT_UTILS = "transformers.utils.import_utils"


class _NoScikitLearn(importlib.abc.MetaPathFinder):
    """Finds nothing itself; when transformers' availability table is imported, marks scikit-learn absent in it."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != _TRANSFORMERS_IMPORT_UTILS:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        run = spec.loader.exec_module

        def exec_module(module: Any) -> None:
            run(module)
            module._sklearn_available = False

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


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
