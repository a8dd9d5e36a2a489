"""The report formats a run can be written in, one record each, chosen from a table by the settings that name their
files.  A new format is one writer over the ``Run`` and one record here: ``--editguard-output NAME=FILE`` (or
``[tool.editguard.output]``) names its file, and settings read the names from this table."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from editguard.reports.run import Run


@dataclass(frozen=True)
class Writer:
    what: str  # as the run tells where it went: "JSON report"
    setting: str  # the Settings field that names its file (None there: not written)
    write: Callable[[Path, Run], object]
    needs_rows: bool = True  # written only for a run with rows (a run that could not start has none)
    when: Callable[[Run], bool] = lambda run: True  # and only when this says so (a curve: when there is one)


def _json(path: Path, run: Run) -> object:
    from editguard.reports.json import write_json

    return write_json(path, run)


def _markdown(path: Path, run: Run) -> object:
    from editguard.reports import markdown

    return markdown.write_file(path, run)


def _html(path: Path, run: Run) -> object:
    from editguard.reports.html import write_html

    return write_html(path, run)


def _curve(path: Path, run: Run) -> object:
    from editguard.reports.curves import draw_curves

    edit = next((row.edit for row in run.rows if row.edit), "")
    draw_curves(path, run.rows, f"{run.model}: {edit}")
    return path


WRITERS: dict[str, Writer] = {
    writer.setting: writer
    for writer in (
        Writer("edit-count curve", "curve", _curve, when=lambda run: any(row.curve for row in run.rows)),
        Writer("JSON report", "report", _json),
        Writer("Markdown summary", "markdown", _markdown, needs_rows=False),
        Writer("HTML report", "html", _html, needs_rows=False),
    )
}


def planned(run: Run, settings: Any, environ: Mapping[str, str]) -> list[tuple[str, Path, Callable[[], object]]]:
    """Each report to write for this run: (what, file, write), the job summary of ``$GITHUB_STEP_SUMMARY`` included."""
    from editguard.reports.markdown import step_summary_write

    writes: list[tuple[str, Path, Callable[[], object]]] = []
    for name, writer in WRITERS.items():
        path = getattr(settings, writer.setting, None) or settings.outputs.get(name)
        if path is not None and (run.rows or not writer.needs_rows) and writer.when(run):
            writes.append((writer.what, Path(path), functools.partial(writer.write, Path(path), run)))
    return writes + list(step_summary_write(run, environ))
