"""Edit modes: how a list of edit requests becomes weight deltas over the base model.

- ``single``: each request applied to the base alone, then reverted: one delta per request
  (``single_deltas``), each equal to a fresh ``editors.compute_edit`` of that request alone.
- ``sequential``: one request after another, each on top of the last (the study's instance-sequential
  setting, EasyEdit's ``keep_original_weight=False``): one accumulated delta.
- ``batch``: all requests in one call (MEMIT, FT): one delta.

For a curve over the number of edits, ``sequential_deltas`` and ``batch_deltas`` return the delta at
each of several counts.  Sequential edits are made once and the accumulated delta is snapshotted after
the k-th; a batch is made per count from the first k requests, each on the base.  Every returned
``EditOutcome`` holds the metrics of the requests it covers and the seconds it took (cumulative for
sequential counts).  Runs restart from the same seed, so each result equals the corresponding
``compute_edit`` call, and the model always comes back unchanged.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from editguard.editing import registry
from editguard.editing.recipes import EditError, EditOutcome
from editguard.editing.editors import open_session
from editguard.editing.quality import check_changed
from editguard.editing.requests import EditRequest


def single_deltas(
    model: Any, tokenizer: Any, requests: Sequence[EditRequest], hparams: dict[str, Any], *, seed: int = 0,
    cache_dir: Path | None = None, model_fingerprint: str | None = None,
) -> tuple[EditOutcome, ...]:  # fmt: skip
    """One outcome per request, each request edited into the base alone."""
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
    *, seed: int = 0, cache_dir: Path | None = None, model_fingerprint: str | None = None,
) -> dict[int, EditOutcome]:  # fmt: skip
    """The accumulated delta after each count of sequential edits (default: after all of them)."""
    wanted = check_counts(counts, len(requests))
    outcomes: dict[int, EditOutcome] = {}
    metrics: list[dict[str, Any]] = []
    with open_session(model, tokenizer, hparams, seed=seed, cache_dir=cache_dir, model_fingerprint=model_fingerprint) as run:
        started = time.perf_counter()
        for count in wanted:
            metrics += run.apply(requests[len(metrics) : count])
            outcomes[count] = EditOutcome(run.delta(), tuple(metrics), time.perf_counter() - started)
    _check_all(outcomes, hparams)
    return outcomes


def batch_deltas(
    model: Any, tokenizer: Any, requests: Sequence[EditRequest], hparams: dict[str, Any], counts: Sequence[int] | None = None,
    *, seed: int = 0, cache_dir: Path | None = None, model_fingerprint: str | None = None,
) -> dict[int, EditOutcome]:  # fmt: skip
    """For each count k, the delta of one batch edit of the first k requests (default: all of them)."""
    wanted = check_counts(counts, len(requests))
    outcomes: dict[int, EditOutcome] = {}
    with open_session(model, tokenizer, hparams, seed=seed, cache_dir=cache_dir, model_fingerprint=model_fingerprint) as run:
        for index, count in enumerate(wanted):
            if index:
                run.restart()
            started = time.perf_counter()
            metrics = run.apply_batch(requests[:count])
            outcomes[count] = EditOutcome(run.delta(), tuple(metrics), time.perf_counter() - started)
    _check_all(outcomes, hparams)
    return outcomes


def check_counts(counts: Sequence[int] | None, available: int) -> tuple[int, ...]:
    """Edit counts in increasing order, each between 1 and the number of requests."""
    if available < 1:
        raise EditError("no edit requests to apply; the edits file must hold at least one")
    wanted = tuple(sorted(set(counts))) if counts else (available,)
    bad = [count for count in wanted if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= available]
    if bad:
        raise EditError(f"edit count {bad[0]!r} is not between 1 and the {available} requests given; choose counts in that range")
    return wanted


def _check_all(outcomes: dict[int, EditOutcome], hparams: dict[str, Any]) -> None:
    for count, outcome in outcomes.items():
        check_changed(outcome.delta, f"{hparams['alg_name']} on the first {count} request(s)")


def _single_by_position(
    model: Any, tokenizer: Any, requests: Sequence[EditRequest], hparams: dict[str, Any], counts: Sequence[int] | None = None,
    **options: Any,
) -> dict[int, EditOutcome]:  # fmt: skip
    if counts:
        raise EditError("single mode edits each request alone and has no edit counts; use sequential or batch for a curve")
    return dict(enumerate(single_deltas(model, tokenizer, requests, hparams, **options), start=1))


# How each mode of registry.MODES runs, giving outcomes keyed by edit count ("single": by 1-based request position).
MODES: dict[str, Callable[..., dict[int, EditOutcome]]] = {
    "single": _single_by_position,
    "sequential": sequential_deltas,
    "batch": batch_deltas,
}
registry.check_covers("editguard/editing/modes.py MODES", MODES, registry.MODES)


def edit_deltas(mode: str, model: Any, tokenizer: Any, requests: Sequence[EditRequest], hparams: dict[str, Any],
                counts: Sequence[int] | None = None, **options: Any) -> dict[int, EditOutcome]:  # fmt: skip
    """Dispatch on ``mode`` (see MODES); ``options``: seed, cache_dir, model_fingerprint."""
    if mode not in MODES:
        raise EditError(f"unknown edit mode {mode!r}; choose one of {', '.join(MODES)}")
    return MODES[mode](model, tokenizer, requests, hparams, counts, **options)
