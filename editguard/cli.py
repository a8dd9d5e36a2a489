"""The ``editguard`` command: the gate as one command, ``pytest --pyargs editguard.gate`` plus your arguments."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    import pytest

    args = list(sys.argv[1:] if argv is None else argv)
    return int(pytest.main(["--pyargs", "editguard.gate", "-p", "no:cacheprovider", *args]))


if __name__ == "__main__":
    raise SystemExit(main())
