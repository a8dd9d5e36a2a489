"""The verdicts stage: the paired verdict of each edited model against the stored baseline.

It judges from values handed down (``Judged``'s inputs, ``GateInputs``: the ability's task, its sample, its
baseline read and checked once, its policy), never going back to the stages that made them.  For each ability:
the verdict of every gated variant (the worst one counts), decided on the run's whole sample or, with early
stopping, a chunk at a time in a seeded order; and, with ``--editguard-edit-counts``, the verdict after each count
of edits.  Holm's correction over abilities is applied on the controller, once every ability has its verdict
(``verdict.holm_correct`` through ``reports.run.with_holm``).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from editguard.baselines import Baseline
from editguard.progress import reporter
from editguard.settings import Settings
from editguard.stages.baselines import Baselines
from editguard.stages.edits import Edits, EditVariant
from editguard.stages.examples import Examples, sample_order
from editguard.stages.scoring import Scoring
from editguard.tasks import Example, Task, canary_names, task_names
from editguard.statistics.verdict import Outcome, Policy, Signal, Verdict, compare, compare_sequential, signal

_RANK = {Outcome.FAIL: 0, Outcome.INCONCLUSIVE: 1, Outcome.PASS: 2}
WORSENED_SHOWN = 10  # examples that got worse, kept per ability for the reports
SHOWN_CHARS = 600  # the most characters of a prompt or an expected answer kept for the reports


@dataclass(frozen=True)
class GateInputs:
    """What one ability is judged from: its task, the run's sample of it, its baseline (read and checked once; on this
    stack), and its policy (tolerance, error rates, the family it is corrected in)."""

    task: Task
    examples: tuple[Example, ...]
    baseline: Baseline
    policy: Policy


@dataclass(frozen=True)
class Judged:
    """An edited model's verdict on one ability."""

    verdict: Verdict
    variant: EditVariant


class Verdicts:
    """Verdicts of the run's edited models, from the examples, scores and baselines stages."""

    def __init__(self, settings: Settings, examples: Examples, scoring: Scoring, baselines: Baselines, edits: Edits):
        self.settings = settings
        self.examples = examples
        self.scoring = scoring
        self.baselines = baselines
        self.edits = edits

    def policy(self, ability: str) -> Policy:
        """The ability's tolerance and error rates; the general abilities gated together share the family (Bonferroni
        per test, Holm on the controller), a canary is a family of its own."""
        settings = self.settings
        abilities = [name for name in settings.abilities or task_names() if name in task_names()]
        family = 1 if ability in canary_names() else max(1, len(abilities))
        return Policy(settings.tolerance_for(ability), settings.alpha, family, settings.fail_rule, settings.inconclusive, settings.no_signal)

    def inputs(self, ability: str) -> GateInputs:
        """The values the ability is judged from; the baseline is read and checked here (a missing or stale one is
        told before any edit is computed)."""
        task = self.examples.task(ability)
        baseline = self.baselines.checked(ability)
        return GateInputs(task, tuple(self.examples.sample(task)), baseline, self.policy(ability))

    def signal(self, inputs: GateInputs) -> Signal | None:
        """Whether the baseline stands clearly above chance + tolerance (None: the ability has no chance level)."""
        task = inputs.task
        if task.chance is None:
            return None
        return signal(task.name, inputs.baseline.outcomes, task.chance, inputs.policy, metric=task.metric)

    def verdict(self, inputs: GateInputs, delta: Any) -> Verdict:
        """The paired verdict of base + ``delta`` against the baseline's outcomes."""
        task = inputs.task
        if self.settings.early_stop and _early_stoppable(task.metric):
            return self._sequential(inputs, delta)
        observed = self.scoring.score(task, inputs.examples, delta)
        return compare(task.name, inputs.baseline.outcomes, observed.outcomes, inputs.policy, metric=task.metric)

    def worst(self, inputs: GateInputs) -> Judged:
        """The verdict of every gated edited model (several in single mode); the worst one counts."""
        judged = [Judged(self.verdict(inputs, variant.delta), variant) for variant in self.edits.variants]
        return min(judged, key=lambda item: _RANK[item.verdict.outcome])

    def curve(self, inputs: GateInputs) -> dict[str, list[list[Any]]]:
        """Per series and edit count: [count, edited score, verdict]."""
        curve: dict[str, list[list[Any]]] = {}
        for name, deltas in self.edits.curve_series.items():
            verdicts = [(count, self._curve_point(inputs, name, count, delta)) for count, delta in deltas.items()]
            curve[name] = [[count, round(v.observed, 6), v.outcome.value] for count, v in verdicts]
        return curve

    def _curve_point(self, inputs: GateInputs, series: str, count: int, delta: Any) -> Verdict:
        started = time.perf_counter()
        verdict = self.verdict(inputs, delta)
        said = f"edit-count curve ({series}): {inputs.task.name} after {count} edit{'s' if count > 1 else ''}: {verdict.outcome.value.upper()}"
        reporter().done(said, started)
        return verdict

    def worsened(self, inputs: GateInputs, delta: Any, shown: int = WORSENED_SHOWN) -> list[dict[str, Any]]:
        """The examples base + ``delta`` answered worse than the baseline did (the largest drop first, at most
        ``shown``), for the reports: id, prompt, expected answer, and each model's score on the example.  The
        evaluator keeps no model output, so a report shows the outcomes, not the answers."""
        from editguard.statistics.metrics import get_metric

        task = inputs.task
        metric = get_metric(task.metric)
        sign = 1.0 if metric.higher_is_better else -1.0
        base = inputs.baseline.outcomes
        examples = [example for example in inputs.examples if example.id in base]
        edited = self.scoring.known(task, examples, delta)
        scores = {i: (metric.aggregate([base[i]]), metric.aggregate([result.outcome])) for i, result in edited.items()}
        drops = {i: sign * (before - after) for i, (before, after) in scores.items() if sign * (before - after) > 1e-12}
        worst = sorted(drops, key=lambda i: (-drops[i], i))[:shown]
        by_id = {example.id: example for example in examples}
        return [_worsened(by_id[i], *scores[i], parsed=edited[i].parsed) for i in worst]

    def _sequential(self, inputs: GateInputs, delta: Any) -> Verdict:
        """Score the edited model a chunk at a time, in a seeded random order, until the verdict is settled."""
        task, baseline, policy = inputs.task, inputs.baseline, inputs.policy
        ordered = sorted(inputs.examples, key=sample_order)
        chunk = self.settings.chunk
        verdict = None
        for end in range(min(chunk, len(ordered)), len(ordered) + chunk, chunk):
            used = ordered[: min(end, len(ordered))]
            results = self.scoring.results(task, used, delta)
            base = [float(baseline.outcomes[e.id]) for e in used]  # type: ignore[arg-type]
            edited = [float(results[e.id].outcome) for e in used]  # type: ignore[arg-type]
            verdict = compare_sequential(task.name, base, edited, policy, chunk, metric=task.metric)
            if verdict.outcome is not Outcome.INCONCLUSIVE or end >= len(ordered):
                break
        assert verdict is not None
        settled = "settled" if verdict.outcome is not Outcome.INCONCLUSIVE else "not settled"
        reporter().line(f"early stopping: {task.name} {settled} ({verdict.outcome.value.upper()}) after {len(used)} of {len(ordered)} examples")
        return verdict


def _worsened(example: Example, base: float, edited: float, *, parsed: bool) -> dict[str, Any]:
    """One example that got worse, JSON-able (it travels from an xdist worker in the report row)."""
    expected = example.answer
    return {
        "id": example.id, "prompt": _cut(example.prompt), "expected": _cut(expected if isinstance(expected, str) else json.dumps(expected, default=str)),
        "base": round(base, 4), "edited": round(edited, 4), "parsed": parsed,
    }  # fmt: skip


def _cut(text: str, limit: int = SHOWN_CHARS) -> str:
    """The end of ``text`` (a few-shot prompt asks its question last)."""
    return text if len(text) <= limit else f"({len(text):,} characters) ..." + text[-limit:]


def _early_stoppable(metric: str) -> bool:
    """Early stopping's confidence sequence needs one outcome in [0, 1] per example, averaged."""
    from editguard.statistics.metrics import get_metric

    return bool(get_metric(metric).sequential)
