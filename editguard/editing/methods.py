"""Edit methods: what each EasyEdit method needs to edit a given model, and nothing about running it.

A ``Method`` record per name of ``registry.METHODS`` (``METHODS``) carries that registry record (its
easyeditor hyper-parameter class, whether it edits several facts in one call), default hyper-parameters
derived from the model's config, which parameters it may change (so that the runner can snapshot and
restore exactly those), and the correction its apply function needs.  ``resolve_hparams`` lays an
EasyEdit-style YAML file over the defaults.

Defaults are EasyEdit's published settings per architecture family (GPT-2 XL for GPT-2-like models,
Llama-2-7B for Llama, Mistral and Qwen2), with the layers scaled by depth:

- ROME: one MLP output projection at 35% (GPT-2) / 15% (Llama) of depth; no covariance statistics.
- MEMIT: up to five consecutive layers, ending at ROME's layer for GPT-2 (GPT-2 XL: 13-17), starting
  at it for Llama (Llama-2: 4-8); covariance statistics from local text (``memit_stats``).
- FT: one MLP output projection, 25 Adam steps at 5e-4; GPT-2 layer 0 within ±5e-4 of the weights
  (FT-L), Llama at 21/32 of depth, unconstrained.
- KN: integrated gradients with 20 steps for GPT-2 and 1 step for Llama; it searches every layer.

EasyEdit YAML files write ``5e-4`` for floats, which YAML 1.1 reads as a string; EasyEdit converts
such strings itself, and so does ``resolve_hparams``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from editguard.editing import memit_stats, registry
from editguard.editing.registry import MethodInfo

STATS_IN_CACHE = "editguard-cache"  # stats_dir placeholder: local-corpus statistics always go to editguard's cache


class EditError(RuntimeError):
    """An edit could not be configured or computed; the message says why and what to change."""


# ----------------------------------------------------------------------------- defaults per architecture

# Module names per architecture family, as EasyEdit's templates spell them.
_LAYOUTS: dict[str, dict[str, str]] = {
    "gpt2": {
        "rewrite_module_tmp": "transformer.h.{}.mlp.c_proj",
        "layer_module_tmp": "transformer.h.{}",
        "mlp_module_tmp": "transformer.h.{}.mlp",
        "attn_module_tmp": "transformer.h.{}.attn",
        "ln_f_module": "transformer.ln_f",
        "lm_head_module": "lm_head",
    },
    "llama": {
        "rewrite_module_tmp": "model.layers.{}.mlp.down_proj",
        "layer_module_tmp": "model.layers.{}",
        "mlp_module_tmp": "model.layers.{}.mlp",
        "attn_module_tmp": "model.layers.{}.self_attn",
        "ln_f_module": "model.norm",
        "lm_head_module": "lm_head",
    },
}
_FAMILIES = {"gpt2": "gpt2", "llama": "llama", "mistral": "llama", "qwen2": "llama"}
# Where the fact is stored, as a fraction of depth: ROME's papers edit GPT-2 XL at 17/48, Llama at ~5/32.
_EDIT_DEPTH = {"gpt2": 0.35, "llama": 0.15}
# EasyEdit's published MEMIT settings for GPT-2 XL and Llama-2-7B, by family.
_MEMIT = {
    "gpt2": {"v_num_grad_steps": 20, "v_weight_decay": 0.5, "clamp_norm_factor": 0.75, "mom2_update_weight": 20000},
    "llama": {"v_num_grad_steps": 25, "v_weight_decay": 1e-3, "clamp_norm_factor": 4, "mom2_update_weight": 15000},
}
MEMIT_WINDOW = 5  # MEMIT spreads an edit over up to five consecutive layers (GPT-2 XL 13-17, Llama-2 4-8)
# EasyEdit's FT settings: GPT-2 XL layer 0 within ±5e-4 of the weights; Llama-2-7B layer 21 of 32, unconstrained.
_FT: dict[str, dict[str, Any]] = {
    "gpt2": {"depth": 0.0, "norm_constraint": 5e-4, "rewrite_module_tmp": "transformer.h.{}.mlp.c_proj"},
    "llama": {"depth": 21 / 32, "norm_constraint": False, "rewrite_module_tmp": "model.layers.{}.mlp.down_proj.weight"},
}
# EasyEdit's KN settings: integrated gradients over 20 steps for GPT-2 XL, 1 step for Llama-2-7B.
_KN = {"gpt2": {"steps": 20, "batch_size": 20}, "llama": {"steps": 1, "batch_size": 1}}


def _family(config: Any) -> str:
    family = _FAMILIES.get(getattr(config, "model_type", ""))
    if family is None:
        raise EditError(
            f"no default EasyEdit hyper-parameters for model type {config.model_type!r}; "
            f"pass --editguard-hparams FILE.yaml (known types: {', '.join(sorted(_FAMILIES))})"
        )
    return family


def _layout(family: str, config: Any) -> dict[str, str]:
    """Module names; with tied embeddings the output matrix is the embedding's (no lm_head.weight parameter)."""
    tied = {"gpt2": "transformer.wte", "llama": "model.embed_tokens"}
    head = tied[family] if getattr(config, "tie_word_embeddings", False) else "lm_head"
    return {**_LAYOUTS[family], "lm_head_module": head}


def _edit_layer(family: str, depth: int) -> int:
    return int(_EDIT_DEPTH[family] * depth)


def rome_defaults(config: Any) -> dict[str, Any]:
    """ROME hyper-parameters for this architecture (EasyEdit's published settings, scaled by depth)."""
    family = _family(config)
    layers = config.num_hidden_layers
    return {
        "alg_name": "ROME",
        "layers": [_edit_layer(family, layers)],
        "fact_token": "subject_last",
        "v_num_grad_steps": 20,
        "v_lr": 0.5,
        "v_loss_layer": layers - 1,
        "v_weight_decay": 0.5 if family == "gpt2" else 1e-3,
        "clamp_norm_factor": 4,
        "kl_factor": 0.0625,
        # Without covariance statistics ROME uses the raw key; True computes them as for MEMIT
        # (set mom2_dataset to a local corpus then).  ROME never reads lm_head_module.
        "mom2_adjustment": False,
        "context_template_length_params": [[5, 10], [10, 10]],
        **_LAYOUTS[family],
        "mom2_dataset": "wikipedia",
        "mom2_n_samples": 100000,
        "mom2_dtype": "float32",
        "stats_dir": "data/stats",
        "max_length": 40,
        "model_parallel": False,
    }


def memit_layers(family: str, depth: int) -> list[int]:
    """Up to five layers around ROME's: ending at it for GPT-2 (13-17 in GPT-2 XL), from it for Llama (4-8)."""
    anchor = _edit_layer(family, depth)
    width = min(MEMIT_WINDOW, max(1, depth // 6))
    first = max(0, anchor - width + 1) if family == "gpt2" else min(anchor, depth - width)
    return list(range(first, first + width))


def memit_defaults(config: Any) -> dict[str, Any]:
    """MEMIT hyper-parameters: EasyEdit's per family, statistics from local text (see memit_stats)."""
    family = _family(config)
    layers = config.num_hidden_layers
    return {
        "alg_name": "MEMIT",
        "layers": memit_layers(family, layers),
        "layer_selection": "all",
        "fact_token": "subject_last",
        "v_lr": 0.5,
        "v_loss_layer": layers - 1,
        "kl_factor": 0.0625,
        "mom2_adjustment": True,
        **_MEMIT[family],
        **_layout(family, config),
        "mom2_dataset": memit_stats.GENERATED,
        "mom2_n_samples": 128,
        "mom2_dtype": "float32",
        "stats_dir": STATS_IN_CACHE,
        "max_length": 40,
        "batch_size": 1,
        "model_parallel": False,
    }


def ft_defaults(config: Any) -> dict[str, Any]:
    """FT hyper-parameters: one MLP output projection, 25 Adam steps at 5e-4 (EasyEdit's)."""
    family = _family(config)
    settings = _FT[family]
    return {
        "alg_name": "FT",
        "layers": [int(settings["depth"] * config.num_hidden_layers)],
        "num_steps": 25,
        "lr": 5e-4,
        "weight_decay": 0,
        "kl_factor": 0,
        "norm_constraint": settings["norm_constraint"],
        **_layout(family, config),
        "rewrite_module_tmp": settings["rewrite_module_tmp"],
        "batch_size": 1,
        "max_length": 40,
        "model_parallel": False,
    }


def kn_defaults(config: Any) -> dict[str, Any]:
    """KN hyper-parameters (EasyEdit's); KN searches every layer, so nothing depends on depth."""
    family = _family(config)
    return {
        "alg_name": "KN",
        "lr_scale": 1.0,
        "n_toks": 10,
        "refine": False,
        **_KN[family],
        "adaptive_threshold": 0.2,
        "p": 0.4,
        "max_length": 40,
        "model_parallel": False,
    }


# ----------------------------------------------------------------------------- which parameters a method changes


def _named_rewrites(model: Any, hparams: dict[str, Any]) -> list[str]:
    """ROME and MEMIT: the weight of each rewritten module."""
    return [f"{hparams['rewrite_module_tmp'].format(layer)}.weight" for layer in hparams["layers"]]


def _ft_parameters(model: Any, hparams: dict[str, Any]) -> list[str]:
    """FT trains every parameter whose name contains a rewritten module's name (easyeditor's own rule)."""
    names = [hparams["rewrite_module_tmp"].format(layer) for layer in hparams["layers"]]
    chosen = [name for name, _ in model.named_parameters() if any(part in name for part in names)]
    if not chosen:
        raise EditError(f"no parameter of the model matches FT's rewrite_module_tmp {hparams['rewrite_module_tmp']!r}; fix it")
    return chosen


def _kn_parameters(model: Any, hparams: dict[str, Any]) -> list[str]:
    """KN may change columns of the MLP output projection of any layer."""
    template = _LAYOUTS[_family(model.config)]["rewrite_module_tmp"]
    return [f"{template.format(layer)}.weight" for layer in range(model.config.num_hidden_layers)]


def needs_statistics(hparams: dict[str, Any]) -> bool:
    """MEMIT always reads covariance statistics (it ignores mom2_adjustment); ROME when asked to."""
    return hparams["alg_name"] == "MEMIT" or bool(hparams.get("mom2_adjustment"))


def _kept_kn_edit(apply: Callable[..., Any]) -> Callable[..., Any]:
    """KN's apply function, made to keep its edit (BaseEditor.edit calls the "unpatch" it returns)."""

    def apply_and_keep(*args: Any, **kwargs: Any) -> Any:
        edited, _unpatch = apply(*args, **kwargs)
        return edited, lambda: None

    return apply_and_keep


def _unchanged(apply: Callable[..., Any]) -> Callable[..., Any]:
    return apply


@dataclass(frozen=True)
class Method:
    """How one method of ``registry.METHODS`` is configured and run; what it is and can do is its ``info``."""

    info: MethodInfo
    defaults: Callable[[Any], dict[str, Any]]
    touched: Callable[[Any, dict[str, Any]], list[str]]  # (model, hparams) -> parameters the method may change
    wrap_apply: Callable[[Callable[..., Any]], Callable[..., Any]] = _unchanged

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def hparams_class(self) -> str:  # the easyeditor class name
        return self.info.hparams_class

    @property
    def batchable(self) -> bool:  # accepts several requests in one call
        return self.info.batchable

    @property
    def needs_ground_truth(self) -> bool:
        return self.info.needs_ground_truth


METHODS: dict[str, Method] = {
    "ROME": Method(registry.METHODS["ROME"], rome_defaults, _named_rewrites),
    "MEMIT": Method(registry.METHODS["MEMIT"], memit_defaults, _named_rewrites),
    "FT": Method(registry.METHODS["FT"], ft_defaults, _ft_parameters),
    "KN": Method(registry.METHODS["KN"], kn_defaults, _kn_parameters, wrap_apply=_kept_kn_edit),
}
registry.check_covers("editguard/editing/methods.py METHODS", METHODS, registry.METHODS)


def easyedit_model_name(config: Any) -> str:
    """The name EasyEdit is told: it branches on substrings of it (KN picks its module names by it)."""
    return _FAMILIES.get(getattr(config, "model_type", ""), getattr(config, "model_type", ""))


def method(name: str) -> Method:
    key = name.upper()
    if key not in METHODS:
        raise EditError(f"unknown edit method {name!r}; choose one of {', '.join(sorted(METHODS))}")
    return METHODS[key]


# ----------------------------------------------------------------------------- hyper-parameters


def resolve_hparams(method_name: str, config: Any, hparams_file: Path | None, device: str) -> dict[str, Any]:
    """Defaults for the model, overridden key by key by an EasyEdit-style YAML file."""
    record = method(method_name)
    if hparams_file is None or getattr(config, "model_type", "") in _FAMILIES:
        hparams = record.defaults(config)
    else:
        hparams = {}  # an architecture without defaults: the file must give every field
    if hparams_file is not None:
        hparams.update(_read_yaml(hparams_file, record.name))
    hparams["device"] = device
    hparams["alg_name"] = record.name
    return hparams


_SCIENTIFIC = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+")


def _read_yaml(path: Path, method_name: str) -> dict[str, Any]:
    import yaml

    if not path.is_file():
        raise EditError(f"hyper-parameters file {str(path)!r} does not exist; check --editguard-hparams")
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise EditError(f"hyper-parameters file {str(path)!r} is not valid YAML: {error}") from None
    if not isinstance(values, dict):
        raise EditError(f"hyper-parameters file {str(path)!r} must hold a mapping of names to values")
    named = str(values.get("alg_name", method_name)).upper()
    if named != method_name:
        raise EditError(f"hyper-parameters file {str(path)!r} is for {named}, not {method_name}; fix 'alg_name'")
    values.pop("model_name", None)  # the model is the one editguard loaded, never re-read by EasyEdit
    values.pop("device", None)
    # YAML 1.1 reads 5e-4 as a string; EasyEdit's own loader turns such strings into floats.
    return {key: float(value) if isinstance(value, str) and _SCIENTIFIC.fullmatch(value) else value for key, value in values.items()}
