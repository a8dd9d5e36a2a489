"""The baselines stage: record the base model's scores, and read them back checked against this run.

A stored baseline is usable only if it was recorded under the same task version, data and prompt, and
the same base weights in the same dtype; otherwise it is stale and the gate could not check the ability (``GateProblem``).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Any

from editguard.baselines import Baseline, BaselineError, BaselineStore, backend_of, staleness
from editguard.errors import GateProblem
from editguard.fingerprint import library_versions
from editguard.settings import Settings
from editguard.stages.examples import Examples
from editguard.stages.scoring import Scoring


class Baselines:
    """The run's baselines folder, for the base model that ``base`` loads."""

    def __init__(self, settings: Settings, examples: Examples, scoring: Scoring, base: Callable[[], Any]):
        self.settings = settings
        self.examples = examples
        self.scoring = scoring
        self._base = base

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
            protocol=task.protocol,
            data=self.examples.source(ability),
            dtype=base.dtype,
            backend=backend_of(self.settings.backend),
            unparsed=score.unparsed,
            extras=dict(score.extras),
        )
        return baseline, self.store.write(baseline)

    def checked(self, ability: str) -> Baseline:
        """The stored baseline, checked against the current task, data, sample and base; GateProblem otherwise."""
        task = self.examples.task(ability)
        fingerprint = self.examples.fingerprint(task)  # loads the data: a data problem is reported first
        baseline = self._read(ability)
        base = self._base()
        why = staleness(
            baseline, task_version=task.version, task_fingerprint=fingerprint, model_fingerprint=base.fingerprint, dtype=base.dtype
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
