"""RECT: keep only the largest relative changes of an edit, the remedy of Gu et al. (2024).

"Model Editing Can Hurt General Abilities of Large Language Models" regularises each edit's update
``ΔW``: rank its entries by relative change ``|ΔW / W|``, keep the top ``k`` (40% recommended) and
zero the rest before the update is added.  ``regularize`` does that to a ``WeightDelta`` and returns a
new one; nothing given to it is changed.

Decisions the paper leaves open, fixed here so the result is reproducible:

- How many: exactly ``ceil(k × numel)`` entries per tensor (at least one), the product rounded to 6
  decimals first so that 0.7 × 10 keeps 7 entries, not 8 (0.7 × 10 is 7.000000000000001 in floats).
- Zero weights: an entry whose weight is 0 and whose delta is not has an infinite relative change and
  is kept first; an entry where both are 0 ranks last.  The authors' reference code divides with numpy
  and keeps the same entries (``x / 0`` is ``inf``).
- Ties: broken by flat (row-major) index, lower index kept, through a stable sort, so the same delta
  and weights give the same result whatever the hardware.
- Which ``W``: the weights the delta is added to.  Given the accumulated delta of several sequential
  edits, RECT is applied once to that sum; the paper applies it to each edit against the weights
  before that edit.  Regularise each edit's delta as it is made to follow the paper exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from editguard.editing.delta import DeltaError, WeightDelta

DEFAULT_KEEP_FRACTION = 0.4  # the paper's recommended k
OPTION = "--editguard-rect"  # the command-line option that sets the fraction

# A parameter's base weight by name: a mapping, a model (``named_parameters``) or a function.
BaseWeights = Mapping[str, Any] | Callable[[str], Any]


def check_keep_fraction(value: float) -> float:
    """The fraction itself when it lies in (0, 1]; a ValueError naming the option otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise ValueError(
            f"{OPTION} must be a fraction in (0, 1], got {value!r}; "
            f"{DEFAULT_KEEP_FRACTION} keeps the {DEFAULT_KEEP_FRACTION:.0%} largest relative changes"
        )
    return float(value)


def kept_count(keep_fraction: float, numel: int) -> int:
    """How many entries of a tensor with ``numel`` entries RECT keeps."""
    if numel == 0:
        return 0
    return max(1, math.ceil(round(keep_fraction * numel, 6)))


def regularize(delta: WeightDelta, base_weights: BaseWeights, keep_fraction: float = DEFAULT_KEEP_FRACTION) -> WeightDelta:
    """A new delta with, per tensor, only the ``keep_fraction`` largest ``|delta / weight|`` entries."""
    fraction = check_keep_fraction(keep_fraction)
    weight_of = _weight_lookup(base_weights)
    tensors = {name: _keep_largest(name, tensor, weight_of(name), fraction) for name, tensor in delta.tensors.items()}
    return WeightDelta(tensors, {**delta.metadata, "rect_keep_fraction": fraction})


def relative_change(delta: Any, weight: Any) -> Any:
    """``|delta / weight|`` in at least float32; ``inf`` where only the weight is 0, 0 where both are."""
    import torch

    dtype = torch.promote_types(delta.dtype, torch.float32)
    ratio = delta.detach().abs().to(dtype) / weight.detach().to(delta.device, dtype).abs()
    return torch.where(torch.isnan(ratio), torch.zeros_like(ratio), ratio)


def _keep_largest(name: str, delta: Any, weight: Any, fraction: float) -> Any:
    import torch

    if tuple(weight.shape) != tuple(delta.shape):
        raise DeltaError(f"delta tensor {name!r} has shape {tuple(delta.shape)}, its base weight has {tuple(weight.shape)}")
    ratio = relative_change(delta, weight).flatten()  # (numel,)
    order = torch.sort(ratio, descending=True, stable=True).indices  # ties: lower index first
    keep = torch.zeros(ratio.numel(), dtype=torch.bool, device=delta.device)
    keep[order[: kept_count(fraction, ratio.numel())]] = True
    return torch.where(keep.view(delta.shape), delta, torch.zeros_like(delta))


def _weight_lookup(base_weights: BaseWeights) -> Callable[[str], Any]:
    """One way to ask for a base weight by name, whatever form the caller had it in."""
    if isinstance(base_weights, Mapping):
        return _from_mapping(base_weights)
    if hasattr(base_weights, "named_parameters"):  # a model; checked before callable, a module is callable
        return _from_mapping(dict(base_weights.named_parameters()))
    return base_weights


def _from_mapping(weights: Mapping[str, Any]) -> Callable[[str], Any]:
    def weight_of(name: str) -> Any:
        if name not in weights:
            raise DeltaError(f"delta tensor {name!r} has no base weight; RECT needs the weights the delta is added to")
        return weights[name]

    return weight_of
