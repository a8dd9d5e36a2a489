"""Simulations of the gate's statistics at scale: error rates, coverage, power and early stopping.

    .venv/bin/python benchmarks/stats_simulation.py             # about two minutes on one core
    .venv/bin/python benchmarks/stats_simulation.py --scale 0.2 # a quick look

The same simulations as tests/test_stats.py, with more repetitions, printed as markdown tables.  Binary gates
are simulated through ``paired_score_statistic`` (vectorised), which is exactly what ``decide_ability`` turns
into verdicts for binary abilities (the tests check that verdicts and p-values agree); bootstrap, worst-case and
sequential results go through the public functions themselves.  Seeded: the same numbers every run.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy import stats as scipy_stats

from editguard import statistics as stats
from editguard.statistics.metrics import get_metric
from editguard.statistics import Decision, PairedOutcomes
from editguard.statistics.score_test import _constrained_flip_rates

ALPHA = 0.05
TOLERANCE = 0.05
HOLM_LEVEL = ALPHA / 8  # the first Holm step for eight abilities: the level an ability meets when none else fails


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(value: Any) -> str:
        return f"{value:.3f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)


def flip_counts(
    rng: np.random.Generator, reps: int, n: int, base_rate: float, negative: float, positive: float
) -> tuple[np.ndarray, np.ndarray]:
    """(positive flips, negative flips) for ``reps`` simulated abilities of n examples each."""
    probabilities = [base_rate - negative, negative, positive, 1 - base_rate - positive]
    counts = rng.multinomial(n, probabilities, size=reps)
    return counts[..., 2], counts[..., 1]


def z(alpha: float) -> float:
    return float(scipy_stats.norm.ppf(1 - alpha))


def passes(positive: np.ndarray, negative: np.ndarray, n: int) -> np.ndarray:
    return stats.paired_score_statistic(positive, negative, n, -TOLERANCE, -0.5) >= z(ALPHA)


def fails_margin(positive: np.ndarray, negative: np.ndarray, n: int, level: float = ALPHA) -> np.ndarray:
    return stats.paired_score_statistic(positive, negative, n, -TOLERANCE, 0.5) <= -z(level)


def fails_significant(positive: np.ndarray, negative: np.ndarray, n: int, level: float = ALPHA) -> np.ndarray:
    significant = stats.paired_score_statistic(positive, negative, n, 0.0, 0.5) <= -z(level)
    return significant & ((positive - negative) / n < -TOLERANCE)


def holm_any_rejection(p_values: np.ndarray, alpha: float) -> np.ndarray:
    """Whether Holm's step-down rejects anything in each row of (reps, k) p-values: iff the smallest p <= alpha/k."""
    return p_values.min(axis=-1) <= alpha / p_values.shape[-1]


BINARY_SETTINGS = [(n, flip) for n in (100, 200, 400) for flip in (0.0, 0.02, 0.05, 0.10)]


def error_rates(rng: np.random.Generator, reps: int) -> str:
    rows = []
    for n, flip in BINARY_SETTINGS:
        null = flip_counts(rng, reps, n, 0.7, flip, flip)
        margin = flip_counts(rng, reps, n, 0.7, flip + TOLERANCE, flip)
        family = flip_counts(rng, reps * 8, n, 0.7, flip + TOLERANCE, flip)
        family_p = scipy_stats.norm.cdf(stats.paired_score_statistic(*family, n, -TOLERANCE, 0.5)).reshape(reps, 8)
        rows.append(
            (
                n,
                f"{flip:.0%}",
                fails_margin(*null, n).mean(),
                fails_significant(*null, n).mean(),
                fails_margin(*margin, n).mean(),
                passes(*margin, n).mean(),
                holm_any_rejection(family_p, ALPHA).mean(),
                (family_p <= ALPHA).any(axis=1).mean(),
            )
        )
    headers = [
        "n",
        "flips each way",
        "false FAIL, no drop (margin)",
        "false FAIL, no drop (significant)",
        "false FAIL, drop = tol",
        "false PASS, drop = tol",
        "any FAIL of 8, drop = tol each (Holm)",
        "same, unadjusted",
    ]
    return table(headers, rows)


def tango_uncorrected(positive: np.ndarray, negative: np.ndarray, n: int, difference: float) -> np.ndarray:
    """Tango's Z without the continuity and skewness corrections, for comparison."""
    p_positive, p_negative = _constrained_flip_rates(
        *(np.asarray(value, dtype=float) for value in (positive, negative, n, difference))
    )
    variance = n * np.maximum(p_positive + p_negative - difference**2, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.nan_to_num((positive - negative - n * difference) / np.sqrt(variance), nan=0.0)


COVERAGE_SETTINGS = [
    (n, negative, positive)
    for n in (30, 100, 400)
    for negative, positive in [(0.0, 0.0), (0.005, 0.0), (0.02, 0.0), (0.03, 0.005), (0.06, 0.01), (0.15, 0.05)]
]


def binary_coverage(rng: np.random.Generator, reps: int) -> str:
    rows = []
    for n, negative, positive in COVERAGE_SETTINGS:
        counts = flip_counts(rng, reps, n, 0.7, negative, positive)
        truth = positive - negative
        row: list[Any] = [n, f"{negative:.1%} / {positive:.1%}"]
        for alpha in (ALPHA, HOLM_LEVEL):
            lower = (stats.paired_score_statistic(*counts, n, truth, -0.5) < z(alpha)).mean()
            upper = (stats.paired_score_statistic(*counts, n, truth, 0.5) > -z(alpha)).mean()
            row += [lower, upper]
        uncorrected = tango_uncorrected(*counts, n, truth)
        row += [(uncorrected < z(ALPHA)).mean(), (uncorrected > -z(ALPHA)).mean()]
        rows.append(row)
    headers = [
        "n",
        "flips lost / gained",
        "lower 95%",
        "upper 95%",
        "lower 99.375%",
        "upper 99.375%",
        "Tango uncorrected lower 95%",
        "Tango uncorrected upper 95%",
    ]
    return table(headers, rows)


def rouge_like(rng: np.random.Generator, n: int, changed: float, shift: float) -> tuple[Any, Any, float]:
    base = rng.beta(2.0, 3.0, n)
    a, b = (2.0 + shift, 3.0) if shift >= 0 else (2.0, 3.0 - shift)
    edited = np.where(rng.random(n) < changed, rng.beta(a, b, n), base)
    return base, edited, changed * (a / (a + b) - 0.4)


def entity_counts(rng: np.random.Generator, n: int, lose: float, gain: float) -> tuple[Any, Any, float]:
    gold = 1 + rng.poisson(1.5, n)
    found = rng.binomial(gold, 0.7)
    false_positives = rng.poisson(0.3, n)
    found_edited = found - rng.binomial(found, lose) + rng.binomial(gold - found, gain)
    base = np.column_stack([found, found + false_positives, gold])
    edited = np.column_stack([found_edited, found_edited + false_positives, gold])

    def f1(true_positives: float) -> float:
        return 2 * true_positives / (true_positives + 0.3 + 2.5)

    return base, edited, f1(2.5 * (0.7 * (1 - lose) + 0.3 * gain)) - f1(2.5 * 0.7)


BOOTSTRAP_SETTINGS: list[tuple[str, int, float, float]] = [
    ("ROUGE, 3% changed (about 6), drops", 200, 0.03, -3.0),
    ("ROUGE, 10% changed, drops", 200, 0.10, -3.0),
    ("ROUGE, 20% changed", 300, 0.20, -2.0),
    ("ROUGE, all changed", 200, 1.0, -0.5),
    ("ROUGE, all changed", 400, 1.0, -0.5),
    ("entity F1, 10% of entities lost", 150, 0.10, 0.0),
    ("entity F1, 5% lost, 5% found", 300, 0.05, 0.05),
]


def bootstrap_coverage(rng: np.random.Generator, reps: int) -> str:
    rows = []
    for label, n, first, second in BOOTSTRAP_SETTINGS:
        counts = label.startswith("entity")
        metric = get_metric("entity_f1" if counts else "rouge")
        covered = np.zeros(4)
        for rep in range(reps):
            base, edited, truth = (entity_counts if counts else rouge_like)(rng, n, first, second)
            distribution = stats.bootstrap_distribution(
                base, edited, stats.MICRO_F1 if counts else stats.MEAN, resamples=1000, seed=rep
            )
            gate = stats.decide_ability("ability", PairedOutcomes(metric, base, edited, TOLERANCE))
            covered += [
                distribution.lower(ALPHA) <= truth,
                distribution.upper(ALPHA) >= truth,
                gate.lower <= truth,
                gate.upper >= truth,
            ]
        rows.append((label, n, *(covered / reps)))
    headers = ["setting", "n", "BCa lower 95%", "BCa upper 95%", "gate lower 95%", "gate upper 95% (alpha/1)"]
    return table(headers, rows)


POWER_SETTINGS = [(0.7, 0.10, 0.0), (0.7, 0.12, 0.02), (0.7, 0.15, 0.05), (0.3, 0.10, 0.0), (0.9, 0.12, 0.02)]


def power(rng: np.random.Generator, reps: int) -> str:
    rows = []
    for base_rate, negative, positive in POWER_SETTINGS:
        counts = flip_counts(rng, reps, 400, base_rate, negative, positive)
        rows.append(
            (
                base_rate,
                f"{negative:.0%} / {positive:.0%}",
                fails_margin(*counts, 400).mean(),
                fails_margin(*counts, 400, HOLM_LEVEL).mean(),
                fails_significant(*counts, 400).mean(),
                fails_significant(*counts, 400, HOLM_LEVEL).mean(),
            )
        )
    headers = [
        "base accuracy",
        "flips lost / gained",
        "FAIL, margin, 1 ability",
        "FAIL, margin, 8 abilities (alpha/8)",
        "FAIL, significant, 1 ability",
        "FAIL, significant, 8 abilities (alpha/8)",
    ]
    return table(headers, rows)


SEQUENTIAL_SETTINGS = [
    ("benign", 0.02, 0.02),
    ("benign, no flips", 0.0, 0.0),
    ("benign, 5% flips", 0.05, 0.05),
    ("destructive (drop 0.3)", 0.32, 0.02),
    ("drop 0.10", 0.12, 0.02),
    ("drop = tolerance", 0.07, 0.02),
]


def early_stopping(rng: np.random.Generator, runs: int) -> str:
    fixed_unpaired = stats.unpaired_sample_size(0.7, 0.7, TOLERANCE, ALPHA, 0.8)
    rows = []
    for label, negative, positive in SEQUENTIAL_SETTINGS:
        for chunk in (25, 50):
            u = rng.random((runs, fixed_unpaired))
            streams = np.where(u < negative, -1.0, np.where(u < negative + positive, 1.0, 0.0))
            results = [stats.sequential_gate(stream, TOLERANCE, ALPHA, chunk_size=chunk) for stream in streams]
            used = np.array([result.n for result in results])
            decisions = [result.decision for result in results]
            beyond_margin = positive - negative <= -TOLERANCE  # no fixed design can pass it
            fixed_paired = "-" if beyond_margin else stats.paired_sample_size(negative + positive, 0.0, TOLERANCE)
            rows.append(
                (
                    label,
                    chunk,
                    f"{used.mean():.0f}",
                    f"{np.median(used):.0f}",
                    f"{np.percentile(used, 90):.0f}",
                    f"{used.mean() / fixed_unpaired:.1%}",
                    fixed_paired,
                    decisions.count(Decision.PASS) / runs,
                    decisions.count(Decision.FAIL) / runs,
                    decisions.count(Decision.INCONCLUSIVE) / runs,
                )
            )
    headers = [
        "edit",
        "chunk",
        "mean n",
        "median n",
        "90th pct n",
        f"mean / unpaired fixed n ({fixed_unpaired})",
        "paired fixed n (flip rate known)",
        "PASS",
        "FAIL",
        "INCONCLUSIVE",
    ]
    return table(headers, rows)


SECTIONS: list[tuple[str, Callable[[np.random.Generator, int], str], int, str]] = [
    (
        "False verdicts of the fixed-size gate (binary, base accuracy 0.7, tolerance 0.05, alpha 0.05)",
        error_rates,
        20000,
        (
            "Repetitions per row: {reps}.  'drop = tol' puts the true drop exactly on the margin, the hardest case "
            "for both verdicts.  The Holm column is the familywise rate over 8 abilities each on its margin."
        ),
    ),
    (
        "Coverage of the binary bounds (one-sided; base accuracy 0.7)",
        binary_coverage,
        20000,
        (
            "Repetitions per row: {reps} (standard error about 0.0015 at 95%, 0.0006 at 99.375%).  99.375% is the "
            "first Holm level for 8 abilities."
        ),
    ),
    (
        "Coverage of the bootstrap and of the gate's bounds for ROUGE and entity F1 (one-sided 95%)",
        bootstrap_coverage,
        1000,
        (
            "Repetitions per row: {reps}, 1000 resamples each.  The gate uses BCa, except for ROUGE with fewer than "
            f"{stats.MIN_CHANGED_FOR_BOOTSTRAP} changed examples, where it uses worst-case bounds."
        ),
    ),
    (
        "Power: true drop 0.10 = twice the tolerance, n = 400",
        power,
        20000,
        "Repetitions per row: {reps}.  With 8 abilities, alpha/8 is the worst case of Holm's first step.",
    ),
    (
        "Early stopping (sequential gate, tolerance 0.05, alpha 0.05; streams end at the unpaired fixed n)",
        early_stopping,
        2000,
        (
            "Runs per row: {reps}.  Unpaired fixed n: examples per group for a two-proportion non-inferiority test "
            "(one-sided alpha 0.05, power 0.8, base accuracy 0.7, no true change).  Paired fixed n: the same test "
            "on paired data when the flip rates are known in advance."
        ),
    ),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every repetition count by this")
    parser.add_argument("--seed", type=int, default=2024)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    for title, simulate, reps, note in SECTIONS:
        reps = max(10, int(reps * args.scale))
        started = time.perf_counter()
        body = simulate(rng, reps)
        print(f"### {title}\n\n{note.format(reps=reps)}\n\n{body}\n\n({time.perf_counter() - started:.0f} s)\n")


if __name__ == "__main__":
    main()
