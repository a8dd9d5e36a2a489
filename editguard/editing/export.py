"""The edit exported for a serving engine: the edited checkpoint as a folder, and the delta as a LoRA adapter.

An engine (vLLM, SGLang, TGI) serves checkpoints, not editguard's deltas.  ``export_checkpoint`` writes base +
delta as a safetensors checkpoint folder any of them can load.  The edits of ROME and MEMIT are low-rank (one
sequential ROME edit changes one matrix by a rank-one term), so the delta of an edit set is exactly a LoRA
adapter of small rank: ``export_lora`` factors each edited matrix by its singular values and writes the
PEFT layout (``adapter_config.json`` + ``adapter_model.safetensors``), which PEFT and vLLM (``--enable-lora``)
load beside the base model, so one server serves base and edited.  Each factorisation's largest absolute
error against the delta is measured and reported; a delta that is not low-rank (fine-tuning changes whole
matrices at full rank) is refused with a sentence that says so, and the checkpoint is the way to serve it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from editguard.atomic import atomic_folder
from editguard.editing.delta import WeightDelta, applied

RELATIVE_RANK_TOLERANCE = 1e-6  # singular values below this share of the largest are float32 rounding, not signal
MAX_RANK_SHARE = 0.25  # above this share of the matrix's smaller side a factorisation saves little: not low-rank


class ExportError(ValueError):
    """The edit cannot be exported in the asked form; the message names the tensor and the way out."""


@dataclass(frozen=True)
class Factor:
    """One edited matrix as ``B @ A``: ``B`` (out, rank), ``A`` (rank, in), and how well it reproduces the delta."""

    module: str  # the Linear module the parameter belongs to ("model.layers.4.mlp.down_proj")
    down: Any  # A, (rank, in)
    up: Any  # B, (out, rank)
    max_abs_error: float  # max |B @ A - delta|, in float32

    @property
    def rank(self) -> int:
        return int(self.down.shape[0])


@dataclass(frozen=True)
class LoraExport:
    folder: Path
    rank: int
    factors: tuple[Factor, ...]

    @property
    def max_abs_error(self) -> float:
        return max((factor.max_abs_error for factor in self.factors), default=0.0)


def export_checkpoint(model: Any, tokenizer: Any, delta: WeightDelta, folder: Path) -> Path:
    """Write the base with ``delta`` applied as a safetensors checkpoint folder (atomically); the model in memory
    is the base again afterwards."""
    with atomic_folder(folder) as staging, applied(model, delta):
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
    return folder


def factor(module: str, delta: Any) -> Factor:
    """The smallest-rank ``B @ A`` that reproduces a 2-D delta to float32 rounding; ExportError when none is small."""
    import torch

    wide = delta.detach().to("cpu", torch.float64)
    left, values, right = torch.linalg.svd(wide, full_matrices=False)  # (out, k), (k,), (k, in)
    largest = float(values[0]) if values.numel() else 0.0
    rank = max(1, int((values > largest * RELATIVE_RANK_TOLERANCE).sum()))
    if rank > max(1, int(MAX_RANK_SHARE * min(wide.shape))):
        raise ExportError(
            f"the delta of {module}.weight has rank {rank} of at most {min(wide.shape)}: it is not low-rank, so a LoRA "
            "adapter would be as large as the matrix; serve the exported checkpoint instead"
        )
    root = values[:rank].sqrt()  # split the singular values evenly between the two factors
    up = (left[:, :rank] * root).to(torch.float32)  # (out, rank)
    down = (root[:, None] * right[:rank]).to(torch.float32)  # (rank, in)
    error = float((up.double() @ down.double() - wide).abs().max())
    return Factor(module, down.contiguous(), up.contiguous(), error)


def lora_factors(model: Any, delta: WeightDelta) -> tuple[Factor, ...]:
    """One factor per edited weight; ExportError for a tensor a LoRA adapter cannot carry."""
    import torch

    modules = dict(model.named_modules())
    factors = []
    for name in sorted(delta.tensors):
        module, _, leaf = name.rpartition(".")
        if leaf != "weight" or not isinstance(modules.get(module), torch.nn.Linear):
            raise ExportError(
                f"delta tensor {name!r} is not the weight of a Linear layer, which is all a LoRA adapter can change; "
                "serve the exported checkpoint instead"
            )
        factors.append(factor(module, delta.tensors[name]))
    return tuple(factors)


def export_lora(model: Any, delta: WeightDelta, folder: Path, *, base_model: str) -> LoraExport:
    """Write ``delta`` as a PEFT LoRA adapter folder (atomically): one rank for every module (smaller factors
    padded with zeros, which add nothing), ``lora_alpha`` equal to it so that PEFT's scale is exactly 1."""
    factors = lora_factors(model, delta)
    rank = max((f.rank for f in factors), default=1)
    with atomic_folder(folder) as staging:
        _save_adapter(staging, factors, rank)
        config = adapter_config(sorted({f.module.rpartition(".")[2] for f in factors}), rank, base_model, [f.module for f in factors])
        (staging / "adapter_config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return LoraExport(folder, rank, factors)


def adapter_config(targets: list[str], rank: int, base_model: str, modules: list[str]) -> dict[str, Any]:
    """PEFT's ``LoraConfig`` as JSON, restricted to the edited layers."""
    return {
        "peft_type": "LORA", "task_type": "CAUSAL_LM", "base_model_name_or_path": base_model,
        "r": rank, "lora_alpha": rank, "lora_dropout": 0.0, "bias": "none", "fan_in_fan_out": False,
        "target_modules": targets, "layers_to_transform": sorted({_layer(m) for m in modules if _layer(m) is not None}) or None,
        "use_rslora": False, "use_dora": False, "inference_mode": True, "modules_to_save": None,
    }  # fmt: skip


def _layer(module: str) -> int | None:
    """The decoder layer a module sits in (``model.layers.4.mlp.down_proj`` -> 4), or None."""
    numbers = [int(part) for part in module.split(".") if part.isdigit()]
    return numbers[0] if numbers else None


def _save_adapter(folder: Path, factors: tuple[Factor, ...], rank: int) -> None:
    from safetensors.torch import save_file

    tensors: dict[str, Any] = {}
    for f in factors:
        key = f"base_model.model.{f.module}"
        tensors[f"{key}.lora_A.weight"] = _padded(f.down, rank, dim=0)  # (rank, in)
        tensors[f"{key}.lora_B.weight"] = _padded(f.up, rank, dim=1)  # (out, rank)
    save_file(tensors, str(folder / "adapter_model.safetensors"))


def _padded(tensor: Any, rank: int, *, dim: int) -> Any:
    import torch

    missing = rank - tensor.shape[dim]
    if missing == 0:
        return tensor.contiguous()
    shape = list(tensor.shape)
    shape[dim] = missing
    return torch.cat([tensor, tensor.new_zeros(shape)], dim=dim).contiguous()


def describe(export: LoraExport) -> Mapping[str, Any]:
    """What the run log and the JSON say about an adapter."""
    return {
        "folder": str(export.folder), "rank": export.rank, "max_abs_error": export.max_abs_error,
        "modules": {f.module: {"rank": f.rank, "max_abs_error": f.max_abs_error} for f in export.factors},
    }  # fmt: skip
