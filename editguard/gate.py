"""The gate: one test per general ability.  Run it with ``editguard`` or ``pytest --pyargs editguard.gate``.

To gate from your own test suite, import the test into a test module::

    from editguard.gate import test_ability, test_edit_quality  # noqa: F401
"""

from __future__ import annotations

from collections.abc import Callable


def test_ability(editguard_ability: str, editguard_check: Callable[[str], None]) -> None:
    """The edited model's score on this ability stays within tolerance of the stored baseline."""
    editguard_check(editguard_ability)


def test_edit_quality(editguard_quality_check: Callable[[], None]) -> None:
    """The edits took: EasyEdit's reliability (and generalisation, locality, portability, reported)."""
    editguard_quality_check()
