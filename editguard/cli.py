"""The ``editguard`` command: the gate as one command, ``pytest --pyargs editguard.gate`` plus your arguments."""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> int:
    import pytest

    args = list(sys.argv[1:] if argv is None else argv)
    # pytest guesses its rootdir from every argument that looks like a path, option values included, so
    # `--editguard-edited /elsewhere/x` would move it (and the default baselines/ folder): pin it to here.
    rootdir = [] if any(arg.startswith("--rootdir") for arg in args) else ["--rootdir", os.getcwd()]
    return int(pytest.main(["--pyargs", "editguard.gate", "-p", "no:cacheprovider", *rootdir, *args]))


if __name__ == "__main__":
    raise SystemExit(main())
