"""Edit modes: how a list of edit requests becomes the weight deltas a gate checks, one record per mode (``MODES``).

- ``single``: each request applied to the base alone, then reverted: one gated edit per request (``each``), each
  equal to a fresh ``compute_edit`` of that request alone.
- ``sequential``: one request after another, each on top of the last (the study's instance-sequential setting,
  EasyEdit's ``keep_original_weight=False``): one accumulated delta.  The edit of the first k requests is a step on
  the way to the whole (``cumulative``), so one pass gives the delta at every count of a curve.
- ``batch``: all requests as one edit (MEMIT, FT, MEND): one delta; a curve makes a batch of the first k per count
  (the study's batch-single setting: with ``--editguard-edit-counts 1,5,10``, batches of 1, 5 and 10 on the base).
- ``batch-sequential:N``: batches of N requests, each batch one edit on top of the last (the study's batch-sequential
  setting): cumulative like ``sequential``, at counts that are multiples of N (and the last, smaller batch).

A mode is its ``apply`` (what it asks of an ``editors.EditSession``), and whether it gates each request alone or is
cumulative; ``edit_deltas`` turns any mode into the deltas at the counts a curve asks for.  Every returned
``EditOutcome`` holds the metrics of the requests it covers and the seconds it took (cumulative for a cumulative
mode).  Runs restart from the same seed, so each result equals the corresponding ``compute_edit`` call, and the model
always comes back unchanged.  Plain at import (settings read the names and summaries here).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from editguard.editing.editors import open_session
from editguard.editing.recipes import EditError, EditOutcome
from editguard.editing.requests import EditRequest


def _one_after_another(run: Any, requests: Sequence[EditRequest]) -> list[dict[str, Any]]:
    return list(run.apply(requests))


def _as_one(run: Any, requests: Sequence[EditRequest]) -> list[dict[str, Any]]:
    return list(run.apply_batch(requests))


def _in_batches(run: Any, requests: Sequence[EditRequest], size: int) -> list[dict[str, Any]]:
    metrics: list[dict[str, Any]] = []
    for start in range(0, len(requests), size):
        metrics += run.apply_batch(requests[start : start + size])
    return metrics


@dataclass(frozen=True)
class Mode:
    name: str  # as --editguard-mode gives it (a sized mode with its size: batch-sequential:5)
    summary: str  # what it does, as the --editguard-mode help says it
    apply: Callable[[Any, Sequence[EditRequest]], list[dict[str, Any]]]  # (an EditSession, requests) -> metrics
    each: bool = False  # each request alone on the base: one gated edit per request
    cumulative: bool = False  # the edit of the first k requests is a step on the way to the whole
    size: int | None = None  # requests per batch of a sized mode (batch-sequential:N); None for the others
    sized: bool = False  # the name takes a batch size, name:N

    def steps(self, total: int) -> tuple[int, ...]:
        """The counts at which a cumulative mode has edited exactly the first k requests (each a step of the whole)."""
        every = self.size or 1
        return tuple(sorted({*range(every, total + 1, every), total}))


MODES: dict[str, Mode] = {
    mode.name: mode
    for mode in (
        Mode("single", "each edit alone on the base; the worst is gated", _one_after_another, each=True),
        Mode("sequential", "edits accumulate, default", _one_after_another, cumulative=True),
        Mode("batch", "one call, for a method that edits in batches (MEMIT, FT, MEND)", _as_one),
        Mode(
            "batch-sequential", "batches of N edits accumulate, each batch one call on top of the last",
            _as_one, cumulative=True, sized=True,
        ),  # fmt: skip
    )
}


def mode_of(name: str) -> Mode:
    """The record of a mode name, a sized one with its size bound (``batch-sequential:5``)."""
    base, colon, size = str(name).partition(":")
    if base not in MODES:
        raise EditError(f"unknown edit mode {name!r}; choose one of {', '.join(MODES)}")
    record = MODES[base]
    if not record.sized:
        if colon:
            raise EditError(f"edit mode {base} takes no batch size; give it as {base}")
        return record
    if not size.isdigit() or int(size) < 1:
        raise EditError(f"edit mode {name!r} needs the requests per batch as a whole number of at least 1: {base}:N, e.g. {base}:5")
    count = int(size)
    return replace(record, name=f"{base}:{count}", size=count, apply=functools.partial(_in_batches, size=count))


def single_deltas(
    model: Any, tokenizer: Any, requests: Sequence[EditRequest], hparams: dict[str, Any], *, seed: int = 0,
    cache_dir: Path | None = None, model_fingerprint: str | None = None,
) -> tuple[EditOutcome, ...]:  # fmt: skip
    """One outcome per request, each request edited into the base alone."""
    from editguard.editing.quality import check_changed

    outcomes = []
    with open_session(model, tokenizer, hparams, seed=seed, cache_dir=cache_dir, model_fingerprint=model_fingerprint) as run:
        for index, request in enumerate(requests):
            if index:
                run.restart()
            started = time.perf_counter()
            metrics = run.apply([request])
            outcomes.append(EditOutcome(run.delta(), tuple(metrics), time.perf_counter() - started))
    for outcome, request in zip(outcomes, requests):
        check_changed(outcome.delta, f"{hparams['alg_name']} on {request.prompt!r}")
    return tuple(outcomes)


def sequential_deltas(
    model: Any, tokenizer: Any, requests: Sequence[EditRequest], hparams: dict[str, Any], counts: Sequence[int] | None = None,
    **options: Any,
) -> dict[int, EditOutcome]:  # fmt: skip
    """The accumulated delta after each count of sequential edits (default: after all of them)."""
    return edit_deltas("sequential", model, tokenizer, requests, hparams, counts, **options)


def batch_deltas(
    model: Any, tokenizer: Any, requests: Sequence[EditRequest], hparams: dict[str, Any], counts: Sequence[int] | None = None,
    **options: Any,
) -> dict[int, EditOutcome]:  # fmt: skip
    """For each count k, the delta of one batch edit of the first k requests (default: all of them)."""
    return edit_deltas("batch", model, tokenizer, requests, hparams, counts, **options)


def compute_edit(
    model: Any, tokenizer: Any, requests: Sequence[EditRequest], hparams: dict[str, Any], *, seed: int = 0,
    mode: str = "sequential", cache_dir: Path | None = None, model_fingerprint: str | None = None,
) -> Any:  # fmt: skip
    """Apply ``requests`` with the editor ``hparams`` names (one after another, or as one batch); return the
    ``easyedit.EditOutcome`` (delta, metrics, seconds), the model unchanged.

    ``cache_dir`` holds what the editor prepares once (MEMIT's covariance statistics, MEND's hypernetwork; default:
    editguard's cache folder) and ``model_fingerprint`` keys it (default: computed from the weights).  Raises
    UnchangedWeights when the edit changed no weight at all (``quality.UnchangedWeights``, a ValueError).
    """
    from editguard.editing.quality import check_changed

    record = mode_of(mode)
    if record.each:
        raise EditError(f"{mode} mode gates each request alone: edit them one at a time (modes.single_deltas)")
    with open_session(model, tokenizer, hparams, seed=seed, cache_dir=cache_dir, model_fingerprint=model_fingerprint) as run:
        started = time.perf_counter()
        metrics = record.apply(run, requests)
        outcome = EditOutcome(run.delta(), tuple(metrics), time.perf_counter() - started)
    check_changed(outcome.delta, f"{hparams['alg_name']} on {len(requests)} request(s)")
    return outcome


def check_counts(counts: Sequence[int] | None, available: int) -> tuple[int, ...]:
    """Edit counts in increasing order, each between 1 and the number of requests."""
    if available < 1:
        raise EditError("no edit requests to apply; the edits file must hold at least one")
    wanted = tuple(sorted(set(counts))) if counts else (available,)
    bad = [count for count in wanted if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= available]
    if bad:
        raise EditError(f"edit count {bad[0]!r} is not between 1 and the {available} requests given; choose counts in that range")
    return wanted


def check_steps(mode: Mode, counts: tuple[int, ...], available: int) -> None:
    """In a sized cumulative mode every count must end a batch: a multiple of the batch size, or all requests."""
    if not mode.size:
        return
    steps = mode.steps(available)
    bad = [count for count in counts if count not in steps]
    if bad:
        raise EditError(
            f"edit count {bad[0]} does not end a batch of {mode.name}; choose counts among {', '.join(map(str, steps))}"
        )


def edit_deltas(
    mode: str, model: Any, tokenizer: Any, requests: Sequence[EditRequest], hparams: dict[str, Any],
    counts: Sequence[int] | None = None, *, seed: int = 0, cache_dir: Path | None = None, model_fingerprint: str | None = None,
) -> dict[int, EditOutcome]:  # fmt: skip
    """The delta of ``mode`` at each count (``each`` modes: by 1-based request position, with no counts)."""

    record = mode_of(mode)
    if record.each:
        if counts:
            raise EditError(f"{mode} mode edits each request alone and has no edit counts; use sequential or batch for a curve")
        outcomes = single_deltas(model, tokenizer, requests, hparams, seed=seed, cache_dir=cache_dir, model_fingerprint=model_fingerprint)
        return dict(enumerate(outcomes, start=1))
    wanted = check_counts(counts, len(requests))
    check_steps(record, wanted, len(requests))
    with open_session(model, tokenizer, hparams, seed=seed, cache_dir=cache_dir, model_fingerprint=model_fingerprint) as run:
        counted = _cumulative(record, run, requests, wanted) if record.cumulative else _per_count(record, run, requests, wanted)
    _check_all(counted, hparams)
    return counted


def _cumulative(mode: Mode, run: Any, requests: Sequence[EditRequest], counts: tuple[int, ...]) -> dict[int, EditOutcome]:
    """One pass: the requests up to each count applied on top of the ones before, the delta kept at each count."""
    outcomes: dict[int, EditOutcome] = {}
    metrics: list[dict[str, Any]] = []
    started = time.perf_counter()
    for count in counts:
        metrics += mode.apply(run, requests[len(metrics) : count])
        outcomes[count] = EditOutcome(run.delta(), tuple(metrics), time.perf_counter() - started)
    return outcomes


def _per_count(mode: Mode, run: Any, requests: Sequence[EditRequest], counts: tuple[int, ...]) -> dict[int, EditOutcome]:
    """Per count, the first k requests edited afresh on the base."""
    outcomes: dict[int, EditOutcome] = {}
    for index, count in enumerate(counts):
        if index:
            run.restart()
        started = time.perf_counter()
        metrics = mode.apply(run, requests[:count])
        outcomes[count] = EditOutcome(run.delta(), tuple(metrics), time.perf_counter() - started)
    return outcomes


def _check_all(outcomes: dict[int, EditOutcome], hparams: dict[str, Any]) -> None:
    from editguard.editing.quality import check_changed

    for count, outcome in outcomes.items():
        check_changed(outcome.delta, f"{hparams['alg_name']} on the first {count} request(s)")
