"""A user's own editor in process: ``--editguard-editor module:function`` (or ``editor`` in ``[tool.editguard]``).

The callable is ``function(model, tokenizer, requests) -> result``: ``model`` and ``tokenizer`` are the loaded base
(transformers objects), ``requests`` a list of ``requests.EditRequest`` (``prompt``, ``subject``, ``target_new``,
``ground_truth``, ``rephrase``, ...).  It may return

- the edited weights: a mapping of parameter name to tensor, the new values of the parameters it changed;
- a ``delta.WeightDelta``: the change itself;
- the model edited in place, or None (as EasyEdit's own editors do).

It gets what a built-in method gets: the modes (one request per call in sequential and single mode, all of them in
one call in batch mode), the edit-count curve, RECT, edit quality and the edit cache, keyed by the callable's name,
its module's source and the requests.  ``CallableRun`` keeps a copy of every parameter on the CPU while the session
is open (the callable may write anywhere), so the model comes back bit for bit; that copy is the model's size.
What the callable returns is checked: only parameters of the model, their shapes, floating point, finite; an import
that fails, a name that is not a callable, a wrong return type, or an exception inside it is one ``EditError``
sentence naming the callable.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import inspect
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from editguard.editing.recipes import EditError, Method
from editguard.editing.requests import EditRequest

RETURNS = "return the edited weights (a dict of parameter name -> tensor), a WeightDelta, or the model edited in place"


def user_editor(spec: str) -> Method:
    """The editor record of ``module:function`` (EditError naming the spec when it cannot be had)."""
    function = load_callable(spec)

    def session(record: Method, model: Any, tokenizer: Any, hparams: Mapping[str, Any], **options: Any) -> CallableRun:
        return CallableRun(function, model, tokenizer, hparams, **options)

    return Method(spec, lambda model: {}, _every_parameter, session, functools.partial(_version, function), batchable=True)


def load_callable(spec: str) -> Callable[..., Any]:
    module_name, _, name = spec.partition(":")
    if not module_name or not name:
        raise EditError(f"--editguard-editor {spec!r} is not module:function; name a callable, e.g. my_editors:rome_main")
    try:
        module = importlib.import_module(module_name)
    except Exception as error:  # ImportError, or any error the module raises while it is imported
        raise EditError(
            f"--editguard-editor {spec!r}: module {module_name!r} cannot be imported ({type(error).__name__}: {error}); "
            "put it on the Python path (the working directory is, or install it)"
        ) from error
    function = getattr(module, name, None)
    if not callable(function):
        found = "has no" if function is None else f"has a {type(function).__name__} named, not a callable"
        raise EditError(f"--editguard-editor {spec!r}: module {module_name!r} {found} {name!r}; name a function(model, tokenizer, requests)")
    return function  # type: ignore[no-any-return]


def _version(function: Callable[..., Any]) -> str:
    """The callable's name, its package's version and a digest of its module's source: a changed editor is a new key."""
    module = inspect.getmodule(function)
    source = inspect.getsourcefile(function) if module is not None else None
    digest = hashlib.sha256(Path(source).read_bytes()).hexdigest()[:16] if source and Path(source).is_file() else "unknown"
    version = getattr(module, "__version__", None)
    return f"{getattr(function, '__qualname__', function)!s} ({'version ' + str(version) + ', ' if version else ''}source {digest})"


def _every_parameter(model: Any, hparams: dict[str, Any]) -> list[str]:
    """A user's editor declares nothing in advance: it may change any parameter, and nothing else."""
    return [name for name, _ in model.named_parameters()]


class CallableRun:
    """An edit session (``editors.EditSession``) over a user's callable."""

    def __init__(
        self, function: Callable[..., Any], model: Any, tokenizer: Any, hparams: Mapping[str, Any], *, seed: int = 0,
        cache_dir: Path | None = None, model_fingerprint: str | None = None,
    ) -> None:  # fmt: skip
        self.function, self.model, self.tokenizer, self.seed = function, model, tokenizer, seed
        self.name = str(hparams.get("alg_name", getattr(function, "__name__", "the editor")))

    def __enter__(self) -> CallableRun:
        import torch

        self._rng = torch.random.fork_rng(devices=[])
        self._rng.__enter__()
        self._saved = {name: p.detach().to("cpu", copy=True) for name, p in self.model.named_parameters()}
        self._flags = {name: p.requires_grad for name, p in self.model.named_parameters()}
        self._training = self.model.training
        self.restart()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        try:
            self._put_back()
            for name, parameter in self.model.named_parameters():
                parameter.requires_grad_(self._flags.get(name, parameter.requires_grad))
            self.model.train(self._training)
        finally:
            self._rng.__exit__(kind, error, trace)

    def restart(self) -> None:
        import torch

        self._put_back()
        torch.manual_seed(self.seed)

    def apply(self, requests: Sequence[EditRequest]) -> list[dict[str, Any]]:
        return [metrics for request in requests for metrics in self._called([request])]

    def apply_batch(self, requests: Sequence[EditRequest]) -> list[dict[str, Any]]:
        return self._called(requests)

    def delta(self) -> Any:
        from editguard.editing.delta import WeightDelta, exact_difference

        current = self._parameters()
        changed = {name: exact_difference(current[name].detach().to("cpu"), self._saved[name]) for name in self._changed()}
        return WeightDelta(changed, {"editor": self.name})

    # ------------------------------------------------------------------ internals

    def _called(self, requests: Sequence[EditRequest]) -> list[dict[str, Any]]:
        started = time.perf_counter()
        before = self._sums()
        try:
            result = self.function(self.model, self.tokenizer, list(requests))
        except Exception as error:
            raise EditError(
                f"the editor {self.name} raised {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''} "
                f"on {len(requests)} request(s) (run with -v for the traceback)"
            ) from error
        self._write(self._changes(result))
        seconds = (time.perf_counter() - started) / max(1, len(requests))
        changed = self._sums() != before
        return [{"editguard": {"weights_changed": changed, "seconds": seconds}} for _ in requests]

    def _sums(self) -> dict[str, int]:
        """A sum of each parameter's bit patterns: any change of one element changes it."""
        import torch

        views = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}
        return {
            name: int(torch.sum(p.detach().reshape(-1).view(views[p.element_size()]), dtype=torch.int64))
            for name, p in self.model.named_parameters()
        }

    def _changes(self, result: Any) -> dict[str, Any]:
        """The new values the callable's result gives, checked (an edit in place gives none to write)."""
        from editguard.editing.delta import WeightDelta, added

        if result is None or result is self.model:
            return {}
        parameters = self._parameters()
        if isinstance(result, WeightDelta):
            self._check(result.tensors, "a WeightDelta")
            return {name: added(parameters[name], tensor) for name, tensor in result.tensors.items()}
        if isinstance(result, Mapping):
            self._check(result, "edited weights")
            return dict(result)
        raise EditError(f"the editor {self.name} returned {type(result).__name__}; {RETURNS}")

    def _check(self, tensors: Mapping[str, Any], what: str) -> None:
        import torch

        parameters = self._parameters()
        for name, tensor in tensors.items():
            if name not in parameters:
                raise EditError(f"the editor {self.name} returned {what} with {name!r}, which is not a parameter of the model; change parameters only")
            if not isinstance(tensor, torch.Tensor) or not tensor.is_floating_point():
                raise EditError(f"the editor {self.name} returned {what} whose {name!r} is {type(tensor).__name__}, not a floating-point tensor; {RETURNS}")
            if tuple(tensor.shape) != tuple(parameters[name].shape):
                raise EditError(f"the editor {self.name} returned {what} whose {name!r} has shape {tuple(tensor.shape)}, the model's has {tuple(parameters[name].shape)}")
            if not bool(torch.isfinite(tensor).all()):
                raise EditError(f"the editor {self.name} returned {what} whose {name!r} holds NaN or inf; an edit must be finite")

    def _write(self, values: Mapping[str, Any]) -> None:
        import torch

        parameters = self._parameters()
        with torch.no_grad():
            for name, value in values.items():
                parameters[name].copy_(value.to(parameters[name].device, parameters[name].dtype))

    def _parameters(self) -> dict[str, Any]:
        return dict(self.model.named_parameters())

    def _changed(self) -> list[str]:
        """The parameters that differ from the session's start."""
        current = self._parameters()
        return sorted(name for name, saved in self._saved.items() if not bool(current[name].detach().to("cpu").equal(saved)))

    def _put_back(self) -> None:
        import torch

        parameters = self._parameters()
        with torch.no_grad():
            for name in self._changed():
                parameters[name].copy_(self._saved[name])
