"""Edited models made elsewhere: an edited checkpoint folder or a safetensors file of weight deltas.

Both become a ``WeightDelta`` over the loaded base after checking that every tensor names a parameter
of the base with the same shape, that every value is finite (a NaN added to a weight silently turns the
scores into chance), and that some weight changes (an all-zero delta would gate the base model itself).
Each refusal is a ``DeltaError`` or ``UnchangedWeights`` naming the file and, where there is one, the tensor.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from editguard.editing.delta import DeltaError, WeightDelta, check_fits, check_values, exact_difference, tied_names, untied
from editguard.editing.quality import check_changed
from editguard.models import safetensors_problem


EXTERNAL_REMEDY = "check that --editguard-edited names the edited model, not the base"


def load_edited(path: Path, base_model: Any, read: WeightDelta | None = None) -> WeightDelta:
    """The delta of the edited model at ``path`` over ``base_model``: it fits, is finite and changes something.
    ``read``: the delta file as ``read_delta_file`` already read it."""
    check_edited_path(path)
    if path.is_dir():
        return _checked(_delta_from_checkpoint(path, base_model), path)
    delta = untied(base_model, read or read_delta_file(path), f"edited model {path}")  # its errors name the file
    try:
        check_fits(base_model, delta)
    except DeltaError as error:
        raise DeltaError(f"edited model {path}: {error}; was it made from this base model?") from None
    return delta


def read_delta_file(path: Path) -> WeightDelta:
    """A delta file read and checked as far as it can be without the base model: finite, and changing something."""
    return _checked(WeightDelta.load(path), path)


def _checked(delta: WeightDelta, path: Path) -> WeightDelta:
    check_values(delta, f"edited model {path}")
    check_changed(delta, f"edited model {path}", EXTERNAL_REMEDY)
    return delta


def check_edited_path(path: Path) -> None:
    """What can be told of ``--editguard-edited`` without the base model: it is a folder or a .safetensors file."""
    if not path.exists():
        raise DeltaError(f"edited model {str(path)!r} does not exist; check --editguard-edited")
    if path.is_dir():
        if not any(path.glob("*.safetensors")):
            raise DeltaError(f"edited checkpoint {str(path)!r} has no .safetensors weights; save it with safe_serialization=True")
        return
    if path.is_file() and path.suffix == ".safetensors":
        why = safetensors_problem(path)
        if why:
            raise DeltaError(f"edited model {str(path)!r} {why}; write weight deltas with safetensors.torch.save_file")
        return
    raise DeltaError(
        f"edited model {str(path)!r} is neither a checkpoint folder nor a .safetensors delta file; check --editguard-edited"
    )


def _delta_from_checkpoint(folder: Path, base_model: Any) -> WeightDelta:
    shards = sorted(folder.glob("*.safetensors"))
    if not shards:
        raise DeltaError(f"edited checkpoint {str(folder)!r} has no .safetensors weights; save it with safe_serialization=True")
    parameters = dict(base_model.named_parameters())
    aliases = tied_names(base_model)
    tensors = {}
    for shard in shards:
        for name, tensor in _tensors(shard).items():
            base = _base_of(shard, name, tensor, parameters, aliases)
            difference = exact_difference(tensor.to(base.dtype), base)  # the edited weight in the base's dtype, exactly
            if name in aliases or bool(difference.any()):  # a tied alias: the difference is checked as its tensor's
                tensors[name] = difference
    changed = {name: tensor for name, tensor in tensors.items() if name not in aliases or bool(tensor.any())}
    return untied(base_model, WeightDelta(changed, {"source": str(folder)}), f"edited checkpoint {folder}")


def _base_of(shard: Path, name: str, tensor: Any, parameters: dict[str, Any], aliases: dict[str, str]) -> Any:
    """The base weight that the checkpoint's tensor ``name`` replaces (a tied alias: its tensor's), on the CPU;
    DeltaError naming the shard when the base lacks it or it is not a float weight of that shape."""
    if aliases.get(name, name) not in parameters:
        raise DeltaError(f"edited checkpoint {str(shard)!r} has tensor {name!r}, which the base model lacks; was it made from this base model?")
    base = parameters[aliases.get(name, name)].detach().to("cpu")
    if tuple(tensor.shape) != tuple(base.shape):
        raise DeltaError(
            f"edited checkpoint {str(shard)!r}: tensor {name!r} has shape {tuple(tensor.shape)}, the base's has "
            f"{tuple(base.shape)}; was it made from this base model?"
        )
    if not tensor.is_floating_point():
        raise DeltaError(
            f"edited checkpoint {str(shard)!r}: tensor {name!r} is {str(tensor.dtype).removeprefix('torch.')}, not floating "
            "point; save the edited model's weights as floats (save_pretrained with safe_serialization=True)"
        )
    return base


def _tensors(shard: Path) -> dict[str, Any]:
    """The tensors of one checkpoint shard; DeltaError naming the shard when it is not a safetensors file."""
    return dict(WeightDelta.load(shard).tensors)
