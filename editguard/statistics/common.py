"""What the statistics share: the types of outcomes, the verdicts and fail rules, the two-sided interval, and the
checks of inputs and levels that every method makes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import special

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Outcomes = Sequence[Any] | npt.NDArray[Any]  # per-example outcomes, one entry per example, aligned across models


class Decision(str, Enum):
    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"


class FailRule(str, Enum):
    """When a drop counts as a failure (PASS is always: lower bound above ``-tolerance``)."""

    MARGIN = "margin"  # the whole interval lies below -tolerance: the drop exceeds the margin, with confidence
    SIGNIFICANT = "significant"  # the drop is significant (upper bound below 0) and the point drop exceeds the margin


@dataclass(frozen=True)
class Interval:
    """A two-sided confidence interval for ``edited - base``; each bound misses on its side with probability alpha/2."""

    lower: float
    upper: float
    point: float
    alpha: float


def _check_paired(base: Outcomes, edited: Outcomes) -> int:
    if len(base) != len(edited):
        raise ValueError(
            f"base and edited outcomes must be aligned on the same examples: got {len(base)} base and "
            f"{len(edited)} edited outcomes"
        )
    if len(base) == 0:
        raise ValueError("no examples: a paired comparison needs at least one example scored by both models")
    return len(base)


def _check_alpha(alpha: float) -> None:
    if not 0.0 < alpha < 0.5:
        raise ValueError(f"alpha must be a one-sided error rate in (0, 0.5), got {alpha}")


def _check_tolerance(tolerance: float) -> None:
    if not 0.0 <= tolerance < 1.0:
        raise ValueError(f"tolerance must be in [0, 1), got {tolerance}")


def _z(alpha: float) -> float:
    """The standard normal quantile that a one-sided level-alpha bound sits at."""
    return float(special.ndtri(1.0 - alpha))
