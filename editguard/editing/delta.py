"""Weight deltas: an edit as ``{parameter name: new - old}``, applied in place and reverted exactly.

Every way of getting an edited model (an editor run, an edited checkpoint, a delta file) ends as a
``WeightDelta`` over the base, so only one model is ever held in memory.  Reverting restores a saved
copy of the touched tensors, so the base comes back bit for bit (``w + d - d`` would not).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from editguard.atomic import atomic_path
from editguard.errors import shown
from editguard.fingerprint import fingerprint_chunks

METADATA_KEY = "editguard"


class DeltaError(ValueError):
    """A delta does not fit the model it is applied to; the message names the tensor."""


@dataclass(frozen=True)
class WeightDelta:
    tensors: Mapping[str, Any]  # name -> torch.Tensor on the CPU, same shape as the parameter
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @cached_property  # hashed once: every output-cache lookup for the edited model asks for it
    def fingerprint(self) -> str:
        from editguard.models import tensor_bytes

        chunks: list[bytes | memoryview | str] = []
        for name in sorted(self.tensors):
            tensor = self.tensors[name]
            chunks += [f"{name}|{tensor.dtype}|{tuple(tensor.shape)}", tensor_bytes(tensor)]
        return fingerprint_chunks(chunks)

    @property
    def changed_parameters(self) -> tuple[str, ...]:
        return tuple(sorted(self.tensors))

    def save(self, path: Path) -> None:
        """Write a safetensors file atomically and fsynced (metadata as JSON in its header)."""
        from safetensors.torch import save_file

        tensors = {name: tensor.contiguous() for name, tensor in self.tensors.items()}
        with atomic_path(path) as staging:
            save_file(tensors, str(staging), metadata={METADATA_KEY: json.dumps(dict(self.metadata))})

    @classmethod
    def load(cls, path: Path) -> WeightDelta:
        """Read a safetensors file; DeltaError naming the file when it is not one (a pickle renamed, say)."""
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as handle:
                tensors = {name: handle.get_tensor(name) for name in handle.keys()}
                header = handle.metadata() or {}
            metadata = json.loads(header.get(METADATA_KEY, "{}"))
        except Exception as error:  # safetensors raises its own error type, or OSError, or a JSON error
            raise DeltaError(
                f"{path} is not a readable safetensors file ({error.__class__.__name__}: {shown(str(error))[1:-1]}); "
                "write weight deltas with safetensors.torch.save_file"
            ) from error
        return cls(tensors, metadata if isinstance(metadata, dict) else {})


def delta_between(before: Mapping[str, Any], model: Any) -> WeightDelta:
    """The change from ``before`` (name -> saved tensor) to the model's current parameters."""
    from editguard.models import value_tensors

    parameters = value_tensors(model)
    tensors = {}
    for name, old in before.items():
        difference = exact_difference(parameters[name], old).to("cpu")
        if bool(difference.any()):
            tensors[name] = difference
    return WeightDelta(tensors)


def exact_difference(new: Any, old: Any) -> Any:
    """``new - old`` on ``new``'s device, in at least float32.

    Two bfloat16 (or float16) weights differ by a number that can need up to 16 more mantissa bits than
    they have: rounded back to half precision, base + delta would not give the edited weight again.  In
    float32 the difference is exact whenever the two are within a factor of 2**16 of each other, and
    ``added`` then rounds base + delta once, to the edited weight itself.  Float32 models are unchanged.
    """
    import torch

    wide = torch.promote_types(new.dtype, torch.float32)
    return new.detach().to(wide) - old.detach().to(new.device, wide)


def added(parameter: Any, tensor: Any) -> Any:
    """``parameter + tensor`` computed in at least float32 on the parameter's device, rounded once to its dtype."""
    import torch

    wide = torch.promote_types(parameter.dtype, torch.float32)
    return (parameter.detach().to(wide) + tensor.to(parameter.device, wide)).to(parameter.dtype)


def relative_sizes(model: Any, delta: WeightDelta) -> dict[str, float]:
    """Per edited tensor, the size of its change against the weight: ``||delta|| / ||weight||`` (Frobenius norms,
    float32).  It grows before an editing method collapses a model (ENCORE, 2025; "Rebuilding ROME", 2024)."""
    import torch

    from editguard.models import value_tensors

    weights = value_tensors(model)
    sizes = {}
    for name in sorted(delta.tensors):
        weight = weights[name].detach().float()
        change = delta.tensors[name].detach().to(weight.device, torch.float32)
        norm = float(torch.linalg.vector_norm(weight))
        sizes[name] = float(torch.linalg.vector_norm(change)) / norm if norm else float("inf")
    return sizes


def check_values(delta: WeightDelta, source: str) -> None:
    """Refuse a delta that is not floating point (an all-ones int8 delta is added as 1.0 to every weight: 50 times
    SmolLM2's weights' size) or holds NaN or inf (added to a weight it silently turns the scores into chance)."""
    import torch

    for name in sorted(delta.tensors):
        tensor = delta.tensors[name]
        if not tensor.is_floating_point():
            raise DeltaError(
                f"{source}: tensor {name!r} is {str(tensor.dtype).removeprefix('torch.')}, not floating point; a weight "
                "delta holds the change of each weight as a float (save edited - base in the weights' dtype or float32)"
            )
        finite = torch.isfinite(tensor if tensor.element_size() > 1 else tensor.float())  # float8: no isfinite of its own
        if not bool(finite.all()):
            bad = int(finite.numel() - finite.sum())
            raise DeltaError(
                f"{source}: tensor {name!r} holds {bad:,} NaN or inf value{'s' if bad > 1 else ''} (of {tensor.numel():,}); "
                "an edit must be finite, so check how it was made"
            )


def tied_names(model: Any) -> dict[str, str]:
    """Each name a tied parameter also goes by (a tied ``lm_head.weight``) -> the name the model lists it under."""
    first: dict[int, str] = {}
    aliases = {}
    for name, parameter in model.named_parameters(remove_duplicate=False):
        if id(parameter) in first:
            aliases[name] = first[id(parameter)]
        else:
            first[id(parameter)] = name
    return aliases


def untied(model: Any, delta: WeightDelta, source: str) -> WeightDelta:
    """``delta`` with each tensor named by a tied alias (``lm_head.weight`` tied to the embeddings) under the name the
    model lists the one tensor by; DeltaError when the delta changes the two names of one tensor differently."""
    import torch

    aliases = {name: canonical for name, canonical in tied_names(model).items() if name in delta.tensors}
    if not aliases:
        return delta
    tensors = {name: tensor for name, tensor in delta.tensors.items() if name not in aliases}
    for alias, canonical in sorted(aliases.items()):
        change = delta.tensors[alias]
        if canonical in tensors and not torch.equal(tensors[canonical], change):  # another shape: not equal either
            raise DeltaError(
                f"{source}: tensor {alias!r} is tied to {canonical!r} in the base model (one tensor), and the edit changes "
                f"them differently; edit {canonical!r} alone, or untie the model's embeddings before editing"
            )
        tensors[canonical] = change
    return WeightDelta(tensors, delta.metadata)


def check_fits(model: Any, delta: WeightDelta) -> None:
    parameters = dict(model.named_parameters())  # shapes only: an offloaded (meta) parameter has its shape
    for name, tensor in delta.tensors.items():
        if name not in parameters:
            raise DeltaError(f"delta tensor {name!r} is not a parameter of the model")
        if tuple(parameters[name].shape) != tuple(tensor.shape):
            raise DeltaError(
                f"delta tensor {name!r} has shape {tuple(tensor.shape)}, the model's has {tuple(parameters[name].shape)}"
            )


@contextlib.contextmanager
def applied(model: Any, delta: WeightDelta) -> Iterator[Any]:
    """The model with ``delta`` added in place, each tensor on the device it lives on (a model split by
    accelerate included) and in its dtype (``added``); the touched tensors are restored exactly on exit."""
    import torch

    from editguard.models import value_tensors

    check_fits(model, delta)
    parameters = value_tensors(model)  # where each weight's values live: its device, or accelerate's offload
    saved = {name: parameters[name].detach().clone() for name in delta.tensors}
    try:
        with torch.no_grad():
            for name, tensor in delta.tensors.items():
                parameters[name].copy_(added(parameters[name], tensor))
        yield model
    finally:
        with torch.no_grad():
            for name, original in saved.items():
                parameters[name].copy_(original)
