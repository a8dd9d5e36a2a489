"""The pytest plugin: options, fixtures and reporting hooks only; every fixture calls into the library.

Heavy imports (torch, transformers, easyeditor) happen inside fixtures, never at import, so
``pytest --help`` and the xdist controller stay fast.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from editguard.report import (
    PROPERTY,
    Row,
    draw_curves,
    first_failing_counts,
    table,
    with_holm,
    write_json,
)
from editguard.settings import OPTIONS, Settings, SettingsError, build_settings

SETTINGS_KEY = pytest.StashKey[Settings]()


# ----------------------------------------------------------------------------- options


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("editguard", "editguard: gate edited models on their general abilities")
    for option in OPTIONS:
        if option.flag:
            group.addoption(option.cli, action="store_true", default=None, dest=f"editguard_{option.name}", help=option.help)
        else:
            group.addoption(
                option.cli,
                action="append" if option.repeat else "store",
                type=option.parse,
                default=None,
                dest=f"editguard_{option.name}",
                metavar=option.metavar,
                help=option.help,
            )
        if option.repeat:
            parser.addini(option.ini, help=option.help, type="linelist", default=None)
        else:
            parser.addini(option.ini, help=option.help, type="string", default=None)


def _pyproject_table(rootpath: Path) -> dict[str, Any]:
    import tomllib

    path = rootpath / "pyproject.toml"
    if not path.is_file():
        return {}
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise pytest.UsageError(f"{path} is not valid TOML: {error}") from None
    section = document.get("tool", {}).get("editguard", {})
    return section if isinstance(section, dict) else {}


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "editguard: a test that gates an edited model on a general ability")
    cli = {option.name: config.getoption(f"editguard_{option.name}") for option in OPTIONS}
    ini = {option.name: config.getini(option.ini) for option in OPTIONS}
    try:
        # Without a configuration file pytest guesses its rootdir from path-like arguments (option values
        # included), which would move the default baselines folder between runs: use the working directory.
        root = config.rootpath if config.inipath is not None else config.invocation_params.dir
        settings = build_settings(cli, _pyproject_table(root), ini, rootdir=root)
    except SettingsError as error:
        raise pytest.UsageError(str(error)) from None
    _check_ability_names(settings)
    config.stash[SETTINGS_KEY] = settings
    config.pluginmanager.register(_Results(config), "editguard-results")


@pytest.hookimpl(tryfirst=True, optionalhook=True)  # optional: pytest-xdist may be absent or disabled
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """``-n auto``: one worker per visible GPU when there are GPUs, else xdist's own choice."""
    # xdist asks before pytest_configure, so read the command line directly
    if (config.getoption("editguard_device") or "auto") not in ("auto", "cuda"):
        return None
    import torch

    return torch.cuda.device_count() or None if torch.cuda.is_available() else None


# ----------------------------------------------------------------------------- fixtures


def _worker() -> tuple[int, int]:
    name = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(name[2:]) if name.startswith("gw") and name[2:].isdigit() else 0
    return index, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))


@pytest.fixture(scope="session")
def editguard(pytestconfig: pytest.Config) -> Any:
    """The run's ``editguard.session.Session``: the model pair, scores, baselines and verdicts."""
    from editguard.session import Session

    index, count = _worker()
    verbose = pytestconfig.get_verbosity() > 0
    return Session(pytestconfig.stash[SETTINGS_KEY], worker_index=index, worker_count=count, verbose=verbose)


@pytest.fixture
def base_model(editguard: Any) -> Any:
    """The base model (``LoadedModel``: ``.model``, ``.tokenizer``, ``.device``, ``.fingerprint``)."""
    return editguard.base


@pytest.fixture
def edited_model(editguard: Any) -> Iterator[Any]:
    """The edited model: the base with the edit applied in place for this test, reverted after it."""
    with editguard.edited() as model:
        yield model


@pytest.fixture
def score_ability(editguard: Any) -> Callable[..., Any]:
    """``score_ability(ability, edited=True)`` -> ``Score`` (``.value``, ``.n``, per-example ``.outcomes``)."""

    def score(ability: str, edited: bool = True) -> Any:
        return editguard.score(ability, edited=edited)

    return score


@pytest.fixture
def ability_baseline(editguard: Any) -> Callable[[str], Any]:
    """``ability_baseline(ability)`` -> the stored ``Baseline``; fails the test when missing or stale."""
    from editguard.errors import GateProblem

    def baseline(ability: str) -> Any:
        __tracebackhide__ = True
        try:
            return editguard.baseline(ability)
        except GateProblem as problem:
            pytest.fail(str(problem), pytrace=False)

    return baseline


@pytest.fixture
def editguard_check(editguard: Any, request: pytest.FixtureRequest) -> Callable[[str], None]:
    """``editguard_check(ability)``: gate one ability, report it, and fail with the reason if it regressed."""
    from editguard.session import gate_row

    def check(ability: str) -> None:
        __tracebackhide__ = True
        row, failure = gate_row(editguard, ability)
        row = dataclasses.replace(row, worker=os.environ.get("PYTEST_XDIST_WORKER", ""))
        request.node.user_properties.append((PROPERTY, row.as_dict()))
        if failure and row.passed:  # inconclusive under --editguard-inconclusive warn
            warnings.warn(pytest.PytestWarning(failure), stacklevel=2)
        elif failure:
            pytest.fail(failure, pytrace=False)

    return check


@pytest.fixture
def editguard_quality_check(editguard: Any, request: pytest.FixtureRequest) -> Callable[[], None]:
    """``editguard_quality_check()``: did the edits take (EasyEdit's reliability)?  Fails the test when not."""
    from editguard.session import quality_row

    def check() -> None:
        __tracebackhide__ = True
        if editguard.settings.update_baselines:
            pytest.skip("recording baselines: the base model is scored, no edit is checked")
        row, failure = quality_row(editguard)
        request.node.user_properties.append((PROPERTY, row.as_dict()))
        if row.verdict == "skipped":
            pytest.skip(row.note)
        if failure:
            pytest.fail(failure, pytrace=False)

    return check


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Recording baselines scores the base model only: the edit-quality check has nothing to check then."""
    if not config.stash[SETTINGS_KEY].update_baselines:
        return
    unused = [item for item in items if "editguard_quality_check" in getattr(item, "fixturenames", ())]
    if unused:
        config.hook.pytest_deselected(items=unused)
        items[:] = [item for item in items if item not in unused]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "editguard_ability" in metafunc.fixturenames:
        from editguard.tasks import task_names

        settings = metafunc.config.stash[SETTINGS_KEY]
        metafunc.parametrize("editguard_ability", sorted(settings.abilities or task_names()))


def _check_ability_names(settings: Settings) -> None:
    from editguard.tasks import get_task

    named = [("--editguard-abilities", name) for name in settings.abilities or ()]
    named += [("--editguard-data", name) for name in settings.data]
    for option, name in named:
        try:
            get_task(name, settings.protocol)
        except KeyError as error:
            raise pytest.UsageError(f"{option}: {error}") from None


# ----------------------------------------------------------------------------- reporting


_EDIT_SOURCES: dict[bool | None, str] = {
    True: "reused from the edit cache (not recomputed)",
    False: "computed in this run and cached",
}


class _Results:
    """Collects the gate rows (from this process or, under xdist, from the workers' reports)."""

    def __init__(self, config: pytest.Config):
        self.config = config
        self.rows: list[Row] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call":
            self.rows += [Row.from_dict(value) for name, value in report.user_properties if name == PROPERTY and isinstance(value, dict)]

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        settings = self.config.stash[SETTINGS_KEY]
        if not self.rows or hasattr(self.config, "workerinput"):
            return
        self.rows, changed = with_holm(self.rows, settings.alpha, settings.fail_rule)
        if changed and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED  # Holm failed an ability its own test let pass
        if any(row.curve for row in self.rows):
            edit = next((row.edit for row in self.rows if row.edit), "")
            draw_curves(settings.curve, self.rows, f"{settings.model}: {edit}")
        if settings.report is not None:
            context = {
                "model": settings.model,
                "update_baselines": bool(settings.update_baselines),
                "statistics": self.statement(settings),
            }
            write_json(settings.report, self.rows, context)

    def statement(self, settings: Settings) -> str:
        gated = sum(row.p_value is not None for row in self.rows)
        return (
            f"paired comparison on the same examples; PASS when the {1 - settings.alpha:.0%} lower bound of edited - baseline "
            f"is above -tolerance, FAIL by the {settings.fail_rule} rule at Holm's level over {gated} abilities, so the chance "
            f"of any false FAIL, or of a false PASS of the whole gate, is at most {settings.alpha:g}; "
            f"inconclusive abilities {'fail' if settings.inconclusive == 'fail' else 'pass with a warning'}"
        )

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.rows:
            return
        terminalreporter.section("editguard")
        for description, reused in sorted({(row.edit, row.edit_reused) for row in self.rows if row.edit}, key=str):
            how = _EDIT_SOURCES.get(reused, "loaded")
            terminalreporter.write_line(f"edit: {description}, {how}")
        scored = sum(row.n or 0 for row in self.rows)
        cached = sum(row.cached for row in self.rows)
        if cached:
            terminalreporter.write_line(
                f"model outputs: {cached} of {scored} example results read from the output cache (--editguard-rescore scores them again)"
            )
        for line in table(self.rows):
            terminalreporter.write_line(line)
        settings = self.config.stash[SETTINGS_KEY]
        for row in self.rows:
            if row.ability == "edit_quality" and row.quality:
                for label, values in row.quality.items():
                    shown = ", ".join(f"{k} {v:.2f}" for k, v in values.items() if isinstance(v, float))
                    terminalreporter.write_line(f"edit quality ({label}): {shown}  {row.verdict.upper()}")
        curves = [row for row in sorted(self.rows, key=lambda r: r.ability) if row.curve]
        for row in curves:
            firsts = "; ".join(
                f"{name}: FAIL at {failed or 'none'}, score below baseline - tolerance at {below or 'none'}"
                for name, (failed, below) in first_failing_counts(row).items()
            )
            terminalreporter.write_line(f"{row.ability}: first edit count -- {firsts}")
        if curves:
            terminalreporter.write_line(f"edit-count curve: {settings.curve}")
        if any(row.p_value is not None for row in self.rows):
            terminalreporter.write_line("statistics: " + self.statement(settings))
        for row in sorted(self.rows, key=lambda r: r.ability):
            if row.sequential:
                terminalreporter.write_line(f"{row.ability}: early stopping used {row.n} of {row.available} examples ({row.verdict})")
            if row.jitter is not None:
                terminalreporter.write_line(
                    f"{row.ability}: noise floor: {row.jitter} base outcomes changed when re-scored with batch size 1 in another order"
                    + ("" if row.jitter == 0 else "  <- the evaluator is not exact here; treat small differences with care")
                )
            if row.note and row.note.startswith("failed by Holm"):
                terminalreporter.write_line(f"{row.ability}: {row.note}")
        for row in self.rows:
            if row.verdict == "recorded":
                terminalreporter.write_line(f"{row.ability}: {row.note}")
        report = self.config.stash[SETTINGS_KEY].report
        if report is not None:
            terminalreporter.write_line(f"JSON report: {report}")
