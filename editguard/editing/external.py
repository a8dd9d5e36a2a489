"""Edited models made elsewhere: an edited checkpoint folder or a safetensors file of weight deltas.

Both become a ``WeightDelta`` over the loaded base after checking that every tensor names a parameter
of the base with the same shape.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from editguard.editing.delta import DeltaError, WeightDelta, check_fits


def load_edited(path: Path, base_model: Any) -> WeightDelta:
    if path.is_dir():
        return _delta_from_checkpoint(path, base_model)
    if path.is_file() and path.suffix == ".safetensors":
        delta = WeightDelta.load(path)
        check_fits(base_model, delta)
        return delta
    raise DeltaError(
        f"edited model {str(path)!r} is neither a checkpoint folder nor a .safetensors delta file; check --editguard-edited"
    )


def _delta_from_checkpoint(folder: Path, base_model: Any) -> WeightDelta:
    from safetensors.torch import load_file

    shards = sorted(folder.glob("*.safetensors"))
    if not shards:
        raise DeltaError(f"edited checkpoint {str(folder)!r} has no .safetensors weights; save it with safe_serialization=True")
    parameters = dict(base_model.named_parameters())
    tensors = {}
    for shard in shards:
        for name, tensor in load_file(str(shard)).items():
            if name not in parameters:
                if name.endswith("lm_head.weight"):  # tied to the embeddings in the base
                    continue
                raise DeltaError(f"edited checkpoint {str(shard)!r} has tensor {name!r}, which the base model lacks")
            base = parameters[name].detach().to("cpu")
            if tuple(tensor.shape) != tuple(base.shape):
                raise DeltaError(
                    f"edited checkpoint tensor {name!r} has shape {tuple(tensor.shape)}, the base's has {tuple(base.shape)}"
                )
            difference = tensor.to(base.dtype) - base
            if bool(difference.any()):
                tensors[name] = difference
    return WeightDelta(tensors, {"source": str(folder)})
