"""The run in JUnit XML: each gate test case carries its row as flat ``editguard.NAME`` properties, which pytest's
``--junitxml`` writes (the Holm-adjusted p-value is computed after the tests, so it is in the other reports only)."""

from __future__ import annotations

from typing import Any

from editguard.reports.lines import interval
from editguard.reports.rows import PROPERTY, Row


def junit_properties(row: Row) -> list[tuple[str, str]]:
    """The row as flat ``editguard.NAME`` properties, which pytest's ``--junitxml`` writes into the test case
    (CI tools that read JUnit XML show them); a value the row does not have is left out."""
    values: dict[str, Any] = {
        "ability": row.ability, "metric": row.metric, "verdict": row.verdict, "baseline": row.baseline,
        "edited": row.edited, "difference": row.difference, "lower": row.lower, "upper": row.upper,
        "interval": interval(row) if row.lower is not None or row.upper is not None else None,
        "tolerance": row.tolerance, "n": row.n, "negative_flips": row.negative_flips, "positive_flips": row.positive_flips,
        "note": row.note.splitlines()[0] if row.note else None,
    }  # fmt: skip
    shown = {name: format(value, ".6g") if isinstance(value, float) else str(value) for name, value in values.items() if value not in (None, "")}
    return [(f"{PROPERTY}.{name}", value) for name, value in shown.items()]
