"""The run's results on the controller: the rows every gate test reported (from this process or xdist's workers),
the exit status they give (1 when something regressed, else 4 when something could not be checked), and the run
told once, as a ``reports.run.Run``, to every writer: the report files at the end, the terminal section last."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from editguard.errors import COULD_NOT_CHECK as COULD_NOT_CHECK_STATUS
from editguard.plugin.state import PROBLEM, SESSION_KEY, SETTINGS_KEY
from editguard.reports.rows import PROPERTY, Row
from editguard.reports.run import Run, problems_of, run_verdict, statement, with_holm


def could_not_check_report(report: pytest.TestReport) -> bool:
    return report.failed and any(name == PROBLEM for name, _ in report.user_properties)


class Results:
    def __init__(self, config: pytest.Config):
        self.config = config
        self.rows: list[Row] = []
        self.could_not_check = 0  # failed test reports marked "could not check"
        self.problems: list[str] = []  # their sentences (a fixture's problem has no row)
        self.run: Run | None = None  # the run as told, once it is finished (or could not start)

    @property
    def settings(self) -> Any:
        return self.config.stash[SETTINGS_KEY]

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if could_not_check_report(report):
            self.could_not_check += 1
            self.problems += [str(value) for name, value in report.user_properties if name == PROBLEM]
        if report.when == "call":
            self.rows += [Row.from_dict(value) for name, value in report.user_properties if name == PROPERTY and isinstance(value, dict)]

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.export_edited(session)
        if hasattr(self.config, "workerinput"):
            return
        self.rows, holm_failed = with_holm(self.rows, self.settings.alpha, self.settings.fail_rule)
        if holm_failed and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED  # Holm failed an ability its own test let pass
        regressed = holm_failed or session.testsfailed > self.could_not_check
        if self.could_not_check and not regressed and session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
            session.exitstatus = pytest.ExitCode(COULD_NOT_CHECK_STATUS)
        self.finish(int(session.exitstatus))
        if self.run is not None and self.run.unwritten and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode(COULD_NOT_CHECK_STATUS)  # a report CI reads is missing: not a pass

    def finish(self, status: int) -> None:
        """Tell the run once: every report file it asks for, then (``pytest_terminal_summary``) the terminal.  A run
        of other tests, with no gate row and no problem, tells nothing."""
        from editguard.reports.writers import planned

        if self.run is not None or hasattr(self.config, "workerinput"):
            return
        run = self.told(status)
        if not (run.rows or run.problems):
            return
        written, unwritten = [], []
        for what, path, write in planned(run, self.settings, os.environ):
            problem = _written(write)
            if problem is None:
                written.append((what, path))
            else:
                unwritten.append(f"the {what} could not be written to {path} ({problem}); the verdicts above stand")
        self.run = replace(run, written=tuple(written), unwritten=tuple(unwritten))

    def told(self, status: int) -> Run:
        from editguard.stack import output_versions

        settings = self.settings
        startup = self.config.stash[SESSION_KEY].problem if SESSION_KEY in self.config.stash else None
        problems = problems_of(self.rows, self.problems + ([str(startup)] if startup is not None else []))
        said = statement(self.rows, settings) if any(row.p_value is not None for row in self.rows) else ""
        curve = settings.curve if any(row.curve for row in self.rows) else None
        return Run(
            run_verdict(status, self.rows), status, tuple(self.rows), problems, settings.model, said, curve,
            update_baselines=bool(settings.update_baselines), stack=output_versions(),
        )  # fmt: skip

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        from editguard.reports.terminal import terminal_lines

        if self.run is None:
            return
        if self.run.rows:
            terminalreporter.section("editguard")
        for line in terminal_lines(self.run):
            terminalreporter.write_line(line, red=line.startswith("editguard: the "))

    def export_edited(self, session: pytest.Session) -> None:
        """--editguard-export-edited: the edited model written once, by the process that holds it (the only one,
        or xdist's first worker), after the gate; a failure is one line and a non-zero exit, never a traceback."""
        from editguard.errors import brief

        settings = self.settings
        if settings.export_edited is None or settings.update_baselines or SESSION_KEY not in self.config.stash:
            return
        worker = getattr(self.config, "workerinput", {}).get("workerid")
        if worker not in (None, "gw0") or (worker is None and getattr(self.config.option, "numprocesses", None)):
            return  # under xdist the first worker exports; the controller holds no model
        try:
            self.config.stash[SESSION_KEY].export_edited(settings.export_edited)
        except Exception as error:  # a GateProblem found at start-up, a full disk, an unwritable folder
            message = f"--editguard-export-edited {settings.export_edited}: the edited model was not exported ({brief(error)})"
            self.config.get_terminal_writer().line(message, red=True)
            if session.exitstatus == pytest.ExitCode.OK:
                session.exitstatus = pytest.ExitCode(COULD_NOT_CHECK_STATUS)


def _written(write: Callable[[], object]) -> str | None:
    """Run one report's write; the cause in a few words when the file could not be written."""
    from editguard.atomic import os_error_cause

    try:
        write()
    except OSError as error:
        return os_error_cause(error)
    return None


__all__ = ["Path", "Results", "could_not_check_report"]
