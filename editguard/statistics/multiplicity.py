"""Several abilities: Holm's (1979) step-down adjusted p-values, with which ``editguard.statistics.verdict.holm_correct``
completes the step-down that ``decide_ability``'s Bonferroni FAIL bound starts."""

from __future__ import annotations

from collections.abc import Mapping


def _holm_order(p_values: Mapping[str, float]) -> list[str]:
    for name, p in p_values.items():
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p-value for {name!r} must be in [0, 1], got {p}")
    return sorted(p_values, key=lambda name: (p_values[name], name))


def holm(p_values: Mapping[str, float]) -> dict[str, float]:
    """Holm step-down adjusted p-values: monotone in the raw p-values, capped at 1; reject where <= alpha."""
    order = _holm_order(p_values)
    adjusted: dict[str, float] = {}
    running = 0.0
    for rank, name in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * p_values[name]))
        adjusted[name] = running
    return {name: adjusted[name] for name in p_values}
