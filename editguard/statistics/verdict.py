"""The verdict: did the edit damage an ability beyond its tolerance?  Pure functions, no pytest import.

Base and edited model answer the same examples, so the comparison is paired (``editguard.statistics``): flips
both ways, an interval for the difference ``edited - base``, and a three-way verdict against a one-sided
tolerance (a non-inferiority margin).  Everything about the metric (its aggregate, its outcomes, the method
that builds the evidence, whether lower is better) comes from its record in ``editguard.statistics.metrics``; for a
metric where lower is better the difference is ``base - edited``, so a drop is always the bad direction.

- PASS: the lower confidence bound of the difference is above ``-tolerance``;
- FAIL: the upper bound is below it (``fail_rule="margin"``), or, with ``fail_rule="significant"``, the drop is
  significant and larger than the tolerance;
- INCONCLUSIVE: neither; the verdict says about how many examples would settle it.

The PASS bound is at level ``alpha``; the FAIL bound at ``alpha / family_size`` (Bonferroni, Holm's first step),
so each ability decides alone, as an xdist worker must, and a false FAIL among all abilities has probability
at most ``alpha``.  Once every ability has its verdict, ``holm_correct`` completes Holm's step-down over them
(``report.with_holm`` applies it to the rows on the controller).  How an INCONCLUSIVE counts
in CI is ``Policy.inconclusive``: ``fail`` (default, safe) or ``warn`` (the test passes with a warning).

``compare`` decides on all examples; ``compare_sequential`` on chunks as they arrive, with an anytime-valid
confidence sequence, so looking after every chunk does not inflate the error rates.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from editguard.statistics.metrics import get_metric

FAIL_RULES = ("margin", "significant")


class Outcome(str, Enum):
    """Every outcome a gated check can have: the three verdicts of a comparison, and what stands in its place."""

    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"
    NO_SIGNAL = "no signal"  # the base model is not clearly above chance: no drop could be seen (no_signal)
    RECORDED = "recorded"  # --editguard-update-baselines wrote the baseline instead of gating
    SKIPPED = "skipped"  # nothing to check (edit quality of an edited model made elsewhere)
    COULD_NOT_CHECK = "could not check"  # an input stopped the comparison: not a verdict (exit status 4)


class RunVerdict(str, Enum):
    """A whole run's verdict, from its exit status (what CI acts on)."""

    PASS = "PASS"
    REGRESSED = "REGRESSED"
    COULD_NOT_CHECK = "COULD NOT CHECK"
    RECORDED = "BASELINES RECORDED"


@dataclass(frozen=True)
class Policy:
    tolerance: float
    alpha: float = 0.05
    family_size: int = 1  # abilities gated together
    fail_rule: str = "margin"
    inconclusive: str = "fail"
    no_signal: str = "skip"  # an ability without signal: skipped (neither passes nor fails), failed, or gated anyway

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
    lower: float = -math.inf  # confidence bounds of ``difference``
    upper: float = math.inf
    negative_flips: int = 0  # examples that got worse (0/1: base right, edited wrong)
    positive_flips: int = 0
    p_value: float = 1.0  # H0: no drop beyond the tolerance (small: evidence of damage)
    minimum_detectable_drop: float = math.inf
    examples_needed: int | None = None
    sequential: bool = False
    policy: Policy | None = None
    higher_is_better: bool = True  # the metric's direction; lower is better: the difference is baseline - observed

    @property
    def difference(self) -> float:
        """The change in the metric's better direction, like ``lower`` and ``upper``: negative is worse."""
        change = self.observed - self.baseline
        return change if self.higher_is_better else -change

    @property
    def passed(self) -> bool:
        """Whether the test passes: PASS, or INCONCLUSIVE under the ``warn`` policy."""
        if self.outcome is Outcome.INCONCLUSIVE:
            return self.policy is not None and self.policy.inconclusive == "warn"
        return self.outcome is Outcome.PASS


def compare(ability: str, base: Mapping[str, Any], edited: Mapping[str, Any], policy: Policy, *, metric: str) -> Verdict:
    """Paired verdict on the examples both models answered (matched by example id), by the method the metric's
    record names; ``base`` and ``edited`` map example ids to outcomes."""
    from editguard import statistics as stats

    record = get_metric(metric)
    ids = sorted(set(base) & set(edited))
    if not ids:
        raise ValueError(f"{ability}: no examples in common between the baseline and the edited model")
    base_outcomes, edited_outcomes = [base[i] for i in ids], [edited[i] for i in ids]
    paired = stats.PairedOutcomes(record, base_outcomes, edited_outcomes, policy.tolerance)
    decided = stats.decide_ability(ability, paired, policy.alpha, policy.fail_alpha, stats.FailRule(policy.fail_rule))
    return Verdict(
        ability, record.aggregate(base_outcomes), record.aggregate(edited_outcomes), policy.tolerance, len(ids),
        Outcome(decided.decision.value), decided.lower, decided.upper, decided.negative_flips, decided.positive_flips,
        decided.fail_p_value, decided.minimum_detectable_drop, decided.examples_needed, sequential=False, policy=policy,
        higher_is_better=record.higher_is_better,
    )  # fmt: skip


def compare_sequential(
    ability: str, base: Sequence[float], edited: Sequence[float], policy: Policy, chunk_size: int, *, metric: str
) -> Verdict:
    """Anytime-valid verdict on 0/1 or [0, 1] outcomes in evaluation order (a seeded random order), for a metric
    whose record allows early stopping (``Metric.sequential``)."""
    from editguard import statistics as stats

    record = get_metric(metric)
    if not record.sequential:
        raise ValueError(f"{ability}: metric {metric!r} cannot stop early: that needs one outcome in [0, 1] per example, averaged")
    direction = 1.0 if record.higher_is_better else -1.0
    differences = [direction * (e - b) for b, e in zip(base, edited, strict=True)]
    decided = stats.sequential_gate(
        differences, policy.tolerance, policy.alpha, chunk_size, stats.FailRule(policy.fail_rule), policy.fail_alpha
    )
    used = differences[: decided.n]
    return Verdict(
        ability, sum(base[: decided.n]) / decided.n, sum(edited[: decided.n]) / decided.n, policy.tolerance, decided.n,
        Outcome(decided.decision.value), decided.lower, decided.upper, sum(d < 0 for d in used), sum(d > 0 for d in used),
        decided.fail_p_value, math.inf, None, sequential=True, policy=policy, higher_is_better=record.higher_is_better,
    )  # fmt: skip


def _allowing(verdict: Verdict) -> float:
    """The tolerance that would let this drop pass: a fraction below 1 for a score, any size for a log-perplexity."""
    needed = -verdict.lower + 0.005
    return needed if not verdict.higher_is_better else min(0.99, needed)


# --- no verdict without signal -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Signal:
    """Whether the base model's score stands clearly more than the tolerance above chance
    (``stats.above_level_p_value`` at chance + tolerance): only then can a drop of the tolerance's size happen at all
    (a reasoning score of 0.020 with chance 0 and tolerance 0.05 could not drop by 0.05, so it could never FAIL)."""

    ability: str
    metric: str
    score: float
    n: int
    chance: float
    p_value: float
    alpha: float
    tolerance: float = 0.0

    @property
    def present(self) -> bool:
        return self.p_value < self.alpha

    def message(self, dataset: str = "") -> str:
        """One sentence: what was measured, the test, and what would give the ability signal."""
        test = "exact binomial test" if get_metric(self.metric).kind.value == "binary" else "one-sided test"
        named = f" ({dataset})" if dataset else ""
        level = self.chance + self.tolerance
        return (
            f"{self.ability}{named}: no signal: the base model's {self.metric} {self.score:.3f} on {self.n} examples is not "
            f"clearly more than the tolerance {self.tolerance:g} above chance {self.chance:.3f} ({test} of H0 score <= "
            f"{level:.3f}: p = {self.p_value:.2g}, not below {self.alpha:g}), so a drop of the tolerance's size cannot be "
            f"told from guessing and the gate neither passes nor fails it; a larger or better model, more examples, or "
            f"data this model can do (--editguard-data {self.ability}=FILE) gives it signal"
        )


def signal(ability: str, base: Mapping[str, Any], chance: float, policy: Policy, *, metric: str) -> Signal:
    """Is the baseline (example id -> outcome) clearly more than ``policy.tolerance`` above chance?  One-sided test at
    ``policy.alpha`` (``Signal``)."""
    from editguard import statistics as stats

    record = get_metric(metric)
    outcomes = [base[i] for i in sorted(base)]
    p_value = stats.above_level_p_value(record, outcomes, chance + policy.tolerance)
    return Signal(ability, metric, record.aggregate(outcomes), len(outcomes), chance, p_value, policy.alpha, policy.tolerance)


# --- Holm over abilities ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class GatedVerdict:
    """What Holm's correction needs to know of one ability's verdict."""

    outcome: Outcome
    p_value: float  # H0: no drop beyond the tolerance (the FAIL test's p-value)
    difference: float | None  # the change in the better direction (negative: worse); None when not known
    tolerance: float
    sequential: bool = False  # decided by early stopping

    @classmethod
    def of(cls, verdict: Verdict) -> GatedVerdict:
        return cls(verdict.outcome, verdict.p_value, verdict.difference, verdict.tolerance, verdict.sequential)


@dataclass(frozen=True)
class HolmDecision:
    """An ability's outcome after Holm's correction over all gated abilities, and its adjusted p-value."""

    outcome: Outcome
    adjusted_p_value: float


def _holm_outcome(gated: GatedVerdict, adjusted_p_value: float, alpha: float, fail_rule: str) -> Outcome:
    if gated.outcome is not Outcome.INCONCLUSIVE or gated.sequential or adjusted_p_value > alpha:
        return gated.outcome
    if fail_rule == "significant" and (gated.difference is None or gated.difference >= -gated.tolerance):
        return gated.outcome  # the significant rule also needs the point drop beyond the tolerance
    return Outcome.FAIL


def holm_correct(gated: Mapping[str, GatedVerdict], alpha: float, fail_rule: str = "margin") -> dict[str, HolmDecision]:
    """Holm's step-down over the abilities' FAIL p-values: an INCONCLUSIVE ability that Holm rejects becomes a FAIL.

    Each ability already FAILed at ``alpha / k`` on its own (Holm's first step); this adds the later steps.  PASS
    and FAIL stand, and so does a verdict reached by early stopping, whose anytime-valid p-value belongs to its own
    stopping rule.  With ``fail_rule="significant"`` a FAIL also needs the point drop beyond the tolerance.
    """
    from editguard import statistics as stats

    if fail_rule not in FAIL_RULES:
        raise ValueError(f"fail_rule must be one of {', '.join(FAIL_RULES)}, got {fail_rule!r}")
    adjusted = stats.holm({name: verdict.p_value for name, verdict in gated.items()})
    return {
        name: HolmDecision(_holm_outcome(verdict, adjusted[name], alpha, fail_rule), adjusted[name])
        for name, verdict in gated.items()
    }


# What made a FAIL, by the fail rule that decided it (--editguard-fail-rule), ending before the tolerance.
_FAILED_BY = {
    "margin": "the whole interval lies below the tolerance of",
    "significant": "the drop is significant and larger than the tolerance of",
}


def failure_message(verdict: Verdict, *, dataset: str, baseline_file: str) -> str:
    """What a person reads when an ability regressed or could not be cleared: the numbers, then the remedy."""
    direction = "" if verdict.higher_is_better else " (lower is better: a rise counts as a drop)"
    numbers = (
        f"edited {verdict.observed:.3f} vs baseline {verdict.baseline:.3f} on the same {verdict.n} examples "
        f"({baseline_file}): difference {verdict.difference:+.3f}{direction}, interval [{verdict.lower:+.3f}, {verdict.upper:+.3f}], "
        f"{verdict.negative_flips} examples got worse, {verdict.positive_flips} better"
    )
    if verdict.outcome is Outcome.FAIL:
        return (
            f"{verdict.ability} ({dataset}) regressed after the edit: {numbers}; {_FAILED_BY[verdict.policy.fail_rule if verdict.policy else 'margin']} "
            f"-{verdict.tolerance:.3f} (p={verdict.p_value:.2g}). Do not ship this edit as it is; if the "
            f"drop is acceptable, allow it with --editguard-tolerance {verdict.ability}={_allowing(verdict):.2f}."
        )
    needed = f"about {verdict.examples_needed} examples" if verdict.examples_needed else "more examples"
    return (
        f"{verdict.ability} ({dataset}) is inconclusive: {numbers}; the interval straddles the tolerance of "
        f"-{verdict.tolerance:.3f}, so these examples can neither clear nor condemn the edit. Gate on {needed} "
        f"(--editguard-limit, or a larger --editguard-data set), widen --editguard-tolerance, or let inconclusive "
        f"abilities pass with a warning (--editguard-inconclusive warn)."
    )
