"""One editguard run: the model pair, the abilities, their scores, the baselines and the verdicts.

Everything heavy is lazy and done at most once per process: the base model is loaded on first use,
the edit is read from the cache or computed, each (ability, model) is scored once.  The plugin's
fixtures and the gate tests call into this object; nothing here imports pytest.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import platform
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from importlib import metadata
from typing import Any

from editguard.baselines import Baseline, BaselineError, BaselineStore, staleness
from editguard.metrics import ExampleResult, Score
from editguard.outputs import OutputCache
from editguard.report import Row
from editguard.settings import Settings
from editguard.tasks import Example, Task, get_task
from editguard.verdict import Outcome, Policy, Verdict, failure_message

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
    """A fixed, seeded sample of ``limit`` examples, stratified by label, in the data's order.

    Each stratum keeps its share of the sample (largest remainders break ties in stratum order); within
    a stratum, examples are taken in the order of a hash of their id, so the sample does not depend on
    the order of the file, the run or the worker.
    """
    if limit is None or limit >= len(examples):
        return list(examples)
    strata: dict[str, list[Example]] = {}
    for example in examples:
        strata.setdefault(example.stratum, []).append(example)
    quotas = {key: limit * len(members) / len(examples) for key, members in sorted(strata.items())}
    counts = {key: int(quota) for key, quota in quotas.items()}
    by_remainder = sorted(quotas, key=lambda key: (-(quotas[key] - counts[key]), key))
    for key in by_remainder[: limit - sum(counts.values())]:
        counts[key] += 1
    chosen = {e.id for key, members in strata.items() for e in sorted(members, key=_sample_order)[: counts[key]]}
    return [e for e in examples if e.id in chosen]


def _sample_order(example: Example) -> str:
    return hashlib.sha256(f"{SAMPLE_SEED}|{example.id}".encode()).hexdigest()


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
    _results: dict[tuple[str, str], dict[str, ExampleResult]] = field(default_factory=dict)  # (ability, model) ->
    cached_counts: dict[tuple[str, bool], int] = field(default_factory=dict)  # results served by the output cache
    _from_cache: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    _examples: dict[tuple[str, str], list[Example]] = field(default_factory=dict)

    # ------------------------------------------------------------------ abilities

    def task(self, ability: str) -> Task:
        return get_task(ability, self.settings.protocol)

    def data_source(self, ability: str) -> str:
        return self.settings.data.get(ability, "probe")

    def all_examples(self, task: Task) -> list[Example]:
        """Every example of the ability's data source, loaded once per process."""
        key = (task.name, task.protocol)
        if key not in self._examples:
            from editguard.tasks.sources import load_records, parse_data_source

            source = self.data_source(task.name)
            try:
                records = load_records(task.name, parse_data_source(source))
                self._examples[key] = task.examples(records)
            except (ValueError, OSError, ImportError) as error:  # schema, missing file, no `datasets`
                raise GateProblem(f"cannot load the {task.name} data ({source}): {error}") from None
        return self._examples[key]

    def examples(self, task: Task) -> list[Example]:
        return sample(self.all_examples(task), self.settings.limit)

    def task_fingerprint(self, task: Task) -> str:
        """Version, protocol, prompt and the full data (not the sample: a smaller sample reuses the baseline)."""
        return task.fingerprint(self.all_examples(task))

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
        """The gated edit as a weight delta over the base (single mode: the first request's), with its origin."""
        return self.variants[0][1], self.variants[0][2]

    @cached_property
    def variants(self) -> list[tuple[str, Any, EditInfo]]:
        """(label, delta, info) of every edited model the gate checks: one, or one per request in single mode."""
        if self.settings.edited is not None:
            from editguard.editing.external import load_edited

            delta = load_edited(self.settings.edited, self.base.model)
            description = f"edited model {self.settings.edited} ({len(delta.changed_parameters)} changed tensors)"
            return [("edited", self._regularized(delta), EditInfo(description, None, 0.0, delta.changed_parameters))]
        if self.settings.mode == "single":
            requests = self.requests
            return [
                (f"edit {i + 1}", *self._easyedit(requests[i : i + 1], "sequential", label=f"edit {i + 1} of {len(requests)}"))
                for i in range(len(requests))
            ]
        if self.settings.edit_counts:
            self.curve_deltas  # noqa: B018 -- one editing run for the curve also yields the full edit (cached)
        return [("all", *self._easyedit(self.requests, self.settings.mode))]

    @cached_property
    def requests(self) -> tuple[Any, ...]:
        from editguard.editing.requests import load_requests

        return load_requests(self.settings.edits)

    @cached_property
    def hparams(self) -> dict[str, Any]:
        from editguard.editing.easyedit import resolve_hparams

        return resolve_hparams(self.settings.method, self.base.model.config, self.settings.hparams, self.base.device)

    def _edit_material(self, requests: Any, mode: str, count: int | None = None) -> dict[str, Any]:
        hparams = self.hparams
        material = {
            "base": self.base.fingerprint,
            "method": hparams["alg_name"],
            "hparams": {key: value for key, value in hparams.items() if key != "device"},
            "requests": [request.as_dict() for request in requests],
            "easyeditor": library_versions().get("easyeditor"),
        }
        if mode != "sequential" or count is not None:  # the original key for the default mode is kept
            material.update(mode=mode, count=count)
        return material

    def _easyedit(self, requests: Any, mode: str, label: str | None = None) -> tuple[Any, EditInfo]:
        from editguard.editing.cache import cached_edit
        from editguard.editing.easyedit import compute_edit

        base = self.base

        def compute() -> Any:
            return compute_edit(
                base.model, base.tokenizer, list(requests), self.hparams, mode=mode,
                cache_dir=self.settings.cache_dir, model_fingerprint=base.fingerprint,
            )  # fmt: skip

        cached = self._guarded(lambda: cached_edit(self.settings.cache_dir, self._edit_material(requests, mode), compute))
        return self._regularized(cached.outcome.delta), self._info(cached, len(requests), mode, label)

    def _info(self, cached: Any, count: int, mode: str, label: str | None) -> EditInfo:
        source = "demo edits" if self.settings.edits == "demo" else self.settings.edits
        what = f"{count} {self.hparams['alg_name']} edits ({mode}) from {source}"
        if label:
            what = f"{label}: {what}"
        if self.settings.rect is not None:
            what += f", RECT keeping {self.settings.rect:.0%}"
        outcome = cached.outcome
        return EditInfo(f"{what} (cache key {cached.key})", cached.reused, outcome.seconds, outcome.delta.changed_parameters, outcome.metrics)

    def _regularized(self, delta: Any, keep: float | None = None) -> Any:
        from editguard.editing.rect import regularize

        keep = self.settings.rect if keep is None else keep
        return delta if keep is None else regularize(delta, self.base.model, keep)

    def _guarded(self, run: Any) -> Any:
        """An edit that cannot be made is a GateProblem naming the method and what to change."""
        from editguard.editing.easyedit import EditError
        from editguard.editing.quality import UnchangedWeights

        try:
            return run()
        except (EditError, UnchangedWeights) as error:
            raise GateProblem(f"the {self.settings.method} edit failed: {error}") from None

    @cached_property
    def curve_deltas(self) -> dict[int, Any]:
        """The accumulated (sequential) or batched delta after each count of --editguard-edit-counts, unregularised."""
        from editguard.editing.cache import cached_edit
        from editguard.editing.modes import check_counts, edit_deltas

        base, mode = self.base, self.settings.mode
        counts = self._guarded(lambda: check_counts(self.settings.edit_counts, len(self.requests)))
        computed: dict[int, Any] = {}

        def all_counts() -> dict[int, Any]:
            if not computed:
                computed.update(edit_deltas(
                    mode, base.model, base.tokenizer, list(self.requests), self.hparams, counts,
                    cache_dir=self.settings.cache_dir, model_fingerprint=base.fingerprint,
                ))  # fmt: skip
            return computed

        deltas = {}
        for count in counts:
            # the full count is the gated edit itself: the same cache entry
            material = self._edit_material(self.requests[:count] if mode == "batch" else self.requests, mode, None if count == len(self.requests) else count)
            cached = self._guarded(lambda c=count, m=material: cached_edit(self.settings.cache_dir, m, lambda: all_counts()[c]))
            deltas[count] = cached.outcome.delta
        return deltas

    @contextlib.contextmanager
    def edited(self, delta: Any = None) -> Iterator[Any]:
        """The base model with the edit (or ``delta``) applied in place; reverted exactly on exit."""
        from editguard.editing.delta import applied

        with applied(self.base.model, self.edit[0] if delta is None else delta):
            yield self.base

    # ------------------------------------------------------------------ scores

    def score(self, ability: str, *, edited: bool, examples: list[Example] | None = None, delta: Any = None) -> Score:
        """The score of the base or edited model (or base + ``delta``) on ``examples`` (default: the run's sample)."""
        task = self.task(ability)
        chosen = self.examples(task) if examples is None else examples
        return Score.from_results(ability, task.metric, self.results(task, edited=edited, examples=chosen, delta=delta))

    def results(self, task: Task, *, edited: bool, examples: list[Example], delta: Any = None) -> dict[str, ExampleResult]:
        """Per-example results, from memory, then the output cache, scoring only what neither holds."""
        if edited and delta is None:
            delta = self.edit[0]
        material = self.output_material(task, delta=delta if edited else None)
        key = (task.name, material["model"])
        if key not in self._results:
            self._results[key] = self.outputs.load(material)
            self._from_cache[key] = set(self._results[key])
        known = self._results[key]
        missing = [example for example in examples if example.id not in known]
        served = self._from_cache[key] & {example.id for example in examples}
        counted = (task.name, edited)
        self.cached_counts[counted] = max(self.cached_counts.get(counted, 0), len(served))
        if missing:
            with self.edited(delta) if edited else contextlib.nullcontext():
                scored = self._score_now(task, missing)
            known.update(scored)
            self.outputs.store(material, scored)
        return {example.id: known[example.id] for example in examples}

    @cached_property
    def outputs(self) -> OutputCache:
        return OutputCache(self.settings.cache_dir, read=not self.settings.rescore)

    def output_material(self, task: Task, *, delta: Any = None) -> dict[str, Any]:
        """What decides a model's results on an ability: the output cache's key material."""
        from editguard.fingerprint import combine

        model = self.base.fingerprint if delta is None else combine(self.base.fingerprint, delta.fingerprint)
        return {
            "ability": task.name,
            "protocol": task.protocol,
            "task": self.task_fingerprint(task),
            "model": model,
            "evaluator": self.evaluator_settings,
        }

    @cached_property
    def evaluator_settings(self) -> dict[str, Any]:
        from editguard.evaluator import EVALUATOR_VERSION

        versions = library_versions()
        return {
            "version": EVALUATOR_VERSION,
            "dtype": str(self.base.model.dtype),
            "device": str(self.base.device).partition(":")[0],
            "torch": versions.get("torch"),
            "transformers": versions.get("transformers"),
        }

    def evaluator(self) -> Any:
        from editguard.evaluator import DEFAULT_MAX_BATCH, Evaluator

        max_batch = self.settings.batch_size or DEFAULT_MAX_BATCH
        return Evaluator(self.base.model, self.base.tokenizer, max_batch=max_batch, progress=self.worker_count == 1)

    def _score_now(self, task: Task, examples: list[Example]) -> dict[str, ExampleResult]:
        scorer = _score_choices if task.kind == "choice" else _score_generations
        return scorer(task, examples, self.evaluator())

    # ------------------------------------------------------------------ baselines and verdicts

    @cached_property
    def store(self) -> BaselineStore:
        return BaselineStore(self.settings.baselines)

    def record_baseline(self, ability: str) -> tuple[Baseline, str]:
        task = self.task(ability)
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
            protocol=task.protocol,
            data=self.data_source(ability),
            unparsed=score.unparsed,
            extras=dict(score.extras),
        )
        return baseline, str(self.store.write(baseline))

    def baseline(self, ability: str) -> Baseline:
        """The stored baseline, checked against the current task and base; GateProblem otherwise."""
        task = self.task(ability)
        task_fingerprint = self.task_fingerprint(task)  # loads the data: a data problem is reported first
        path = self.store.path(self.base.name, ability, task.protocol)
        try:
            baseline = self.store.read(self.base.name, ability, task.protocol)
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
            task_fingerprint=task_fingerprint,
            model_fingerprint=self.base.fingerprint,
        )
        if why:
            raise GateProblem(f"baseline {path} is stale: {why}; re-record it with --editguard-update-baselines")
        return baseline

    def policy(self, ability: str) -> Policy:
        from editguard.tasks import task_names

        settings = self.settings
        family = len(settings.abilities or task_names())
        return Policy(settings.tolerance_for(ability), settings.alpha, family, settings.fail_rule, settings.inconclusive)

    def verdict(self, ability: str, delta: Any = None) -> tuple[Verdict, Baseline]:
        """The paired verdict of the edited model (or base + ``delta``) against the baseline's outcomes."""
        from editguard.metrics import get_metric
        from editguard.verdict import compare, outcome_kind

        baseline = self.baseline(ability)
        task = self.task(ability)
        examples = self.examples(task)
        missing = [example.id for example in examples if example.id not in baseline.outcomes]
        if missing:
            raise GateProblem(
                f"baseline {self.store.path(self.base.name, ability, task.protocol)} lacks example {missing[0]!r} "
                f"(it was recorded with a smaller --editguard-limit); re-record it with --editguard-update-baselines"
            )
        policy = self.policy(ability)
        delta = self.edit[0] if delta is None else delta
        if self.settings.early_stop and outcome_kind(task.metric) != "counts":
            return self._sequential_verdict(task, examples, baseline, policy, delta), baseline
        observed = self.score(ability, edited=True, delta=delta)
        aggregate = get_metric(task.metric).aggregate
        return compare(ability, baseline.outcomes, observed.outcomes, policy, aggregate=aggregate, metric=task.metric), baseline

    def worst_verdict(self, ability: str) -> tuple[Verdict, str, EditInfo]:
        """The verdict of every gated edited model (several in single mode); the worst one, with its label."""
        rank = {"fail": 0, "inconclusive": 1, "pass": 2}
        verdicts = [(self.verdict(ability, delta)[0], label, info) for label, delta, info in self.variants]
        return min(verdicts, key=lambda item: rank[item[0].outcome.value])

    @cached_property
    def curve_series(self) -> dict[str, dict[int, Any]]:
        """Series name -> edit count -> delta: unregularised and (with --editguard-rect) with RECT, made once."""
        series = {"plain": dict(self.curve_deltas)}
        if self.settings.rect is not None:
            series[f"RECT {self.settings.rect:.0%}"] = {count: self._regularized(d) for count, d in self.curve_deltas.items()}
        return series

    def curve(self, ability: str) -> dict[str, list[list[Any]]]:
        """Per series and edit count: [count, edited score, verdict]."""
        curve: dict[str, list[list[Any]]] = {}
        for name, deltas in self.curve_series.items():
            verdicts = [(count, self.verdict(ability, delta)[0]) for count, delta in deltas.items()]
            curve[name] = [[count, round(v.observed, 6), v.outcome.value] for count, v in verdicts]
        return curve

    def _sequential_verdict(self, task: Task, examples: list[Example], baseline: Baseline, policy: Policy, delta: Any) -> Verdict:
        """Score the edited model a chunk at a time, in a seeded random order, until the verdict is settled."""
        from editguard.verdict import Outcome, compare_sequential

        ordered = sorted(examples, key=_sample_order)
        chunk = self.settings.chunk
        verdict = None
        for end in range(min(chunk, len(ordered)), len(ordered) + chunk, chunk):
            used = ordered[: min(end, len(ordered))]
            results = self.results(task, edited=True, examples=used, delta=delta)
            base = [float(baseline.outcomes[e.id]) for e in used]  # type: ignore[arg-type]
            edited = [float(results[e.id].outcome) for e in used]  # type: ignore[arg-type]
            verdict = compare_sequential(task.name, base, edited, policy, chunk)
            if verdict.outcome is not Outcome.INCONCLUSIVE or end >= len(ordered):
                break
        assert verdict is not None
        return verdict

    def unparsed_rate(self, ability: str, *, edited: bool) -> float:
        """Share of this run's scored examples whose output could not be parsed."""
        task = self.task(ability)
        material = self.output_material(task, delta=self.edit[0] if edited else None)
        results = self._results.get((ability, material["model"]), {})
        ids = [example.id for example in self.examples(task) if example.id in results]
        return sum(not results[i].parsed for i in ids) / len(ids) if ids else 0.0

    def edit_quality(self) -> list[tuple[str, Any]]:
        """EasyEdit's reliability, generalisation, locality and portability of every gated edit, on its requests."""
        from editguard.editing.quality import edit_quality

        requests = self.requests
        variants = self.variants
        if self.settings.mode == "single":
            return [(label, edit_quality(self.base.model, self.base.tokenizer, requests[i : i + 1], delta)) for i, (label, delta, _) in enumerate(variants)]
        return [(variants[0][0], edit_quality(self.base.model, self.base.tokenizer, requests, variants[0][1]))]

    def noise_floor(self, ability: str) -> int:
        """Examples whose base outcome changes when re-scored with batch size 1 in a shuffled order (should be 0)."""
        from editguard.evaluator import Evaluator

        task = self.task(ability)
        examples = self.examples(task)
        reference = self.results(task, edited=False, examples=examples)
        shuffled = sorted(examples, key=_sample_order)
        scorer = _score_choices if task.kind == "choice" else _score_generations
        again = scorer(task, shuffled, Evaluator(self.base.model, self.base.tokenizer, max_batch=1))
        return sum(again[e.id].outcome != reference[e.id].outcome for e in examples)


def gate_row(session: Session, ability: str) -> tuple[Row, str | None]:
    """Run the gate for one ability: the report row, and the failure message when it must fail."""
    task = session.task(ability)
    try:
        return _gate_row(session, task)
    except GateProblem as problem:
        return Row(ability, task.dataset, "error", note=str(problem), metric=task.metric, chance=task.chance), str(problem)


def _gate_row(session: Session, task: Task) -> tuple[Row, str | None]:
    ability = task.name
    if session.settings.update_baselines:
        baseline, path = session.record_baseline(ability)
        row = Row(
            ability, task.dataset, "recorded", baseline=baseline.score, n=baseline.n, note=f"wrote {path}",
            metric=task.metric, chance=task.chance, unparsed=baseline.unparsed / baseline.n if baseline.n else 0.0,
            cached=session.cached_counts.get((ability, False), 0),
        )  # fmt: skip
        return row, None
    verdict, label, info = session.worst_verdict(ability)
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
        metric=task.metric,
        chance=task.chance,
        unparsed=session.unparsed_rate(ability, edited=True),
        cached=session.cached_counts.get((ability, True), 0),
        lower=_finite(verdict.lower),
        upper=_finite(verdict.upper),
        negative_flips=verdict.negative_flips,
        positive_flips=verdict.positive_flips,
        p_value=verdict.p_value,
        minimum_detectable_drop=_finite(verdict.minimum_detectable_drop),
        examples_needed=verdict.examples_needed,
        sequential=verdict.sequential,
        available=len(session.examples(task)),
        jitter=session.noise_floor(ability) if session.settings.noise_floor else None,
        passed=verdict.passed,
        variant=label if len(session.variants) > 1 else "",
        curve=session.curve(ability) if session.settings.edit_counts else None,
    )
    if verdict.outcome is Outcome.PASS:
        return row, None
    path = str(session.store.path(session.base.name, ability, task.protocol))
    return row, failure_message(verdict, dataset=task.dataset, baseline_file=path)


def quality_row(session: Session) -> tuple[Row, str | None]:
    """Did the edits take?  Reliability gated (mean >= --editguard-min-reliability, and no request at 0)."""
    try:
        if session.settings.edited is not None and session.settings.edits == "demo":
            return Row("edit_quality", "edit requests", "skipped", note="an edited model made elsewhere: no requests to check"), None
        measured = session._guarded(session.edit_quality)
    except GateProblem as problem:
        return Row("edit_quality", "edit requests", "error", note=str(problem)), str(problem)
    minimum = session.settings.min_reliability
    failures = []
    summary = {}
    for label, quality in measured:
        values = quality.as_dict()
        summary[label] = values
        reliability = quality.reliability
        zero = [i + 1 for i, r in enumerate(quality.per_request) if r.reliability == 0]
        if reliability is not None and (reliability < minimum or zero):
            failures.append(f"{label}: reliability {reliability:.2f}" + (f" (requests {zero} did not take at all)" if zero else ""))
    worst = min((q.reliability for _, q in measured if q.reliability is not None), default=None)
    row = Row(
        "edit_quality", "edit requests", "fail" if failures else "pass", edited=worst, metric="reliability",
        tolerance=minimum, n=len(session.requests), quality=summary, passed=not failures,
    )  # fmt: skip
    if not failures:
        return row, None
    return row, (
        f"the {session.settings.method} edits did not take: {'; '.join(failures)} (gate: mean reliability >= {minimum:.2f} "
        f"and no request at 0). Check the method and its hyper-parameters (--editguard-hparams), or lower "
        f"--editguard-min-reliability if partial edits are acceptable."
    )


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


# ----------------------------------------------------------------------------- scoring by kind


def _score_choices(task: Task, examples: list[Example], evaluator: Any) -> dict[str, ExampleResult]:
    """Pick the continuation with the highest log-likelihood (per token when length-normalised)."""
    from editguard.evaluator import LoglikelihoodRequest
    from editguard.scorers import reciprocal_rank

    requests = [LoglikelihoodRequest(e.prompt, choice) for e in examples for choice in e.choices]
    scored = iter(evaluator.loglikelihood_with_lengths(requests))
    results = {}
    for example in examples:
        pairs = [next(scored) for _ in example.choices]
        scores = [total / length if task.length_normalized else total for total, length in pairs]
        predicted = max(range(len(scores)), key=lambda index: (scores[index], -index))
        outcome = 1.0 if predicted == example.gold else 0.0
        results[example.id] = ExampleResult(outcome, reciprocal_rank=reciprocal_rank(scores, int(example.gold or 0)))
    return results


def _score_generations(task: Task, examples: list[Example], evaluator: Any) -> dict[str, ExampleResult]:
    """Generate greedily for every prompt of every example, then let the task score the outputs."""
    from editguard.evaluator import GenerationRequest

    chat = task.chat and bool(getattr(evaluator.tokenizer, "chat_template", None))
    requests = [
        GenerationRequest(_render(prompt, evaluator.tokenizer, chat), task.max_new_tokens, task.stop, not chat)
        for example in examples
        for prompt in example.prompts
    ]
    outputs = iter(evaluator.generate(requests))
    grouped = [[next(outputs) for _ in example.prompts] for example in examples]
    scored = task.score_outputs(examples, grouped)
    return {example.id: ExampleResult(result.outcome, result.parsed) for example, result in zip(examples, scored)}


def _render(prompt: str, tokenizer: Any, chat: bool) -> str:
    if not chat:
        return prompt
    messages = [{"role": "user", "content": prompt}]
    return str(tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))
