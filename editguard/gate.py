"""The gate: one test per general ability.  Run it with ``editguard`` or ``pytest --pyargs editguard.gate``.

To gate from your own test suite, import the test into a test module::

    from editguard.gate import test_ability, test_canary, test_edit_quality, test_locality  # noqa: F401
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest


def test_ability(editguard_ability: str, editguard_check: Callable[[str], None]) -> None:
    """The edited model's score on this ability stays within tolerance of the stored baseline."""
    editguard_check(editguard_ability)


def test_canary(editguard_canary: str, editguard_check: Callable[[str], None]) -> None:
    """The edited model still predicts plain general text: its perplexity ratio to the base stays within tolerance."""
    editguard_check(editguard_canary)


def test_edit_quality(editguard_quality_check: Callable[[], None]) -> None:
    """The edits took: EasyEdit's reliability (and generalisation, locality, portability, reported)."""
    editguard_quality_check()


def test_locality(editguard_locality: Any, pytestconfig: pytest.Config) -> None:
    """Prompts about things no edit named keep the base model's greedy answer (hypothesis, derandomised, a fixed
    budget of --editguard-locality-examples prompts; a failure shows the shortest prompt that leaked)."""
    from hypothesis import HealthCheck, given, settings

    from editguard.plugin import SETTINGS_KEY

    budget = pytestconfig.stash[SETTINGS_KEY].locality_examples

    @settings(derandomize=True, database=None, deadline=None, max_examples=budget, suppress_health_check=list(HealthCheck))
    @given(editguard_locality.prompts())
    def unchanged(prompt: str) -> None:
        editguard_locality.assert_unchanged(prompt)

    unchanged()
