"""Edit recipes: what each method needs to edit a given model, and the record that describes an editor.

Defaults come from the loaded model's own structure (``layouts.layout_of``: its decoder layers, MLP output
projection, attention, final norm and output matrix, found by introspection), so any decoder-only family
transformers builds gets them (GPT-2, GPT-J, GPT-NeoX/Pythia, OPT, Llama, Mistral, Qwen2, Gemma, Phi-3, OLMo,
Falcon and Bloom are tested).  The numbers are EasyEdit's published settings, GPT-2 XL's for a plain MLP and
Llama-2-7B's for a gated one (``Layout.recipe``), with the layers scaled by depth:

- ROME: one MLP output projection at 35% (GPT-2) / 15% (Llama) of depth; no covariance statistics.
- MEMIT: up to five consecutive layers, ending at ROME's layer for GPT-2 (GPT-2 XL: 13-17), starting
  at it for Llama (Llama-2: 4-8); covariance statistics from local text (``memit_stats``).
- FT: one MLP output projection, 25 Adam steps at 5e-4; GPT-2 layer 0 within ±5e-4 of the weights
  (FT-L), Llama at 21/32 of depth, unconstrained.
- KN: integrated gradients with 20 steps for GPT-2 and 1 step for Llama; it searches every layer.

Where easyeditor cannot run a method on a structure (ROME, MEMIT and KN on OPT, whose layers flatten the
MLP's activations), the defaults refuse in one sentence that names FT and ``--editguard-edited``.  MEND's recipe is
``mend.mend_hparams``; the table of editors is ``methods``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from editguard.editing import memit_stats
from editguard.editing.delta import WeightDelta
from editguard.editing.layouts import Layout, LayoutError, layout_of


STATS_IN_CACHE = "editguard-cache"  # stats_dir placeholder: local-corpus statistics always go to editguard's cache


@dataclass(frozen=True)
class EditOutcome:
    delta: WeightDelta
    metrics: tuple[dict[str, Any], ...]  # one per request, EasyEdit's own pre/post measurements
    seconds: float


class EditError(RuntimeError):
    """An edit could not be configured or computed; the message says why and what to change."""


_EDIT_DEPTH = {"gpt2": 0.35, "llama": 0.15}


_MEMIT = {
    "gpt2": {"v_num_grad_steps": 20, "v_weight_decay": 0.5, "clamp_norm_factor": 0.75, "mom2_update_weight": 20000},
    "llama": {"v_num_grad_steps": 25, "v_weight_decay": 1e-3, "clamp_norm_factor": 4, "mom2_update_weight": 15000},
}


MEMIT_WINDOW = 5  # MEMIT spreads an edit over up to five consecutive layers (GPT-2 XL 13-17, Llama-2 4-8)


_FT: dict[str, dict[str, Any]] = {
    "gpt2": {"depth": 0.0, "norm_constraint": 5e-4, "suffix": ""},
    "llama": {"depth": 21 / 32, "norm_constraint": False, "suffix": ".weight"},
}


_KN = {"gpt2": {"steps": 20, "batch_size": 20}, "llama": {"steps": 1, "batch_size": 1}}


def model_layout(model_or_config: Any) -> Layout:
    """The layout of a loaded model, or of a config (built on the meta device: no memory, no weights)."""
    return _layout_or_error(model_of(model_or_config))


def model_of(model_or_config: Any) -> Any:
    """A loaded model as it is; a config as a model on the meta device (its structure, no memory, no weights)."""
    if hasattr(model_or_config, "named_modules"):
        return model_or_config
    import torch
    from transformers import AutoModelForCausalLM

    try:
        with torch.device("meta"):
            return AutoModelForCausalLM.from_config(model_or_config)
    except (ValueError, KeyError) as error:
        raise EditError(f"cannot build a {getattr(model_or_config, 'model_type', '?')!r} model to find its layers: {error}") from None


def _layout_or_error(model: Any) -> Layout:
    try:
        return layout_of(model)
    except LayoutError as error:
        raise EditError(f"no default EasyEdit hyper-parameters: {error}; pass --editguard-hparams FILE.yaml with every field") from None


def _supported(method_name: str, layout: Layout) -> None:
    """Refuse, in one sentence naming the alternatives, what easyeditor cannot do on this structure."""
    if layout.token_major and method_name != "FT":
        raise EditError(
            f"easyeditor's {method_name} reads MLP activations per (sequence, position), but {layout.model_type!r} "
            f"decoder layers flatten them to (tokens, width) before the MLP; edit this model with FT "
            "(--editguard-method FT), or gate an edited model made elsewhere with --editguard-edited"
        )
    if layout.final_norm is None and method_name == "MEMIT":
        raise EditError(
            f"easyeditor's MEMIT needs the final norm before the output matrix, and this {layout.model_type!r} model has "
            "none; edit it with ROME or FT, or gate an edited model made elsewhere with --editguard-edited"
        )


def _edit_layer(family: str, depth: int) -> int:
    return int(_EDIT_DEPTH[family] * depth)


def rome_defaults(layout: Layout) -> dict[str, Any]:
    """ROME hyper-parameters for this architecture (EasyEdit's published settings, scaled by depth)."""
    _supported("ROME", layout)
    family, layers = layout.recipe, layout.depth
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
        # (set mom2_dataset to a local corpus then).
        "mom2_adjustment": False,
        "context_template_length_params": [[5, 10], [10, 10]],
        **layout.templates(),
        # ROME never reads lm_head_module; it keeps the value it always had, so cached ROME edits keep their keys.
        "lm_head_module": "lm_head",
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


def memit_defaults(layout: Layout) -> dict[str, Any]:
    """MEMIT hyper-parameters: EasyEdit's per recipe, statistics from local text (see memit_stats)."""
    _supported("MEMIT", layout)
    family, layers = layout.recipe, layout.depth
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
        **layout.templates(),
        "mom2_dataset": memit_stats.GENERATED,
        "mom2_n_samples": 128,
        "mom2_dtype": "float32",
        "stats_dir": STATS_IN_CACHE,
        "max_length": 40,
        "batch_size": 1,
        "model_parallel": False,
    }


def ft_defaults(layout: Layout) -> dict[str, Any]:
    """FT hyper-parameters: one MLP output projection, 25 Adam steps at 5e-4 (EasyEdit's)."""
    settings = _FT[layout.recipe]
    return {
        "alg_name": "FT",
        "layers": [int(settings["depth"] * layout.depth)],
        "num_steps": 25,
        "lr": 5e-4,
        "weight_decay": 0,
        "kl_factor": 0,
        "norm_constraint": settings["norm_constraint"],
        **layout.templates(),
        "rewrite_module_tmp": layout.layer(layout.mlp_out) + settings["suffix"],
        "batch_size": 1,
        "max_length": 40,
        "model_parallel": False,
    }


def kn_defaults(layout: Layout) -> dict[str, Any]:
    """KN hyper-parameters (EasyEdit's); KN searches every layer, so nothing depends on depth."""
    _supported("KN", layout)
    family = layout.recipe
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
    """KN may change the MLP output projection of any layer (columns of a Linear, rows of GPT-2's Conv1D)."""
    layout = model_layout(model)
    template = layout.layer(layout.mlp_out)
    return [f"{template.format(layer)}.weight" for layer in range(layout.depth)]


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
    """One editor of the table: what it can do, its defaults for a model, the parameters it may change, how it edits
    (``session``: an ``editors.EditSession``) and what it is (``version``, for the provenance and the edit cache key)."""

    name: str
    defaults: Callable[[Any], dict[str, Any]]  # a loaded model (or its config) -> hyper-parameters
    touched: Callable[[Any, dict[str, Any]], list[str]]  # (model, hparams) -> parameters the method may change
    session: Callable[..., Any]  # (this record, model, tokenizer, hparams, *, seed, cache_dir, model_fingerprint) -> an EditSession
    version: Callable[[], str]
    batchable: bool = False  # accepts several requests in one call (batch mode)
    needs_ground_truth: bool = False  # the request must give the answer it replaces
    hparams_class: str = ""  # easyeditor's hyper-parameter class
    wrap_apply: Callable[[Callable[..., Any]], Callable[..., Any]] = _unchanged  # around easyeditor's apply function

    def describe(self, hparams: dict[str, Any]) -> dict[str, Any]:
        """The editor's name, version and hyper-parameters (the device left out): provenance and edit cache key."""
        return {"editor": self.name, "version": self.version(), "hparams": {k: v for k, v in hparams.items() if k != "device"}}


def easyedit_model_name(model: Any) -> str:
    """The name EasyEdit is told: it branches on substrings of it, and KN on "gpt2" (a Conv1D weight) or
    "llama" (a Linear one); editguard sets KN's module names itself (``Layout.kn_attributes``)."""
    return model_layout(model).kn_model_type


def _layout_defaults(defaults: Callable[[Layout], dict[str, Any]]) -> Callable[[Any], dict[str, Any]]:
    """An EasyEdit recipe read off the model's layout (``model_layout``: a loaded model or a config)."""
    return lambda model: defaults(model_layout(model))
