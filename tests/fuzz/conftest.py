"""The fuzz tier (``tests/fuzz``): Hypothesis draws malformed and well-formed inputs, writes them to real files
and runs them through the real readers and start-up checks; no model is loaded.  ``pytest tests/fuzz`` runs it
(deterministically: every property is derandomized) and reports how many inputs it generated."""

from __future__ import annotations

import pytest
from fuzz_support import GENERATED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if GENERATED:
        per_test = ", ".join(f"{name} {number}" for name, number in sorted(GENERATED.items()))
        terminalreporter.write_line(f"fuzz: {sum(GENERATED.values()):,} generated inputs ({per_test})")
