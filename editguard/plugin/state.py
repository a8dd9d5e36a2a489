"""The plugin's state in pytest's config: the settings, the run's session, the reporter it replaced, the problems told."""

from __future__ import annotations

import os
from typing import Any

import pytest

from editguard.settings import Settings

SETTINGS_KEY = pytest.StashKey[Settings]()
PROGRESS_KEY = pytest.StashKey[Any]()  # the editguard.progress.Reporter this run replaced, put back at the end
SESSION_KEY = pytest.StashKey[Any]()  # the run's editguard.session.Session, made once per process
PROBLEMS_KEY = pytest.StashKey[dict[str, str]]()  # a could-not-check message -> the test that reported it first
PROBLEM = "editguard-could-not-check"  # the user property that marks a test the gate could not check
LOCALITY = "locality"  # test_locality's name in --editguard-abilities
GATED_PARAMETERS = ("editguard_ability", "editguard_canary")  # test_ability's and test_canary's parameters


def worker() -> tuple[int, int]:
    name = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(name[2:]) if name.startswith("gw") and name[2:].isdigit() else 0
    return index, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))


def session_of(config: pytest.Config) -> Any:
    """The run's ``editguard.session.Session``, made once per process (the start-up checks and the fixtures share it)."""
    if SESSION_KEY not in config.stash:
        from editguard.session import Session

        index, count = worker()
        verbose = config.get_verbosity() > 0 or config.option.tbstyle == "long"  # tracebacks only when asked for
        config.stash[SESSION_KEY] = Session(config.stash[SETTINGS_KEY], worker_index=index, worker_count=count, verbose=verbose)
    return config.stash[SESSION_KEY]
