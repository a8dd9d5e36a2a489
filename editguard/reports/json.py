"""The JSON report of a run (``--editguard-report``): the run's context and every row, for CI systems."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from editguard import atomic
from editguard.reports.lines import dtypes
from editguard.reports.run import Run
from editguard.statistics.verdict import Outcome

_NOT_FAILING = (Outcome.PASS.value, Outcome.RECORDED.value, Outcome.SKIPPED.value, Outcome.NO_SIGNAL.value)


def document(run: Run) -> dict[str, Any]:
    return {
        "model": run.model,
        "update_baselines": run.update_baselines,
        "dtype": dtypes(run.rows),
        "stack": dict(run.stack),
        "statistics": run.statement,
        "passed": all(row.passed if row.passed is not None else row.verdict in _NOT_FAILING for row in run.rows),
        "abilities": [row.as_dict() for row in sorted(run.rows, key=lambda r: r.ability)],
    }


def write_json(path: Path, run: Run) -> Path:
    """Write the report atomically (fsynced, following the umask)."""
    return atomic.write_json(path, document(run), indent=2)
