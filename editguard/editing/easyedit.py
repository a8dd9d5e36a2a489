"""The EasyEdit adapter: run an EasyEdit method on an in-memory model and return the weight delta.

Owns the conversation with ``easyeditor`` and the book-keeping it leaves to its caller: its
module-level caches, its padding side, its prints and progress bars, the ``requires_grad`` flags it
clears, the covariance statistics MEMIT would download.  ``EditRun`` holds one conversation; the
model comes back bit for bit as it was, and each edit is returned as a ``WeightDelta`` with EasyEdit's
own per-request metrics.  What each method needs (defaults, touched parameters, YAML overrides)
lives in ``methods`` (which methods exist, in ``registry``); its public names are re-exported here.

What easyeditor 0.0.1.dev0 does that this module undoes or works around:

- ``BaseEditor.edit`` undoes every KN edit right after measuring it (it calls KN's "unpatch" function
  whatever ``keep_original_weight`` says): KN's apply function is wrapped so the edit stays.
- KN looks the target and ground truth up without the leading space that ROME, MEMIT and FT add
  themselves ("space required for correct tokenization").  Left as shipped, so that KN is EasyEdit's
  KN: adding the space did not edit better on the demo edits (0 of 3 against 1 of 3 on SmolLM2).
- ``edit`` forces ``batch_size`` to 1; ``batch_edit`` chunks by it, so batch mode sets it to the
  number of requests.  ``batch_edit`` raises a TypeError given locality inputs: none are passed.
- ROME, MEMIT and FT set ``requires_grad`` on the model's parameters and leave it so: restored here.
- It chooses code paths by substrings of the model's name; it is told the architecture family.
"""

from __future__ import annotations

import contextlib
import io
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from editguard.editing import memit_stats
from editguard.editing.delta import WeightDelta, delta_between
from editguard.editing.recipes import EditError, EditOutcome, Method, easyedit_model_name, model_layout, needs_statistics
from editguard.editing.quality import check_changed
from editguard.editing.requests import EditRequest
from editguard.models import normalise_tokenizer, padding_side
from editguard.progress import reporter

__all__ = ["EditError", "EditOutcome", "EditRun"]


def _reset_caches() -> None:
    """ROME and MEMIT cache context templates and covariances per process, whatever the model: drop them."""
    import sys

    for module_name, attribute in (
        ("easyeditor.models.rome.rome_main", "CONTEXT_TEMPLATES_CACHE"),
        ("easyeditor.models.memit.memit_main", "CONTEXT_TEMPLATES_CACHE"),
    ):
        module = sys.modules.get(module_name)
        if module is not None:
            setattr(module, attribute, None)
    for module_name, attribute in (("easyeditor.models.rome.compute_u", "inv_mom2_cache"), ("easyeditor.models.memit.memit_main", "COV_CACHE")):
        module = sys.modules.get(module_name)
        if module is not None:
            getattr(module, attribute).clear()


# ----------------------------------------------------------------------------- running easyeditor




class EditRun:
    """One conversation with easyeditor about one model; on exit the model is exactly as it was.

    Inside the ``with`` block, ``apply`` edits request after request (each on top of the last),
    ``apply_batch`` edits several in one call, ``delta`` is the change since the start and ``restart``
    puts the model back to the start (caches dropped, RNG re-seeded, so a restarted edit equals a
    fresh run's).  Parameters outside the method's declared set are checksummed on entry and exit: a
    method that changed one raises EditError instead of leaving the base model silently altered.
    """

    def __init__(
        self, model: Any, tokenizer: Any, hparams: dict[str, Any], *, record: Method, seed: int = 0,
        cache_dir: Path | None = None, model_fingerprint: str | None = None,
    ) -> None:  # fmt: skip
        self.model, self.tokenizer, self.seed = model, tokenizer, seed
        self.record = record
        self.hparams = dict(hparams)
        self.cache_dir, self.model_fingerprint = cache_dir, model_fingerprint
        self.statistics: memit_stats.StatsFiles | None = None
        self._stack = contextlib.ExitStack()
        self.applied = 0  # requests edited since the base (numbers the progress lines)

    def __enter__(self) -> Self:
        import torch

        from editguard.editing.easyedit_compat import import_easyeditor

        easyeditor = import_easyeditor()
        self._prepare_statistics()
        names = self.record.touched(self.model, self.hparams)
        self._saved = _snapshot(self.model, names)
        self._flags = {name: parameter.requires_grad for name, parameter in self.model.named_parameters()}
        self._training = self.model.training
        self._checksums = _checksums(self.model, skip=set(names))
        self._stack.enter_context(torch.random.fork_rng(devices=[]))
        normalise_tokenizer(self.tokenizer)  # no token_type_ids, a pad token (load_model did it; a caller's own may not)
        self._stack.enter_context(padding_side(self.tokenizer, "right"))  # EasyEdit pads per method; put it back
        self._stack.enter_context(_captured_output())
        try:
            self.editor = self._editor(easyeditor)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        self.restart()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        try:
            self._stack.close()
        finally:
            self.restart(reseed=False)
            for name, parameter in self.model.named_parameters():
                parameter.requires_grad_(self._flags.get(name, parameter.requires_grad))
            self.model.train(self._training)
        if exc_type is None:
            self._check_untouched()

    def restart(self, *, reseed: bool = True) -> None:
        import torch

        _restore(self.model, self._saved)
        _reset_caches()
        self.applied = 0
        if reseed:
            torch.manual_seed(self.seed)

    def delta(self) -> WeightDelta:
        return delta_between(self._saved, self.model)

    def apply(self, requests: Sequence[EditRequest]) -> list[dict[str, Any]]:
        """Edit one request after another (keep_original_weight=False: each on top of the last)."""
        metrics = []
        numbered = reporter().each(requests, f"{self.record.name} edit", describe=_prompt_of, first=self.applied + 1)
        for request in numbered:  # a progress line or bar per request
            self.applied += 1
            self._check_request(request)
            before = {name: parameter.detach().clone() for name, parameter in self._parameters().items()}
            started = time.perf_counter()
            with self._failures_named(repr(request.prompt)):
                result, _, _ = self.editor.edit(**_edit_arguments([request], extras=True), keep_original_weight=False, verbose=False)
            metrics.append(self._with_notes(_plain(result[0]), before, time.perf_counter() - started))
        return metrics

    def apply_batch(self, requests: Sequence[EditRequest]) -> list[dict[str, Any]]:
        """Edit all ``requests`` in one call of easyeditor's ``batch_edit``."""
        if not self.record.batchable:
            raise EditError(f"{self.record.name} edits one fact per call; use sequential mode, or a method that edits in batches")
        for request in requests:
            self._check_request(request)
        before = {name: parameter.detach().clone() for name, parameter in self._parameters().items()}
        self.editor.hparams.batch_size = len(requests)  # batch_edit edits in chunks of batch_size
        started = time.perf_counter()
        with self._failures_named(f"a batch of {len(requests)} requests"):
            results, _, _ = self.editor.batch_edit(**_edit_arguments(requests, extras=False), keep_original_weight=False, verbose=False)
        reporter().done(f"{self.record.name} batch edit of {len(requests)} requests", started)
        seconds = (time.perf_counter() - started) / len(requests)
        return [self._with_notes(_plain(result), before, seconds) for result in results]

    # --------------------------------------------------------------------- internals

    def _editor(self, easyeditor: Any) -> Any:
        hparams_class = getattr(easyeditor, self.record.hparams_class)
        fields = set(hparams_class.__dataclass_fields__)
        unknown = sorted(set(self.hparams) - fields - {"model_name"})
        if unknown:
            raise EditError(f"{self.record.name} has no hyper-parameter {unknown[0]!r}; its fields are {', '.join(sorted(fields))}")
        try:
            params = hparams_class(**{**self.hparams, "model_name": (self.model, self.tokenizer)})
        except TypeError as error:  # a required field is missing (an architecture without defaults)
            raise EditError(f"{self.record.name} hyper-parameters are incomplete: {error}; add it to --editguard-hparams") from None
        editor = easyeditor.BaseEditor.from_hparams(params)
        editor.model_name = params.model_name = easyedit_model_name(self.model)
        if self.record.name == "KN":  # KN knows three families by name; it is told this model's modules instead
            params.editguard_kn_attributes = model_layout(self.model).kn_attributes()
        editor.apply_algo = self.record.wrap_apply(editor.apply_algo)
        return editor

    def _prepare_statistics(self) -> None:
        """Point MEMIT (or ROME with mom2_adjustment) at covariance statistics it will not download."""
        if not needs_statistics(self.hparams):
            return
        if self.hparams["mom2_dataset"] in memit_stats.CORPORA:
            self._compute_statistics()
            return
        missing = [memit_stats.stats_file(Path(self.hparams["stats_dir"]), self.model, self.hparams, module)
                   for module in memit_stats.rewritten_modules(self.hparams)]  # fmt: skip
        missing = [file for file in missing if not file.is_file()]
        if missing:
            raise EditError(
                f"{self.record.name} needs covariance statistics {str(missing[0])!r}, which do not exist, and easyeditor "
                f"would download {self.hparams['mom2_dataset']!r} to make them; set mom2_dataset to "
                f"{' or '.join(memit_stats.CORPORA)} to compute them from local text"
            )

    def _compute_statistics(self) -> None:
        from editguard.models import weights_fingerprint
        from editguard.atomic import default_cache_dir

        cache_dir = self.cache_dir or default_cache_dir()
        fingerprint = self.model_fingerprint or weights_fingerprint(self.model)
        try:
            self.statistics = memit_stats.ensure_stats(self.model, self.tokenizer, self.hparams, cache_dir, fingerprint)
        except memit_stats.StatsError as error:
            raise EditError(str(error)) from None
        self.hparams["stats_dir"] = str(self.statistics.stats_dir)

    @contextlib.contextmanager
    def _failures_named(self, what: str) -> Iterator[None]:
        """An exception from deep inside easyeditor becomes one EditError naming the method and the request.
        easyeditor's own forward passes use transformers' old argument names (``past_key_values``), which 5.25
        warns about on every call: that is easyeditor's business, kept out of the user's log."""
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=r"`past_key_values`.* deprecated", category=FutureWarning)
                yield
        except Exception as error:
            from editguard.errors import innermost_frame

            where = innermost_frame(error, "easyeditor")
            raise EditError(
                f"{self.record.name} failed inside easyeditor on {what}"
                + (f" at {where}" if where else "")
                + f": {type(error).__name__}: {_first_line(error)}; check the method's hyper-parameters for this model "
                "(run with -v for the full traceback)"
            ) from error

    def _check_request(self, request: EditRequest) -> None:
        if self.record.needs_ground_truth and not request.ground_truth:
            raise EditError(f"{self.record.name} needs the request's ground_truth (the answer it finds neurons for): {request.prompt!r}")

    def _parameters(self) -> dict[str, Any]:
        parameters = dict(self.model.named_parameters())
        return {name: parameters[name] for name in self._saved}

    def _with_notes(self, metrics: dict[str, Any], before: dict[str, Any], seconds: float) -> dict[str, Any]:
        changed = any(not bool(before[name].equal(parameter)) for name, parameter in self._parameters().items())
        return {**metrics, "editguard": {"weights_changed": changed, "seconds": seconds}}

    def _check_untouched(self) -> None:
        after = _checksums(self.model, skip=set(self._saved))
        changed = sorted(name for name in set(after) | set(self._checksums) if after.get(name) != self._checksums.get(name))
        if changed:
            raise EditError(
                f"{self.record.name} changed parameter {changed[0]!r}, outside the parameters editguard restores "
                f"({len(changed)} in all); the base model in memory is no longer the base: reload it"
            )


def _edit_arguments(requests: Sequence[EditRequest], *, extras: bool) -> dict[str, Any]:
    """Keyword arguments of easyeditor's edit/batch_edit; ``extras``: locality and portability inputs too."""
    arguments: dict[str, Any] = {
        "prompts": [request.prompt for request in requests],
        "target_new": [request.target_new for request in requests],
        "ground_truth": [request.ground_truth or "<|endoftext|>" for request in requests],
        "rephrase_prompts": _all_or_none(requests, "rephrase"),
        "subject": [request.subject for request in requests],
    }
    if extras:
        arguments["locality_inputs"] = _inputs(requests, "neighborhood", "locality_prompt", "locality_answer")
        arguments["portability_inputs"] = _inputs(requests, "one_hop", "portability_prompt", "portability_answer")
    return arguments


def _all_or_none(requests: Sequence[EditRequest], field: str) -> list[str] | None:
    values = [getattr(request, field) for request in requests]
    return values if all(values) else None


def _inputs(requests: Sequence[EditRequest], key: str, prompt: str, answer: str) -> dict[str, Any] | None:
    prompts, answers = _all_or_none(requests, prompt), _all_or_none(requests, answer)
    return {key: {"prompt": prompts, "ground_truth": answers}} if prompts and answers else None


def _plain(value: Any) -> Any:
    """EasyEdit's metrics hold numpy scalars and the request dict; keep JSON-able numbers and text."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items() if key != "requested_rewrite"}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if hasattr(value, "item"):
        return value.item()
    return value


def _snapshot(model: Any, names: list[str]) -> dict[str, Any]:
    parameters = dict(model.named_parameters())
    missing = [name for name in names if name not in parameters]
    if missing:
        raise EditError(f"the model has no parameter {missing[0]!r}; fix the module templates in --editguard-hparams")
    offloaded = [name for name in names if parameters[name].is_meta]
    if offloaded:
        raise EditError(
            f"easyeditor edits weights in place, and {offloaded[0]!r} is offloaded by the device map (no device holds it); "
            "map that layer to a device in --editguard-device-map, or make the edit elsewhere and pass --editguard-edited"
        )
    return {name: parameters[name].detach().clone() for name in names}


def _restore(model: Any, saved: dict[str, Any]) -> None:
    import torch

    parameters = dict(model.named_parameters())
    with torch.no_grad():
        for name, tensor in saved.items():
            parameters[name].copy_(tensor)


def _checksums(model: Any, skip: set[str]) -> dict[str, int]:
    """A sum of each parameter's bit patterns: any change of one element changes it."""
    import torch

    from editguard.models import value_tensors

    views = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}
    sums = {}
    for name, parameter in value_tensors(model).items():  # offloaded weights where accelerate keeps them
        if name not in skip:
            bits = parameter.detach().reshape(-1).view(views[parameter.element_size()])
            sums[name] = int(torch.sum(bits, dtype=torch.int64))
    return sums


@contextlib.contextmanager
def _captured_output() -> Iterator[io.StringIO]:
    """EasyEdit prints every optimisation step and draws progress bars; keep them off the user's terminal."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
        yield buffer


def _prompt_of(request: EditRequest) -> str:
    return repr(request.prompt if len(request.prompt) <= 60 else request.prompt[:60] + "...")


def _first_line(error: BaseException, limit: int = 300) -> str:
    """An exception's message, cut to one line of at most ``limit`` characters (a prompt may be huge)."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return text if len(text) <= limit else text[: limit - 3] + "..."
