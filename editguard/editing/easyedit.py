"""The EasyEdit adapter: run an EasyEdit method on an in-memory model and return the weight delta.

Owns the conversation with ``easyeditor``: default hyper-parameters derived from the model's config
(which layer, which module names), an optional EasyEdit-style YAML file that overrides them, and the
book-keeping EasyEdit leaves to its caller (its module-level caches, its padding side, its prints).
The model comes back unchanged; the edit is returned as a ``WeightDelta`` with EasyEdit's own
per-request metrics.
"""

from __future__ import annotations

import contextlib
import io
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from editguard.editing.delta import WeightDelta, delta_between
from editguard.editing.requests import EditRequest


class EditError(RuntimeError):
    """An edit could not be configured or computed; the message says why and what to change."""


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


def _family(config: Any) -> str:
    family = _FAMILIES.get(getattr(config, "model_type", ""))
    if family is None:
        raise EditError(
            f"no default EasyEdit hyper-parameters for model type {config.model_type!r}; "
            f"pass --editguard-hparams FILE.yaml (known types: {', '.join(sorted(_FAMILIES))})"
        )
    return family


def rome_defaults(config: Any) -> dict[str, Any]:
    """ROME hyper-parameters for this architecture (EasyEdit's published settings, scaled by depth)."""
    family = _family(config)
    layers = config.num_hidden_layers
    return {
        "alg_name": "ROME",
        "layers": [int(_EDIT_DEPTH[family] * layers)],
        "fact_token": "subject_last",
        "v_num_grad_steps": 20,
        "v_lr": 0.5,
        "v_loss_layer": layers - 1,
        "v_weight_decay": 0.5 if family == "gpt2" else 1e-3,
        "clamp_norm_factor": 4,
        "kl_factor": 0.0625,
        # The covariance statistics need a Wikipedia download; without them ROME uses the raw key.
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


@dataclass(frozen=True)
class Method:
    name: str
    hparams_class: str  # the easyeditor class name
    defaults: Callable[[Any], dict[str, Any]]
    touched: Callable[[dict[str, Any]], list[str]]  # parameters the method may change
    reset_caches: Callable[[], None]


def _rome_touched(hparams: dict[str, Any]) -> list[str]:
    return [f"{hparams['rewrite_module_tmp'].format(layer)}.weight" for layer in hparams["layers"]]


def _reset_rome_caches() -> None:
    """ROME caches its context templates per process, whatever the model: drop them between models."""
    import sys

    module = sys.modules.get("easyeditor.models.rome.rome_main")
    if module is not None:
        setattr(module, "CONTEXT_TEMPLATES_CACHE", None)


METHODS: dict[str, Method] = {
    "ROME": Method("ROME", "ROMEHyperParams", rome_defaults, _rome_touched, _reset_rome_caches),
}


def method(name: str) -> Method:
    key = name.upper()
    if key not in METHODS:
        raise EditError(f"unknown edit method {name!r}; choose one of {', '.join(sorted(METHODS))}")
    return METHODS[key]


def resolve_hparams(method_name: str, config: Any, hparams_file: Path | None, device: str) -> dict[str, Any]:
    """Defaults for the model, overridden key by key by an EasyEdit-style YAML file."""
    record = method(method_name)
    hparams = record.defaults(config)
    if hparams_file is not None:
        hparams.update(_read_yaml(hparams_file, record.name))
    hparams["device"] = device
    hparams["alg_name"] = record.name
    return hparams


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
    return values


@dataclass(frozen=True)
class EditOutcome:
    delta: WeightDelta
    metrics: tuple[dict[str, Any], ...]  # one per request, EasyEdit's own pre/post measurements
    seconds: float


def compute_edit(
    model: Any, tokenizer: Any, requests: Sequence[EditRequest], hparams: dict[str, Any], *, seed: int = 0
) -> EditOutcome:
    """Apply ``requests`` sequentially with EasyEdit, return the delta and leave the model as it was."""
    import torch

    from editguard.editing.easyedit_compat import import_easyeditor

    easyeditor = import_easyeditor()
    record = method(hparams["alg_name"])
    before = _snapshot(model, record.touched(hparams))
    record.reset_caches()
    started = time.perf_counter()
    try:
        with torch.random.fork_rng(devices=[]), _padding_side(tokenizer, "right"), _captured_output():
            torch.manual_seed(seed)
            metrics = _run_editor(easyeditor, record, model, tokenizer, requests, hparams)
        delta = delta_between(before, model)
    finally:
        _restore(model, before)
        record.reset_caches()
    return EditOutcome(delta, tuple(metrics), time.perf_counter() - started)


def _run_editor(
    easyeditor: Any, record: Method, model: Any, tokenizer: Any, requests: Sequence[EditRequest], hparams: dict[str, Any]
) -> list[dict[str, Any]]:
    hparams_class = getattr(easyeditor, record.hparams_class)
    fields = {name for name in hparams_class.__dataclass_fields__}
    unknown = sorted(set(hparams) - fields - {"model_name"})
    if unknown:
        raise EditError(f"{record.name} has no hyper-parameter {unknown[0]!r}; its fields are {', '.join(sorted(fields))}")
    params = hparams_class(**{**hparams, "model_name": (model, tokenizer)})
    editor = easyeditor.BaseEditor.from_hparams(params)
    name = model.config._name_or_path or model.config.model_type
    editor.model_name = params.model_name = name  # EasyEdit lower()s the name later on
    metrics, _, _ = editor.edit(
        prompts=[request.prompt for request in requests],
        target_new=[request.target_new for request in requests],
        ground_truth=[request.ground_truth or "<|endoftext|>" for request in requests],
        rephrase_prompts=_rephrases(requests),
        subject=[request.subject for request in requests],
        keep_original_weight=False,  # edits accumulate: the study's sequential setting
        verbose=False,
    )
    return [_plain(metric) for metric in metrics]


def _rephrases(requests: Sequence[EditRequest]) -> list[str] | None:
    if all(request.rephrase for request in requests):
        return [request.rephrase for request in requests]  # type: ignore[misc]
    return None


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
    return {name: parameters[name].detach().clone() for name in names}


def _restore(model: Any, saved: dict[str, Any]) -> None:
    import torch

    parameters = dict(model.named_parameters())
    with torch.no_grad():
        for name, tensor in saved.items():
            parameters[name].copy_(tensor)


@contextlib.contextmanager
def _padding_side(tokenizer: Any, side: str) -> Iterator[None]:
    """EasyEdit pads as it likes per method; the evaluator relies on the side it set."""
    previous = tokenizer.padding_side
    tokenizer.padding_side = side
    try:
        yield
    finally:
        tokenizer.padding_side = previous


@contextlib.contextmanager
def _captured_output() -> Iterator[io.StringIO]:
    """EasyEdit prints every optimisation step; keep it off the user's terminal."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        yield buffer
