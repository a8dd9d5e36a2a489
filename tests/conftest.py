"""Shared test set-up for editguard's own suite, and its two tiers.

- ``tests/fast``: no model is loaded, and torch is imported only where the code under test needs it
  (weight deltas, RECT). Runs alone in well under a minute: ``pytest tests/fast`` (``make test-fast``).
- ``tests/slow``: no model either, but seconds a test: the statistical simulations (error rates, power,
  coverage of the gate's bounds).
- ``tests/model``: tests that load a model (the tiny GPT-2 or the embedded SmolLM2) or run the gate
  through pytester. ``tests/model/conftest.py`` holds their fixtures.

Each test is marked with its tier (``fast``, ``slow`` or ``model``) from its folder; ``pytest`` runs all three.
A model-tier test that loads the embedded default (the ``smollm2`` fixture, or a gate run on it) is also marked
``embedded``: ``-m "not embedded"`` is the tiny-model part, which ``make test`` runs on the oldest supported stack too. Converted models and computed
edits are cached under ``.cache/editguard`` in the checkout (ignored by git) unless ``EDITGUARD_CACHE_DIR``
says otherwise (see the root ``conftest.py``), so the slow steps happen once per machine.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

TIERS = ("fast", "slow", "fuzz", "model")


def _share_the_cores() -> None:
    """Under xdist (``make test`` runs two workers) each worker gets its share of the cores, inherited by the
    ``editguard`` commands the tests start.  Set on import, before torch is: ``pytest tests/model -n 2`` loads
    tests/model/conftest.py (which imports torch) before any configure hook, and two workers of two threads each
    on two cores ran the model tests 6-10 times slower than one thread each."""
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if workers and workers.isdigit():
        os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // int(workers))))


_share_the_cores()


@pytest.fixture(autouse=True)
def _outside_editguard_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    """editguard reads PYTEST_XDIST_WORKER(_COUNT) to share devices among the workers of a gate run; a gate the tests
    start inside one of this suite's own workers is not one of them."""
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT"):
        monkeypatch.delenv(name, raising=False)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        tier = next((name for name in TIERS if name in item.path.parent.parts[-1:]), None)
        if tier:
            item.add_marker(tier)
        if "smollm2" in getattr(item, "fixturenames", ()):
            item.add_marker("embedded")


def pytest_report_header(config: pytest.Config) -> str:
    """Which stack this run tests (CI runs the suite on the newest and the oldest supported one)."""
    from editguard.stack import SUPPORTED, installed_version

    return "editguard stack: " + ", ".join(f"{r.package} {installed_version(r.package) or 'not installed'}" for r in SUPPORTED)


@pytest.fixture(scope="session")
def cache_dir() -> Path:
    return Path(os.environ["EDITGUARD_CACHE_DIR"])
