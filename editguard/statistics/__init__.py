"""The statistics of the paired non-inferiority gate: did the edit make the model worse than a margin allows?

This package owns the numbers behind a verdict and nothing else: no pytest, no model, and of editguard only the
metric records (``editguard.statistics.metrics``), whose ``Analysis`` names the method below that decides each metric.
Its inputs are per-example outcomes of the base and the edited model on the same examples (aligned sequences),
and every quantity is about the paired difference ``edited - base``, where higher is better and a drop is bad
(for a metric where lower is better, ``decide_ability`` takes ``base - edited``, so a drop is still bad).

The questions and the methods that answer them:

- Binary outcomes (accuracy, exact match): Tango's score test for the paired difference (Tango 1998; its
  non-inferiority use is Nam 1997) and the bounds that invert it, with a continuity and a skewness correction
  (after Gart & Nam 1990 and Laud 2017) so that one-sided bounds keep their level with few discordant pairs.
  Uncorrected, Tango's one-sided 95% bounds covered only 91% in some rare-flip settings; the Wald interval
  collapses to zero width when there are no flips at all.  ``mcnemar_exact`` answers "did anything change".
- Other outcomes (ROUGE means, entity micro F1 from per-example counts, any other aggregate): a paired bootstrap
  that resamples example indices once for both models, with BCa intervals (Efron 1987) by default.  Bootstrap
  bounds are overconfident when only a few examples changed (and zero-width when none did), so for means in
  [0, 1] the gate falls back to worst-case bounds below ``MIN_CHANGED_FOR_BOOTSTRAP`` changed examples.
- The verdict (``decide``): PASS when the lower bound of ``edited - base`` is above ``-tolerance``; FAIL when the
  upper bound is below it (or, with ``FailRule.SIGNIFICANT``, when the drop is significant and the point drop
  exceeds the tolerance); INCONCLUSIVE otherwise.  ``alpha`` is always the one-sided error rate of each kind of
  wrong verdict: a bound "at level alpha" misses the true difference on its side with probability ``alpha``.
- Several abilities: each is decided alone (``decide_ability``, as an xdist worker must) with its FAIL bound at
  ``alpha / k`` (Bonferroni, Holm's first step); ``holm`` gives the adjusted p-values with which
  ``editguard.statistics.verdict.holm_correct`` completes Holm's step-down (Holm 1979), so the chance that any ability
  without a real drop beyond its margin fails is at most ``alpha``.  PASS verdicts need no correction: the gate
  ships only when every ability passes, an intersection-union test (Berger 1982), so a damaged ability lets the
  whole gate pass with probability at most ``alpha``.
- Early stopping (``sequential_gate``): anytime-valid tests by betting on the differences ``d_i`` in [-1, 1]
  with predictable plug-in bets (Waudby-Smith & Ramdas 2024), valid however often one looks.  The examples
  must arrive in random order (shuffle them once, with a seed, before streaming).

Modules, each importing only those above it:

- ``common``: outcome types, ``Decision``, ``FailRule``, ``Interval`` and the checks of inputs and levels.
- ``score_test``: 0/1 outcomes: flips, ``mcnemar_exact``, the corrected score statistic and ``PairedScore``.
- ``aggregates``: ``SumAggregate`` (``MEAN``, ``MICRO_F1``) and ``vectorised``.
- ``bootstrap``: the paired BCa bootstrap (``bootstrap_distribution``, ``paired_bootstrap``).
- ``evidence``: the ``Evidence`` protocol, ``PairedOutcomes``, ``WorstCaseEvidence`` and the method per ``Analysis``.
- ``planning``: minimum detectable effect, examples needed, sample sizes.
- ``decision``: ``decide``, the fail rules, the detectable drop and ``decide_ability``.
- ``multiplicity``: Holm's adjusted p-values.
- ``sequential``: anytime-valid p-values, confidence sequences and ``sequential_gate``.
- ``chance``: ``above_level_p_value``, whether a baseline is clearly above chance.

References:
    Berger RL (1982). Multiparameter hypothesis testing and acceptance sampling. Technometrics 24:295-300.
    Chow SC, Shao J, Wang H (2008). Sample Size Calculations in Clinical Research, 2nd ed., section 4.2.
    Efron B (1987). Better bootstrap confidence intervals. JASA 82:171-185.
    Gart JJ, Nam J (1990). Approximate interval estimation of the difference in binomial parameters: correction
        for skewness and extension to multiple tables. Biometrics 46:637-643.
    Holm S (1979). A simple sequentially rejective multiple test procedure. Scand J Statist 6:65-70.
    Laud PJ (2017). Equal-tailed confidence intervals for comparison of rates. Pharmaceutical Statistics 16:334-348.
    Nam J (1997). Establishing equivalence of two treatments and sample size requirements in matched-pairs
        design. Biometrics 53:1422-1430.
    Tango T (1998). Equivalence test and confidence interval for the difference in proportions for the
        paired-sample design. Statistics in Medicine 17:891-908.
    Waudby-Smith I, Ramdas A (2024). Estimating means of bounded random variables by betting. JRSS-B 86:1-27
        (arXiv:2010.09686).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Each public name and the module of this package that holds it: imported when first asked for, so that importing
# ``editguard.statistics.metrics`` or ``.verdict`` (which the plugin does at start-up) does not import numpy.
_HOMES = {
    "AbilityDecision": "decision",
    "BootstrapDistribution": "bootstrap",
    "BootstrapMethod": "bootstrap",
    "Decision": "common",
    "Evidence": "evidence",
    "FailRule": "common",
    "FloatArray": "common",
    "IntArray": "common",
    "Interval": "common",
    "MEAN": "aggregates",
    "MICRO_F1": "aggregates",
    "MIN_CHANGED_FOR_BOOTSTRAP": "evidence",
    "Outcomes": "common",
    "PairedOutcomes": "evidence",
    "PairedScore": "score_test",
    "PairedSummary": "score_test",
    "SequentialDecision": "sequential",
    "SumAggregate": "aggregates",
    "WorstCaseEvidence": "evidence",
    "above_level_p_value": "chance",
    "anytime_p_values": "sequential",
    "bootstrap_distribution": "bootstrap",
    "confidence_sequence": "sequential",
    "decide": "decision",
    "decide_ability": "decision",
    "examples_needed": "planning",
    "fail_threshold": "decision",
    "holm": "multiplicity",
    "mcnemar_exact": "score_test",
    "minimum_detectable_effect": "planning",
    "non_inferiority_p_value": "score_test",
    "paired_bootstrap": "bootstrap",
    "paired_difference_interval": "score_test",
    "paired_sample_size": "planning",
    "paired_score_statistic": "score_test",
    "paired_summary": "score_test",
    "sequential_gate": "sequential",
    "unpaired_sample_size": "planning",
    "vectorised": "aggregates",
}

if TYPE_CHECKING:
    from editguard.statistics.aggregates import MEAN, MICRO_F1, SumAggregate, vectorised
    from editguard.statistics.bootstrap import (
        BootstrapDistribution,
        BootstrapMethod,
        bootstrap_distribution,
        paired_bootstrap,
    )
    from editguard.statistics.chance import above_level_p_value
    from editguard.statistics.common import Decision, FailRule, FloatArray, IntArray, Interval, Outcomes
    from editguard.statistics.decision import AbilityDecision, decide, decide_ability, fail_threshold
    from editguard.statistics.evidence import Evidence, MIN_CHANGED_FOR_BOOTSTRAP, PairedOutcomes, WorstCaseEvidence
    from editguard.statistics.multiplicity import holm
    from editguard.statistics.planning import (
        examples_needed,
        minimum_detectable_effect,
        paired_sample_size,
        unpaired_sample_size,
    )
    from editguard.statistics.score_test import (
        PairedScore,
        PairedSummary,
        mcnemar_exact,
        non_inferiority_p_value,
        paired_difference_interval,
        paired_score_statistic,
        paired_summary,
    )
    from editguard.statistics.sequential import SequentialDecision, anytime_p_values, confidence_sequence, sequential_gate


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
    globals()[name] = value  # kept: and ``holm`` the function, not the submodule its import set here
    return value


__all__ = [
    "AbilityDecision",
    "BootstrapDistribution",
    "BootstrapMethod",
    "Decision",
    "Evidence",
    "FailRule",
    "FloatArray",
    "IntArray",
    "Interval",
    "MEAN",
    "MICRO_F1",
    "MIN_CHANGED_FOR_BOOTSTRAP",
    "Outcomes",
    "PairedOutcomes",
    "PairedScore",
    "PairedSummary",
    "SequentialDecision",
    "SumAggregate",
    "WorstCaseEvidence",
    "above_level_p_value",
    "anytime_p_values",
    "bootstrap_distribution",
    "confidence_sequence",
    "decide",
    "decide_ability",
    "examples_needed",
    "fail_threshold",
    "holm",
    "mcnemar_exact",
    "minimum_detectable_effect",
    "non_inferiority_p_value",
    "paired_bootstrap",
    "paired_difference_interval",
    "paired_sample_size",
    "paired_score_statistic",
    "paired_summary",
    "sequential_gate",
    "unpaired_sample_size",
    "vectorised",
]
