"""The pytest plugin: its hooks, each handing its work to the library in a line or three.

Options and settings are ``options``, fixtures ``fixtures``, the run's results and its reports ``results``, progress
lines ``logs``, the config's state ``state``.  Heavy imports (torch, transformers, easyeditor) happen inside
fixtures and the session, never at import, so ``pytest --help`` and the xdist controller stay fast.
"""

from __future__ import annotations

from typing import Any

import pytest

from editguard.atomic import forget_unwritable
from editguard.plugin import fixtures, options
from editguard.plugin.logs import show_progress
from editguard.plugin.results import Results, could_not_check_report
from editguard.plugin.state import GATED_PARAMETERS, LOCALITY, PROGRESS_KEY, SESSION_KEY, SETTINGS_KEY, session_of

__all__ = ["SETTINGS_KEY"]


def pytest_addoption(parser: pytest.Parser) -> None:
    options.add_options(parser)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "editguard: a test that gates an edited model on a general ability")
    forget_unwritable()
    options.configure(config)
    config.pluginmanager.register(fixtures, "editguard-fixtures")
    config.pluginmanager.register(Results(config), "editguard-results")


@pytest.hookimpl(tryfirst=True, optionalhook=True)  # optional: pytest-xdist may be absent or disabled
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """``-n auto``: one worker per visible GPU when there are GPUs, else xdist's own choice."""
    if (config.getoption("editguard_device") or "auto") not in ("auto", "cuda"):  # xdist asks before pytest_configure
        return None
    import torch

    return torch.cuda.device_count() or None if torch.cuda.is_available() else None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """test_ability runs once per general ability, test_canary once per canary, both narrowed by
    --editguard-abilities (a canary not named there is not run)."""
    from editguard.tasks import canary_names, task_names

    settings = metafunc.config.stash[SETTINGS_KEY]
    for parameter, names in (("editguard_ability", task_names()), ("editguard_canary", canary_names())):
        if parameter in metafunc.fixturenames:
            metafunc.parametrize(parameter, [name for name in names if settings.abilities is None or name in settings.abilities])


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Recording baselines scores the base model only: the edit-quality and locality checks have nothing to check
    then.  --editguard-abilities narrows the gate: the canary and the locality property run when named there
    (or when the option is not given); a test left without a parameter is not collected, rather than skipped."""
    settings = config.stash[SETTINGS_KEY]
    unused = [item for item in items if not _gated_here(item, settings)]
    if unused:
        config.hook.pytest_deselected(items=unused)
        items[:] = [item for item in items if item not in unused]


def _gated_here(item: pytest.Item, settings: Any) -> bool:
    names = set(getattr(item, "fixturenames", ()))
    params = getattr(getattr(item, "callspec", None), "params", {})
    if settings.update_baselines and names & {"editguard_quality_check", "editguard_locality"}:
        return False
    if "editguard_locality" in names and settings.abilities is not None and LOCALITY not in settings.abilities:
        return False
    return not any(name in names and not isinstance(params.get(name), str) for name in GATED_PARAMETERS)  # an empty set


def pytest_sessionstart(session: pytest.Session) -> None:
    """Under xdist the controller collects nothing: when the gate was asked for, it checks the inputs (no model)."""
    config = session.config
    if config.pluginmanager.hasplugin("dsession") and _gate_requested(config):
        _start(config, [], load=False)


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """When a collected test uses the gate, the start-up checks run once, before the first test (``preflight``)."""
    config = session.config
    gated = [item for item in session.items if "editguard" in getattr(item, "fixturenames", ())]
    if gated and not config.option.collectonly:
        show_progress(config)
        _start(config, _gated_abilities(gated), load=True)


def _start(config: pytest.Config, abilities: list[str], *, load: bool) -> None:
    """A start-up problem stops the run with one sentence and the could-not-check status (4).  An xdist worker
    cannot stop the run cleanly, so there every test reports it instead (``Session.ready``)."""
    from editguard.errors import COULD_NOT_CHECK, GateProblem
    from editguard.session import told

    session = session_of(config)
    try:
        session.start(abilities, load=load)
    except GateProblem as problem:
        if not hasattr(config, "workerinput"):
            results = config.pluginmanager.get_plugin("editguard-results")
            assert isinstance(results, Results)
            results.finish(COULD_NOT_CHECK)  # the run stops here: the reports say why
            raise pytest.UsageError(told(session, problem)) from None


def _gate_requested(config: pytest.Config) -> bool:
    return any(arg == "editguard.gate" or arg.replace("\\", "/").split("::")[0].endswith("editguard/gate.py") for arg in config.args)


def _gated_abilities(items: list[pytest.Item]) -> list[str]:
    params = [getattr(getattr(item, "callspec", None), "params", {}) for item in items]
    return sorted({str(param[name]) for param in params for name in GATED_PARAMETERS if name in param})


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config) -> tuple[str, str, str] | None:
    """``-v`` says COULD NOT CHECK, not FAILED, for a test the gate could not check (it still counts as failed)."""
    if report.when in ("setup", "call") and could_not_check_report(report):
        return ("failed", "F", "COULD NOT CHECK") if report.when == "call" else ("error", "E", "COULD NOT CHECK")
    return None


def pytest_unconfigure(config: pytest.Config) -> None:
    if SESSION_KEY in config.stash:  # the servers of --editguard-backend vllm stop here, also after a failure or Ctrl-C
        config.stash[SESSION_KEY].close()
    if PROGRESS_KEY in config.stash:
        from editguard import progress

        progress.use(config.stash[PROGRESS_KEY])
