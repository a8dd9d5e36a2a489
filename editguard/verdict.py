"""The verdict: is an edited model's score within tolerance of the base model's baseline?

``compare`` is a pure function with no pytest import, so a CLI or another runner can reuse it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Outcome(str, Enum):
    PASS = "pass"
    FAIL = "fail"


@dataclass(frozen=True)
class Verdict:
    ability: str
    baseline: float
    observed: float
    tolerance: float
    n: int
    outcome: Outcome

    @property
    def difference(self) -> float:
        return self.observed - self.baseline

    @property
    def passed(self) -> bool:
        return self.outcome is Outcome.PASS


def compare(ability: str, observed: float, baseline: float, tolerance: float, n: int) -> Verdict:
    """Pass when ``observed >= baseline - tolerance`` (higher is better)."""
    # Scores are means of n outcomes; round away float noise before comparing at the boundary.
    passed = round(observed - (baseline - tolerance), 12) >= 0
    return Verdict(ability, baseline, observed, tolerance, n, Outcome.PASS if passed else Outcome.FAIL)


def failure_message(verdict: Verdict, *, dataset: str, baseline_file: str) -> str:
    """What a person reads when an ability regressed: the numbers, then the remedy."""
    return (
        f"{verdict.ability} ({dataset}) regressed after the edit: edited score {verdict.observed:.3f}, "
        f"baseline {verdict.baseline:.3f} (n={verdict.n}, {baseline_file}), difference {verdict.difference:+.3f} "
        f"is beyond the tolerance of {verdict.tolerance:.3f}. Do not ship this edit as it is; if the drop is "
        f"acceptable, allow it with --editguard-tolerance {verdict.ability}={min(1.0, -verdict.difference + 0.005):.2f}."
    )
