"""The edits stage: the edited models a gate checks, each a weight delta over the base, with its origin.

One ``EditVariant`` per gated edited model: the whole edit set (sequential or batch), or one per request
(``single`` mode), or an edited model made elsewhere (``--editguard-edited``).  Computed edits come from
the edit cache (``editing/cache.py``) or EasyEdit; RECT (``--editguard-rect``) is applied to each delta.
With ``--editguard-edit-counts`` the stage also gives the delta after each count of edits (the curve).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from editguard.errors import GateProblem, remembered
from editguard.progress import reporter
from editguard.settings import Settings
from editguard.stack import output_versions

SNAPSHOT_REQUESTS = 8  # a sequential edit of up to this many requests keeps the delta after each in the edit cache


@dataclass(frozen=True)
class EditInfo:
    description: str  # e.g. "3 ROME edits (sequential) from demo edits (cache key ...)"
    reused: bool | None  # read from the cache / computed now / None: made elsewhere
    seconds: float  # time the edit took when it was computed
    changed_parameters: tuple[str, ...]
    metrics: tuple[dict[str, Any], ...] = ()

    @property
    def rewrite_success(self) -> float | None:
        values = [m["post"]["rewrite_acc"][0] for m in self.metrics if m.get("post", {}).get("rewrite_acc")]
        return sum(values) / len(values) if values else None


@dataclass(frozen=True)
class EditVariant:
    """One edited model the gate checks: base + ``delta``."""

    label: str  # "all", "edit 2" (single mode), "edited" (made elsewhere)
    delta: Any  # editing.delta.WeightDelta, RECT applied when asked
    info: EditInfo
    requests: tuple[Any, ...] = ()  # the edit requests it applies (none for an edited model made elsewhere)


class Edits:
    """Edit requests, hyper-parameters, the gated variants and the edit-count curve of one run."""

    def __init__(self, settings: Settings, base: Callable[[], Any]):
        self.settings = settings
        self._base = base

    @property
    def base(self) -> Any:
        return self._base()

    @property
    def edits_source(self) -> str:
        """The edit requests: the file or shipped set ``--editguard-edits`` names, else the demo set."""
        from editguard.editing.requests import DEMO_EDITS

        return self.settings.edits or DEMO_EDITS

    @property
    def mode(self) -> Any:
        """The edit mode's record (``modes.MODES``)."""
        from editguard.editing.modes import mode_of

        return self.guarded(lambda: mode_of(self.settings.mode))

    @property
    def method(self) -> str:
        """The editor: a user's own (``--editguard-editor``) or a method of the table (``--editguard-method``)."""
        return self.settings.editor or self.settings.method

    @remembered
    def located_requests(self) -> tuple[tuple[str, Any], ...]:
        """The edit requests, each with where it is in its file (for messages); read and checked once."""
        from editguard.editing.requests import EditRequestError, located_requests

        try:
            located = located_requests(self.edits_source)
        except EditRequestError as error:
            raise GateProblem(str(error)) from None
        return located[: self.settings.edit_limit] if self.settings.edit_limit else located

    @property
    def requests(self) -> tuple[Any, ...]:
        return tuple(request for _, request in self.located_requests)

    def check_context(self) -> None:
        """Every request fits in the base model's context and in the method's ``max_length`` when the user's
        hyper-parameters file sets it (easyeditor cuts a longer request there and then fails deep inside)."""
        from editguard.editing.requests import context_problem
        from editguard.models import context_length

        base = self.base
        limit = context_length(base.model.config, base.tokenizer)
        for where, request in self.located_requests:
            why = context_problem(request, base.tokenizer, limit)
            if why:
                raise GateProblem(f"{where}: {why}")
        if self.guarded(lambda: self._max_length_given):
            self._check_max_length(self.guarded(lambda: self.hparams)["max_length"])

    def _check_max_length(self, max_length: int) -> None:
        for (where, _), tokens in zip(self.located_requests, self._request_tokens):
            if tokens > max_length:
                raise GateProblem(
                    f"{where}: the request is {tokens} tokens long (a prompt and its answer together), more than the "
                    f"max_length {max_length} that --editguard-hparams {self.settings.hparams} sets for "
                    f"{self.method}; raise max_length there to {tokens} or more, or leave it out (editguard then "
                    "sizes it to the longest request)"
                )

    @cached_property
    def _request_tokens(self) -> list[int]:
        """Each request's longest prompt-and-answer pair, in tokens, as easyeditor's evaluation reads them."""
        from editguard.editing.requests import READ_TOGETHER

        tokenizer = self.base.tokenizer
        return [
            max((len(tokenizer(f"{getattr(r, p)} {getattr(r, a)}")["input_ids"]) for p, a in READ_TOGETHER
                 if getattr(r, p) is not None and getattr(r, a) is not None), default=0)
            for r in self.requests
        ]  # fmt: skip

    @cached_property
    def _max_length_given(self) -> bool:
        from editguard.editing.methods import hparams_file_keys

        return self.settings.hparams is not None and "max_length" in hparams_file_keys(self.settings.hparams, self.method)

    @cached_property
    def hparams(self) -> dict[str, Any]:
        """The method's hyper-parameters for the base model; ``max_length`` (where easyeditor cuts a request before
        measuring it) sized to the longest request unless the user's file sets it."""
        from editguard.editing.methods import resolve_hparams

        base = self.base
        hparams = resolve_hparams(self.method, base.model, self.settings.hparams, base.device)
        if "max_length" in hparams and not self._max_length_given and self.requests:
            hparams["max_length"] = max(int(hparams["max_length"]), max(self._request_tokens))
        return hparams

    @property
    def primary(self) -> EditVariant:
        """The gated edit (in single mode: the first request's)."""
        return self.variants[0]

    @remembered
    def variants(self) -> list[EditVariant]:
        """Every edited model the gate checks: one, or one per request in single mode."""
        if self.settings.edited is not None:
            return [self._external()]
        requests = self.requests
        if self.mode.each:  # single: each request alone on the base, a gated edit each
            return [self._computed(f"edit {i + 1}", requests[i : i + 1], "sequential", of=len(requests)) for i in range(len(requests))]
        if self.settings.edit_counts:
            self.curve_deltas  # noqa: B018 -- one editing run for the curve also yields the full edit (cached)
        return [self._computed("all", requests, self.settings.mode)]

    @remembered
    def edited_file(self) -> Any:
        """The delta file of ``--editguard-edited`` (a ``WeightDelta``), read and checked once, before the base model
        loads; None for a checkpoint folder, which is read against the base."""
        from editguard.editing.delta import DeltaError
        from editguard.editing.external import check_edited_path, read_delta_file
        from editguard.editing.quality import UnchangedWeights

        source = self.settings.edited
        assert source is not None
        try:
            check_edited_path(source)
            return None if source.is_dir() else read_delta_file(source)
        except (DeltaError, UnchangedWeights) as error:
            raise GateProblem(str(error)) from None

    def _external(self) -> EditVariant:
        from editguard.editing.delta import DeltaError
        from editguard.editing.external import load_edited
        from editguard.editing.quality import UnchangedWeights

        source = self.settings.edited
        assert source is not None
        try:
            delta = load_edited(source, self.base.model, self.edited_file)
        except (DeltaError, UnchangedWeights) as error:
            raise GateProblem(str(error)) from None
        description = f"edited model {source} ({len(delta.changed_parameters)} changed tensors)"
        return EditVariant("edited", self.regularized(delta), EditInfo(description, None, 0.0, delta.changed_parameters))

    def _computed(self, label: str, requests: Sequence[Any], mode: str, of: int | None = None) -> EditVariant:
        from editguard.editing.cache import cached_edit
        from editguard.editing.delta import check_values
        from editguard.editing.modes import compute_edit
        from editguard.editing.modes import mode_of

        base = self.base

        def compute() -> Any:
            if mode_of(mode).cumulative and 1 < len(requests) <= SNAPSHOT_REQUESTS:
                return self._with_snapshots(requests, mode)
            return compute_edit(
                base.model, base.tokenizer, list(requests), self.hparams, mode=mode,
                cache_dir=self.settings.cache_dir, model_fingerprint=base.key,
            )  # fmt: skip

        started = time.perf_counter()
        cached = self.guarded(lambda: cached_edit(self.settings.cache_dir, self._material(requests, mode), compute))
        self.guarded(lambda: check_values(cached.outcome.delta, "its weight delta"))
        info = self._info(cached, len(requests), mode, f"{label} of {of}" if of else None)
        reporter().done(f"edit {info.description}: {'read from the edit cache' if cached.reused else 'computed'}", started)
        return EditVariant(label, self.regularized(cached.outcome.delta), info, tuple(requests))

    def _with_snapshots(self, requests: Sequence[Any], mode: str) -> Any:
        """The edit of ``requests`` in a cumulative mode (sequential), keeping the delta after each earlier request in
        the edit cache too, as the edit of the first k requests: what an edit-count curve, or --editguard-edit-limit k,
        reads afterwards instead of editing again (each equals a fresh edit of those k requests: ``modes``)."""
        from editguard.editing.cache import cached_edit
        from editguard.editing.modes import edit_deltas, mode_of

        base = self.base
        steps = mode_of(mode).steps(len(requests))
        outcomes = edit_deltas(
            mode, base.model, base.tokenizer, list(requests), self.hparams, steps,
            cache_dir=self.settings.cache_dir, model_fingerprint=base.key,
        )  # fmt: skip
        for count in steps[:-1]:
            cached_edit(self.settings.cache_dir, self._material(requests[:count], mode), functools.partial(outcomes.__getitem__, count))
        return outcomes[len(requests)]

    def _material(self, requests: Sequence[Any], mode: str, count: int | None = None) -> dict[str, Any]:
        """What decides a computed edit: the edit cache's key material."""
        from editguard.editing.editors import editor_for

        hparams = self.hparams
        material = {
            "base": self.base.key,  # weights, tokenizer and computation config
            **editor_for(hparams["alg_name"]).describe(hparams),  # the editor, its version and hyper-parameters
            "requests": [request.as_dict() for request in requests],
            "stack": output_versions(),  # transformers and torch: their kernels decide the optimised vectors
        }
        if mode != "sequential" or count is not None:  # the original key for the default mode is kept
            material.update(mode=mode, count=count)  # (in a cumulative mode the first k requests' edit is the k-th step)
        return material

    def _info(self, cached: Any, count: int, mode: str, label: str | None) -> EditInfo:
        from editguard.editing.requests import DEMO_EDITS

        source = "demo edits" if self.edits_source == DEMO_EDITS else self.edits_source
        what = f"{count} {self.hparams['alg_name']} edits ({mode}) from {source}"
        if label:
            what = f"{label}: {what}"
        if self.settings.rect is not None:
            what += f", RECT keeping {self.settings.rect:.0%}"
        outcome = cached.outcome
        return EditInfo(f"{what} (cache key {cached.key})", cached.reused, outcome.seconds, outcome.delta.changed_parameters, outcome.metrics)

    def regularized(self, delta: Any) -> Any:
        """``delta`` with RECT applied (``--editguard-rect``), or as it is."""
        from editguard.editing.rect import regularize

        keep = self.settings.rect
        return delta if keep is None else regularize(delta, self.base.model, keep)

    def guarded(self, run: Callable[[], Any]) -> Any:
        """An edit that cannot be made is a GateProblem naming the method and what to change."""
        from editguard.editing.delta import DeltaError
        from editguard.editing.recipes import EditError
        from editguard.editing.easyedit_compat import EasyEditUnavailable
        from editguard.editing.mend import MendError
        from editguard.editing.quality import UnchangedWeights

        try:
            return run()
        except EasyEditUnavailable as error:
            raise GateProblem(f"the {self.method} edit could not be made: {error}") from None
        except (EditError, MendError, UnchangedWeights, DeltaError) as error:
            raise GateProblem(f"the {self.method} edit failed: {error}") from error

    @remembered
    def curve_deltas(self) -> dict[int, Any]:
        """The accumulated (sequential) or batched delta after each count of --editguard-edit-counts, unregularised."""
        from editguard.editing.cache import cached_edit
        from editguard.editing.modes import check_counts, edit_deltas

        base, mode, requests = self.base, self.settings.mode, self.requests
        counts = self.guarded(lambda: check_counts(self.settings.edit_counts, len(requests)))
        computed: dict[int, Any] = {}

        def all_counts() -> dict[int, Any]:
            if not computed:
                computed.update(edit_deltas(
                    mode, base.model, base.tokenizer, list(requests), self.hparams, counts,
                    cache_dir=self.settings.cache_dir, model_fingerprint=base.key,
                ))  # fmt: skip
            return computed

        def delta_after(count: int) -> Any:
            # the full count is the gated edit itself, and in a cumulative mode count k is the edit of the first k
            # requests (the same cache entries); a batch of k is keyed apart from the batch edit of those k
            if self.mode.cumulative:
                material = self._material(requests[:count], mode)
            else:
                material = self._material(requests[:count], mode, None if count == len(requests) else count)
            return self.guarded(lambda: cached_edit(self.settings.cache_dir, material, lambda: all_counts()[count])).outcome.delta

        started = time.perf_counter()
        deltas = {count: delta_after(count) for count in counts}
        reporter().done(f"edit-count curve: the edits after {', '.join(map(str, counts))} requests ready", started)
        return deltas

    @cached_property
    def curve_series(self) -> dict[str, dict[int, Any]]:
        """Series name -> edit count -> delta: unregularised and (with --editguard-rect) with RECT, made once."""
        series = {"plain": dict(self.curve_deltas)}
        if self.settings.rect is not None:
            series[f"RECT {self.settings.rect:.0%}"] = {count: self.regularized(d) for count, d in self.curve_deltas.items()}
        return series

    def quality(self) -> list[tuple[str, Any]]:
        """EasyEdit's reliability, generalisation, locality and portability of every gated edit, on its requests."""
        from editguard.editing.quality import edit_quality

        base = self.base

        def measured(variant: EditVariant) -> Any:
            return self.guarded(lambda: edit_quality(base.model, base.tokenizer, variant.requests, variant.delta))

        gated = self.variants if self.mode.each else self.variants[:1]
        started = time.perf_counter()
        qualities = [(variant.label, measured(variant)) for variant in gated]
        reporter().done(f"edit quality measured on {len(self.requests)} requests", started)
        return qualities
