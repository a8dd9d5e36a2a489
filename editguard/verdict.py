"""The verdict: did the edit damage an ability beyond its tolerance?  Pure functions, no pytest import.

Base and edited model answer the same examples, so the comparison is paired (``editguard.stats``): flips
both ways, an interval for the difference ``edited - base``, and a three-way verdict against a one-sided
tolerance (a non-inferiority margin):

- PASS: the lower confidence bound of the difference is above ``-tolerance``;
- FAIL: the upper bound is below it (``fail_rule="margin"``), or, with ``fail_rule="significant"``, the drop is
  significant and larger than the tolerance;
- INCONCLUSIVE: neither; the verdict says about how many examples would settle it.

The PASS bound is at level ``alpha``; the FAIL bound at ``alpha / family_size`` (Bonferroni, Holm's first step),
so each ability decides alone, as an xdist worker must, and a false FAIL among all abilities has probability
at most ``alpha``; the report adds Holm-adjusted p-values over all abilities.  How an INCONCLUSIVE counts
in CI is ``Policy.inconclusive``: ``fail`` (default, safe) or ``warn`` (the test passes with a warning).

``compare`` decides on all examples; ``compare_sequential`` on chunks as they arrive, with an anytime-valid
confidence sequence, so looking after every chunk does not inflate the error rates.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

INCONCLUSIVE_POLICIES = ("fail", "warn")
FAIL_RULES = ("margin", "significant")
_KINDS = {"accuracy": "binary", "exact_match": "binary", "recall@1": "binary", "rouge": "continuous"}


class Outcome(str, Enum):
    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class Policy:
    tolerance: float
    alpha: float = 0.05
    family_size: int = 1  # abilities gated together
    fail_rule: str = "margin"
    inconclusive: str = "fail"

    @property
    def fail_alpha(self) -> float:
        return self.alpha / max(1, self.family_size)


@dataclass(frozen=True)
class Verdict:
    ability: str
    baseline: float
    observed: float
    tolerance: float
    n: int
    outcome: Outcome
    lower: float = -math.inf  # confidence bounds of observed - baseline
    upper: float = math.inf
    negative_flips: int = 0  # examples that got worse (0/1: base right, edited wrong)
    positive_flips: int = 0
    p_value: float = 1.0  # H0: no drop beyond the tolerance (small: evidence of damage)
    minimum_detectable_drop: float = math.inf
    examples_needed: int | None = None
    sequential: bool = False
    policy: Policy | None = None

    @property
    def difference(self) -> float:
        return self.observed - self.baseline

    @property
    def passed(self) -> bool:
        """Whether the test passes: PASS, or INCONCLUSIVE under the ``warn`` policy."""
        if self.outcome is Outcome.INCONCLUSIVE:
            return self.policy is not None and self.policy.inconclusive == "warn"
        return self.outcome is Outcome.PASS


def outcome_kind(metric: str) -> str:
    return _KINDS.get(metric, "counts")


def compare(
    ability: str,
    base: Mapping[str, Any],
    edited: Mapping[str, Any],
    policy: Policy,
    *,
    aggregate: Callable[[Sequence[Any]], float],
    metric: str,
) -> Verdict:
    """Paired verdict on the examples both models answered (matched by example id)."""
    from editguard import stats

    ids = sorted(set(base) & set(edited))
    if not ids:
        raise ValueError(f"{ability}: no examples in common between the baseline and the edited model")
    kind = stats.OutcomeKind(outcome_kind(metric))
    base_outcomes, edited_outcomes = [base[i] for i in ids], [edited[i] for i in ids]
    paired = stats.PairedOutcomes(kind, base_outcomes, edited_outcomes, policy.tolerance)
    custom = aggregate if metric not in ("entity_f1",) and kind is stats.OutcomeKind.COUNTS else None
    decided = stats.decide_ability(
        ability, paired, policy.alpha, policy.fail_alpha, stats.FailRule(policy.fail_rule), aggregate=custom
    )
    return Verdict(
        ability, aggregate(base_outcomes), aggregate(edited_outcomes), policy.tolerance, len(ids), Outcome(decided.decision.value),
        decided.lower, decided.upper, decided.negative_flips, decided.positive_flips, decided.fail_p_value,
        decided.minimum_detectable_drop, decided.examples_needed, False, policy,
    )  # fmt: skip


def compare_sequential(
    ability: str, base: Sequence[float], edited: Sequence[float], policy: Policy, chunk_size: int
) -> Verdict:
    """Anytime-valid verdict on 0/1 or [0, 1] outcomes in evaluation order (a seeded random order)."""
    from editguard import stats

    differences = [e - b for b, e in zip(base, edited, strict=True)]
    decided = stats.sequential_gate(
        differences, policy.tolerance, policy.alpha, chunk_size, stats.FailRule(policy.fail_rule), policy.fail_alpha
    )
    used_base, used_edited = base[: decided.n], edited[: decided.n]
    return Verdict(
        ability, sum(used_base) / decided.n, sum(used_edited) / decided.n, policy.tolerance, decided.n,
        Outcome(decided.decision.value), decided.lower, decided.upper,
        sum(b > e for b, e in zip(used_base, used_edited)), sum(e > b for b, e in zip(used_base, used_edited)),
        decided.fail_p_value, math.inf, None, True, policy,
    )  # fmt: skip


def holm_adjusted(p_values: Mapping[str, float]) -> dict[str, float]:
    from editguard import stats

    return dict(stats.holm(p_values))


def failure_message(verdict: Verdict, *, dataset: str, baseline_file: str) -> str:
    """What a person reads when an ability regressed or could not be cleared: the numbers, then the remedy."""
    numbers = (
        f"edited {verdict.observed:.3f} vs baseline {verdict.baseline:.3f} on the same {verdict.n} examples "
        f"({baseline_file}): difference {verdict.difference:+.3f}, interval [{verdict.lower:+.3f}, {verdict.upper:+.3f}], "
        f"{verdict.negative_flips} examples got worse, {verdict.positive_flips} better"
    )
    if verdict.outcome is Outcome.FAIL:
        return (
            f"{verdict.ability} ({dataset}) regressed after the edit: {numbers}; the whole interval lies below the "
            f"tolerance of -{verdict.tolerance:.3f} (p={verdict.p_value:.2g}). Do not ship this edit as it is; if the "
            f"drop is acceptable, allow it with --editguard-tolerance {verdict.ability}={min(1.0, -verdict.lower + 0.005):.2f}."
        )
    needed = f"about {verdict.examples_needed} examples" if verdict.examples_needed else "more examples"
    return (
        f"{verdict.ability} ({dataset}) is inconclusive: {numbers}; the interval straddles the tolerance of "
        f"-{verdict.tolerance:.3f}, so these examples can neither clear nor condemn the edit. Gate on {needed} "
        f"(--editguard-limit, or a larger --editguard-data set), widen --editguard-tolerance, or let inconclusive "
        f"abilities pass with a warning (--editguard-inconclusive warn)."
    )
