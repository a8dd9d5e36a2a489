"""One editguard run: the model pair, the abilities, their scores, the baselines and the verdicts.

Everything heavy is lazy and done at most once per process: the base model is loaded on first use,
the edit is read from the cache or computed, each (ability, model) is scored once.  The plugin's
fixtures and the gate tests call into this object; nothing here imports pytest.
"""

from __future__ import annotations

import contextlib
import hashlib
import platform
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from importlib import metadata
from typing import Any

from editguard.baselines import Baseline, BaselineError, BaselineStore, staleness
from editguard.fingerprint import combine
from editguard.metrics import Score
from editguard.settings import Settings
from editguard.tasks import Example, Task, get_task, task_names
from editguard.report import Row
from editguard.verdict import Verdict, compare, failure_message

SAMPLE_SEED = "editguard-sample-v1"


class GateProblem(Exception):
    """The gate cannot compare this ability (no baseline, a stale or corrupt one); the message says how to fix it."""


@dataclass(frozen=True)
class EditInfo:
    description: str  # e.g. "3 ROME edits from demo_edits.jsonl"
    reused: bool | None  # read from the cache / computed now / None: made elsewhere
    seconds: float  # time the edit took when it was computed
    changed_parameters: tuple[str, ...]
    metrics: tuple[dict[str, Any], ...] = ()

    @property
    def rewrite_success(self) -> float | None:
        values = [m["post"]["rewrite_acc"][0] for m in self.metrics if m.get("post", {}).get("rewrite_acc")]
        return sum(values) / len(values) if values else None


def sample(examples: list[Example], limit: int | None) -> list[Example]:
    """A fixed, seeded sample of ``limit`` examples (all when None), in a stable order."""
    if limit is None or limit >= len(examples):
        return list(examples)
    keyed = sorted(examples, key=lambda e: hashlib.sha256(f"{SAMPLE_SEED}|{e.id}".encode()).hexdigest())
    chosen = {e.id for e in keyed[:limit]}
    return [e for e in examples if e.id in chosen]


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in ("editguard", "torch", "transformers", "easyeditor"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[package] = metadata.version(package)
    return versions


@dataclass
class Session:
    settings: Settings
    worker_index: int = 0
    worker_count: int = 1
    _scores: dict[tuple[str, bool], Score] = field(default_factory=dict)

    # ------------------------------------------------------------------ abilities

    @cached_property
    def abilities(self) -> tuple[str, ...]:
        names = self.settings.abilities or tuple(task_names())
        for name in names:
            get_task(name)  # unknown names fail here, with a suggestion
        return tuple(sorted(names))

    def examples(self, task: Task) -> list[Example]:
        return sample(task.examples(), self.settings.limit)

    def task_fingerprint(self, task: Task) -> str:
        """Version, prompt and the full probe data (not the sample: a smaller sample reuses the baseline)."""
        return task.fingerprint(task.examples())

    # ------------------------------------------------------------------ models

    @cached_property
    def base(self) -> Any:
        """The base model (``models.LoadedModel``), loaded once per process."""
        import torch

        from editguard.models import cpu_threads_per_worker, load_model, resolve_device

        device = resolve_device(self.settings.device, worker_index=self.worker_index)
        if device == "cpu" and self.worker_count > 1:
            torch.set_num_threads(cpu_threads_per_worker(self.worker_count))
        return load_model(self.settings.model, device=device, cache_dir=self.settings.cache_dir)

    @cached_property
    def edit(self) -> tuple[Any, EditInfo]:
        """The edit as a weight delta over the base, with where it came from."""
        if self.settings.edited is not None:
            from editguard.editing.external import load_edited

            delta = load_edited(self.settings.edited, self.base.model)
            description = f"edited model {self.settings.edited} ({len(delta.changed_parameters)} changed tensors)"
            info = EditInfo(description, None, 0.0, delta.changed_parameters)
            return delta, info
        return self._easyedit_delta()

    def _easyedit_delta(self) -> tuple[Any, EditInfo]:
        from editguard.editing.cache import cached_edit
        from editguard.editing.easyedit import compute_edit, resolve_hparams
        from editguard.editing.requests import load_requests

        requests = load_requests(self.settings.edits)
        base = self.base
        hparams = resolve_hparams(self.settings.method, base.model.config, self.settings.hparams, base.device)
        material = {
            "base": base.fingerprint,
            "method": hparams["alg_name"],
            "hparams": {key: value for key, value in hparams.items() if key != "device"},
            "requests": [request.as_dict() for request in requests],
            "easyeditor": library_versions().get("easyeditor"),
        }
        cached = cached_edit(self.settings.cache_dir, material, lambda: compute_edit(base.model, base.tokenizer, requests, hparams))
        outcome = cached.outcome
        source = "demo edits" if self.settings.edits == "demo" else self.settings.edits
        info = EditInfo(
            f"{len(requests)} {hparams['alg_name']} edits from {source} (cache key {cached.key})",
            cached.reused,
            outcome.seconds,
            outcome.delta.changed_parameters,
            outcome.metrics,
        )
        return outcome.delta, info

    @contextlib.contextmanager
    def edited(self) -> Iterator[Any]:
        """The base model with the edit applied in place; reverted exactly on exit."""
        from editguard.editing.delta import applied

        delta, _ = self.edit
        with applied(self.base.model, delta):
            yield self.base

    @property
    def edited_fingerprint(self) -> str:
        delta, _ = self.edit
        return combine(self.base.fingerprint, delta.fingerprint)

    # ------------------------------------------------------------------ scores

    def score(self, ability: str, *, edited: bool) -> Score:
        key = (ability, edited)
        if key not in self._scores:
            if edited:
                with self.edited():
                    self._scores[key] = self._score_now(get_task(ability))
            else:
                self._scores[key] = self._score_now(get_task(ability))
        return self._scores[key]

    def _score_now(self, task: Task) -> Score:
        from editguard.evaluator import Evaluator, LoglikelihoodRequest

        examples = self.examples(task)
        evaluator = Evaluator(self.base.model, self.base.tokenizer)
        requests = [LoglikelihoodRequest(e.prompt, choice) for e in examples for choice in e.choices]
        loglikelihoods = iter(evaluator.loglikelihood(requests))
        outcomes = {}
        for example in examples:
            scores = [next(loglikelihoods) for _ in example.choices]
            predicted = max(range(len(scores)), key=lambda index: (scores[index], -index))
            outcomes[example.id] = 1.0 if predicted == example.gold else 0.0
        return Score(task.name, task.metric, outcomes)

    # ------------------------------------------------------------------ baselines and verdicts

    @cached_property
    def store(self) -> BaselineStore:
        return BaselineStore(self.settings.baselines)

    def record_baseline(self, ability: str) -> tuple[Baseline, str]:
        task = get_task(ability)
        score = self.score(ability, edited=False)
        baseline = Baseline(
            ability=ability,
            metric=score.metric,
            score=round(score.value, 6),
            n=score.n,
            outcomes=dict(score.outcomes),
            task_version=task.version,
            task_fingerprint=self.task_fingerprint(task),
            model=self.base.name,
            model_fingerprint=self.base.fingerprint,
            versions=library_versions(),
        )
        return baseline, str(self.store.write(baseline))

    def baseline(self, ability: str) -> Baseline:
        """The stored baseline, checked against the current task and base; GateProblem otherwise."""
        task = get_task(ability)
        path = self.store.path(self.base.name, ability)
        try:
            baseline = self.store.read(self.base.name, ability)
        except BaselineError as error:
            raise GateProblem(str(error)) from None
        if baseline is None:
            raise GateProblem(
                f"no baseline for {ability} at {path}; record it by running the base model once with "
                f"--editguard-update-baselines, then commit {self.settings.baselines.name}/"
            )
        why = staleness(
            baseline,
            task_version=task.version,
            task_fingerprint=self.task_fingerprint(task),
            model_fingerprint=self.base.fingerprint,
        )
        if why:
            raise GateProblem(f"baseline {path} is stale: {why}; re-record it with --editguard-update-baselines")
        return baseline

    def verdict(self, ability: str) -> tuple[Verdict, Baseline]:
        baseline = self.baseline(ability)
        observed = self.score(ability, edited=True)
        missing = sorted(set(observed.outcomes) - set(baseline.outcomes))
        if missing:
            raise GateProblem(
                f"baseline {self.store.path(self.base.name, ability)} lacks example {missing[0]!r} "
                f"(it was recorded with a smaller --editguard-limit); re-record it with --editguard-update-baselines"
            )
        base_score = Score(ability, baseline.metric, dict(baseline.outcomes)).restricted_to(sorted(observed.outcomes))
        tolerance = self.settings.tolerance_for(ability)
        return compare(ability, observed.value, base_score.value, tolerance, observed.n), baseline


def gate_row(session: Session, ability: str) -> tuple[Row, str | None]:
    """Run the gate for one ability: the report row, and the failure message when it must fail."""
    task = get_task(ability)
    if session.settings.update_baselines:
        baseline, path = session.record_baseline(ability)
        row = Row(ability, task.dataset, "recorded", baseline=baseline.score, n=baseline.n, note=f"wrote {path}")
        return row, None
    try:
        verdict, baseline = session.verdict(ability)
    except GateProblem as problem:
        return Row(ability, task.dataset, "error", note=str(problem)), str(problem)
    _, info = session.edit
    row = Row(
        ability,
        task.dataset,
        verdict.outcome.value,
        baseline=verdict.baseline,
        edited=verdict.observed,
        tolerance=verdict.tolerance,
        n=verdict.n,
        edit=info.description,
        edit_reused=info.reused,
    )
    if verdict.passed:
        return row, None
    path = str(session.store.path(session.base.name, ability))
    return row, failure_message(verdict, dataset=task.dataset, baseline_file=path)
