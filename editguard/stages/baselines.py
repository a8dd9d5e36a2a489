"""The baselines stage: record the base model's scores, and read them back checked against this run.

A stored baseline is usable only if it was recorded under the same task version, data and prompt, and
the same base weights in the same dtype; otherwise it is stale and the gate could not check the ability (``GateProblem``).

A baseline recorded on another stack (another transformers or torch: ``stack.output_versions``) is still the same
model's, but the two stacks' kernels and defaults may score an example differently, and such a difference would
count as the edit's.  So the gate re-scores the base model on this stack (once, through the output cache) and pairs
the edited model with those outcomes; ``drift`` says how many of them differ from the stored ones, and every report
says so.  Re-recording the baselines on this stack (``--editguard-update-baselines``) makes the re-score unnecessary.
Refusing such baselines as stale would make every user re-record on each upgrade, and going on with them would let
a kernel's change pass as the edit's; re-scoring costs one scoring of the base per stack and keeps the pairing exact.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from editguard.backends import backend_kind
from editguard.baselines import Baseline, BaselineError, BaselineStore, staleness
from editguard.errors import GateProblem
from editguard.fingerprint import library_versions
from editguard.stack import OUTPUT_PACKAGES, output_versions
from editguard.settings import Settings
from editguard.stages.examples import Examples
from editguard.stages.scoring import Scoring


@dataclass(frozen=True)
class StackDrift:
    """A baseline recorded on another stack, and how many of its outcomes the base re-scored here changed."""

    recorded: dict[str, str]  # the baseline's transformers and torch
    now: dict[str, str]  # this run's
    changed: int  # outcomes of the run's sample that differ from the stored ones
    n: int

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class Baselines:
    """The run's baselines folder, for the base model that ``base`` loads."""

    def __init__(self, settings: Settings, examples: Examples, scoring: Scoring, base: Callable[[], Any]):
        self.settings = settings
        self.examples = examples
        self.scoring = scoring
        self._base = base
        self._checked: dict[str, Baseline] = {}
        self._drift: dict[str, StackDrift] = {}

    @cached_property
    def store(self) -> BaselineStore:
        return BaselineStore(self.settings.baselines)

    def path(self, ability: str) -> Path:
        return self.store.path(self._base().name, ability, self.settings.protocol)

    def record(self, ability: str) -> tuple[Baseline, Path]:
        """Score the base model on the run's examples and write its baseline; returns it and its file."""
        task = self.examples.task(ability)
        score = self.scoring.score(task, self.examples.sample(task))
        base = self._base()
        baseline = Baseline(
            ability=ability,
            metric=score.metric,
            score=round(score.value, 6),
            n=score.n,
            outcomes=dict(score.outcomes),
            task_version=task.version,
            task_fingerprint=self.examples.fingerprint(task),
            model=base.name,
            model_fingerprint=base.fingerprint,
            versions=library_versions(),
            identity=base.identity.recorded() if base.identity is not None else {},
            protocol=task.protocol,
            data=self.examples.source(ability),
            dtype=base.dtype,
            backend=backend_kind(self.settings.backend).records_as,
            unparsed=score.unparsed,
            extras=dict(score.extras),
        )
        try:
            return baseline, self.store.write(baseline)
        except BaselineError as error:
            raise GateProblem(str(error)) from None

    def checked(self, ability: str) -> Baseline:
        """The stored baseline, checked against the current task, data, sample and base (GateProblem otherwise),
        read once a run; recorded on another stack, with the base's outcomes re-scored on this one (``drift``)."""
        if ability not in self._checked:
            self._checked[ability] = self._on_this_stack(self._validated(ability))
        return self._checked[ability]

    def drift(self, ability: str) -> StackDrift | None:
        """How the ability's baseline was re-scored on this stack (None: it was recorded on this one)."""
        self.checked(ability)
        return self._drift.get(ability)

    def _on_this_stack(self, baseline: Baseline) -> Baseline:
        now = output_versions()
        recorded = {package: str(baseline.versions.get(package, "-")) for package in OUTPUT_PACKAGES}
        if recorded == now or baseline.backend != "hf" or backend_kind(self.settings.backend).records_as != "hf":
            return baseline  # an engine's numerics are its own: its versions are not these
        task = self.examples.task(baseline.ability)
        score = self.scoring.score(task, self.examples.sample(task))
        changed = sum(baseline.outcomes.get(i) != outcome for i, outcome in score.outcomes.items())
        self._drift[baseline.ability] = StackDrift(recorded, now, changed, score.n)
        return dataclasses.replace(baseline, outcomes=dict(score.outcomes), score=round(score.value, 6), n=score.n)

    def _validated(self, ability: str) -> Baseline:
        task = self.examples.task(ability)
        fingerprint = self.examples.fingerprint(task)  # loads the data: a data problem is reported first
        baseline = self._read(ability)
        base = self._base()
        why = staleness(
            baseline, task_version=task.version, task_fingerprint=fingerprint, model_fingerprint=base.fingerprint, dtype=base.dtype,
            identity=base.identity,
        )
        if why:
            other_dtype = f", or run with --editguard-dtype {baseline.dtype}" if baseline.dtype != base.dtype else ""
            raise GateProblem(f"baseline {self.path(ability)} is stale: {why}; re-record it with --editguard-update-baselines{other_dtype}")
        missing = [example.id for example in self.examples.sample(task) if example.id not in baseline.outcomes]
        if missing:
            raise GateProblem(
                f"baseline {self.path(ability)} lacks example {missing[0]!r} (it was recorded with a smaller "
                f"--editguard-limit); re-record it with --editguard-update-baselines"
            )
        return baseline

    def _read(self, ability: str) -> Baseline:
        try:
            baseline = self.store.read(self._base().name, ability, self.settings.protocol)
        except BaselineError as error:
            raise GateProblem(str(error)) from None
        if baseline is None:
            raise GateProblem(
                f"no baseline for {ability} at {self.path(ability)}; record it by running the base model once with "
                f"--editguard-update-baselines, then commit {self.settings.baselines.name}/"
            )
        return baseline
