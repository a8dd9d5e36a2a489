"""One editguard run: its stages composed, and the gate of one ability from start to report row.

The stages (``editguard.stages``) each do one job; this module builds them once per process, in the
order the data flows, and hands each the stages it needs.  Everything heavy is lazy and done at most
once per process: the base model is loaded on first use, the edit is read from the cache or computed,
each (ability, model) is scored once.  The plugin's fixtures and the gate tests call into this module;
nothing here imports pytest.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from editguard.reports import rows as report
from editguard.backends import backend_kind
from editguard.baselines import Baseline
from editguard.errors import GateProblem, brief, remembered
from editguard.statistics.metrics import Score
from editguard.progress import reporter
from editguard.reports.rows import Measures, Row
from editguard.settings import Settings
from editguard.stages.baselines import Baselines
from editguard.stages.edits import Edits
from editguard.stages.examples import Examples
from editguard.stages.scoring import Scoring
from editguard.stages.verdicts import GateInputs, Judged, Verdicts
from editguard.tasks import Task
from editguard.statistics.verdict import Outcome, failure_message

__all__ = ["GateProblem", "Session", "gate_row", "quality_row", "told"]

IDENTITY_EDITS = 4  # edit requests whose targets check that an engine serves the edited model


@dataclass
class Session:
    """The stages of one run; ``base`` is the base model (``models.LoadedModel``), loaded on first use."""

    settings: Settings
    worker_index: int = 0
    worker_count: int = 1
    verbose: bool = False  # a problem's message carries the traceback of its cause (pytest -v)
    examples: Examples = field(init=False)

    def __post_init__(self) -> None:
        self.examples = Examples(self.settings)

    problem: GateProblem | None = field(default=None, init=False)  # found at start-up: every test reports it

    @remembered
    def base(self) -> Any:
        """The base model (``models.LoadedModel``), loaded once; a GateProblem naming the option when it cannot be."""
        from editguard.models import DeviceError, ModelSourceError

        try:
            return self._load_model()
        except (DeviceError, ModelSourceError) as error:
            raise GateProblem(str(error)) from None
        except Exception as error:  # a library's error deep inside loading: one sentence, its traceback under -v
            raise GateProblem(
                f"--editguard-model {self.settings.model!r} could not be loaded ({brief(error)}); check that it names a "
                "complete checkpoint (run with -v for the traceback)"
            ) from error

    def start(self, abilities: Sequence[str], *, load: bool = True) -> None:
        """The start-up checks (``editguard.preflight``); the problem found is kept (``ready`` raises it) and raised."""
        from editguard.preflight import check_start

        try:
            check_start(self.settings, self.edits, lambda: self.base, abilities, load=load)
        except GateProblem as problem:
            self.problem = problem
            raise

    def ready(self) -> None:
        """Raise the problem the start-up checks found, if any: nothing can be checked then."""
        if self.problem is not None:
            raise self.problem

    def _load_model(self) -> Any:
        import torch

        from editguard.models import cpu_threads_per_worker, gpu_group, load_model, resolve_device, resolve_dtype

        settings = self.settings
        gpus: tuple[int, ...] = ()
        if settings.device_map and settings.device in ("auto", "cuda") and torch.cuda.is_available():
            gpus = gpu_group(self.worker_index, self.worker_count, torch.cuda.device_count())
            device = f"cuda:{gpus[0]}"
        else:
            device = resolve_device(settings.device, worker_index=self.worker_index)
        if device == "cpu" and self.worker_count > 1:
            torch.set_num_threads(cpu_threads_per_worker(self.worker_count))
        dtype = resolve_dtype(settings.dtype, device)
        started = time.perf_counter()
        loaded = load_model(settings.model, device=device, cache_dir=settings.cache_dir, dtype=dtype, device_map=settings.device_map, gpus=gpus)
        reporter().done(f"model {loaded.name} loaded on {loaded.device}", started)
        return loaded

    def _load_base(self) -> Any:
        return self.base

    @cached_property
    def scoring(self) -> Scoring:
        return Scoring(self.settings, self.examples, self._load_base, progress=self.worker_count == 1, identity_edits=self._identity_edits)

    def _identity_edits(self) -> list[tuple[str, str]]:
        """(prompt, new target) of the first edit requests: what an engine serving the edit must reproduce."""
        if self.settings.edited is not None:
            return []
        return [(request.prompt, request.target_new) for request in self.edits.requests[:IDENTITY_EDITS]]

    def close(self) -> None:
        """Stop what the run started (backend vllm's servers); idempotent."""
        if "scoring" in self.__dict__:
            self.scoring.close()

    @cached_property
    def edits(self) -> Edits:
        return Edits(self.settings, self._load_base)

    @cached_property
    def baselines(self) -> Baselines:
        return Baselines(self.settings, self.examples, self.scoring, self._load_base)

    @cached_property
    def verdicts(self) -> Verdicts:
        return Verdicts(self.settings, self.examples, self.scoring, self.baselines, self.edits)

    # ------------------------------------------------------------------ what the fixtures offer

    def task(self, ability: str) -> Task:
        """The task of ``ability``; a GateProblem with "did you mean" for a name that is none (a fixture's argument)."""
        from editguard.tasks import UnknownTaskError

        try:
            return self.examples.task(ability)
        except UnknownTaskError as error:
            raise GateProblem(str(error)) from None

    @contextlib.contextmanager
    def edited(self, delta: Any = None) -> Iterator[Any]:
        """The base model with the gated edit (or ``delta``) applied in place; reverted exactly on exit."""
        from editguard.editing.delta import applied

        with applied(self.base.model, self.edits.primary.delta if delta is None else delta):
            yield self.base

    def score(self, ability: str, *, edited: bool) -> Score:
        """The score of the base or the edited model on the run's examples of ``ability``."""
        task = self.task(ability)
        delta = self.edits.primary.delta if edited else None
        return self.scoring.score(task, self.examples.sample(task), delta)

    def baseline(self, ability: str) -> Baseline:
        """The stored baseline, checked against this run; GateProblem when missing or stale, or when ``ability``
        names none (with "did you mean", as ``task`` says it)."""
        self.task(ability)
        return self.baselines.checked(ability)

    def export_edited(self, folder: Path) -> dict[str, Any]:
        """The gated edit written for a serving engine (``editing.export``): ``folder/checkpoint`` always,
        ``folder/lora`` when the delta is low-rank; what was written, as ``folder/export.json`` says it."""
        from editguard.atomic import write_json
        from editguard.editing.export import ExportError, describe, export_checkpoint, export_lora

        self.ready()
        delta, base = self.edits.primary.delta, self.base
        started = time.perf_counter()
        written: dict[str, Any] = {"base_model": self.settings.model, "checkpoint": str(export_checkpoint(base.model, base.tokenizer, delta, folder / "checkpoint"))}
        try:
            written["lora"] = describe(export_lora(base.model, delta, folder / "lora", base_model=str(base.model.config._name_or_path)))
        except ExportError as error:
            written["lora"] = None
            written["lora_refused"] = str(error)
        write_json(folder / "export.json", written)
        lora = written["lora"]
        told = f"LoRA rank {lora['rank']}, max abs error {lora['max_abs_error']:.2g}" if lora else f"no LoRA adapter: {written['lora_refused']}"
        reporter().done(f"edited model exported to {folder} ({told})", started)
        return written


# ----------------------------------------------------------------------------- one ability, start to row


def gate_row(session: Session, ability: str) -> tuple[Row, str | None]:
    """Run the gate for one ability: the report row, and the failure message when it must fail."""
    task = session.task(ability)
    try:
        session.ready()
        if session.settings.update_baselines:
            return _recorded(session, task), None
        return _judged(session, task)
    except GateProblem as problem:
        return report.problem_row(ability, task.dataset, str(problem), metric=task.metric, chance=task.chance), told(session, problem)


def _recorded(session: Session, task: Task) -> Row:
    baseline, path = session.baselines.record(task.name)
    truncated = session.scoring.truncated_count(task, session.examples.sample(task))
    return report.recorded_row(task, baseline, path, session.scoring.cached_counts.get((task.name, False), 0), truncated)


def _judged(session: Session, task: Task) -> tuple[Row, str | None]:
    """The ability's verdict, judged from values handed down (``GateInputs``), and its row."""
    verdicts, settings = session.verdicts, session.settings
    inputs = verdicts.inputs(task.name)
    signal = verdicts.signal(inputs) if settings.no_signal != "gate" else None
    if signal is not None and not signal.present:  # told before any edit is computed or scored
        return report.no_signal_row(task, signal, settings.no_signal), signal.message(task.dataset)
    judged = verdicts.worst(inputs)
    row = report.verdict_row(task, judged.verdict, judged.variant.info, _measures(session, inputs, judged))
    if judged.verdict.outcome is Outcome.PASS:
        return row, None
    return row, failure_message(judged.verdict, dataset=task.dataset, baseline_file=str(session.baselines.path(task.name)))


def _measures(session: Session, inputs: GateInputs, judged: Judged) -> Measures:
    """What the row shows beside the verdict, measured on the values the verdict was judged from."""
    scoring, settings, verdicts = session.scoring, session.settings, session.verdicts
    task, examples, delta = inputs.task, inputs.examples, judged.variant.delta
    drift = session.baselines.drift(task.name)
    return Measures(
        unparsed=scoring.unparsed_rate(task, examples, delta),
        truncated=scoring.truncated_count(task, examples, delta),
        cached=scoring.cached_counts.get((task.name, True), 0),
        available=len(examples),
        jitter=scoring.noise_floor(task, examples) if settings.noise_floor else None,
        variant=judged.variant.label if len(session.edits.variants) > 1 else "",
        curve=verdicts.curve(inputs) if settings.edit_counts else None,
        dtype=session.base.dtype,
        backends=(inputs.baseline.backend, backend_kind(settings.backend).records_as),
        worsened=verdicts.worsened(inputs, delta),
        stack_drift=None if drift is None else drift.as_dict(),
        **_canary_measures(session, task, delta),
    )


def _canary_measures(session: Session, task: Task, delta: Any) -> dict[str, Any]:
    """A canary's row also says how large the edit is against the weights it changed."""
    from editguard.editing.delta import relative_sizes
    from editguard.tasks import get_ability

    role = get_ability(task.name).role
    if role != "canary":
        return {}
    return {"role": role, "relative_change": relative_sizes(session.base.model, delta)}


def quality_row(session: Session) -> tuple[Row, str | None]:
    """Did the edits take?  Reliability gated (mean >= --editguard-min-reliability, and no request at 0)."""
    settings = session.settings
    try:
        session.ready()
        if settings.edited is not None:  # (settings refuse --editguard-edits beside it)
            return Row("edit_quality", "edit requests", Outcome.SKIPPED.value, note="an edited model made elsewhere: no requests to check"), None
        measured = session.edits.quality()
    except GateProblem as problem:
        return report.problem_row("edit_quality", "edit requests", str(problem)), told(session, problem)
    minimum = settings.min_reliability
    row, failures = report.quality_row(measured, minimum, len(session.edits.requests))
    if not failures:
        return row, None
    return row, (
        f"the {session.edits.method} edits did not take: {'; '.join(failures)} (gate: mean reliability >= {minimum:.2f} "
        f"and no request at 0). Check the method and its hyper-parameters (--editguard-hparams), or lower "
        f"--editguard-min-reliability if partial edits are acceptable."
    )


def told(session: Session, problem: GateProblem) -> str:
    """The problem's sentence, and under ``-v`` the traceback of the exception that caused it."""
    details = problem.full_traceback() if session.verbose else ""
    return f"{problem}\n\n{details}" if details else str(problem)
