"""MEND (Mitchell et al., 2022) as easyeditor implements it: a hypernetwork trained once per model, then edits.

Owns MEND and nothing else: its default hyper-parameters for a model's layout (``mend_hparams``), the
requests it trains on (``training_requests``; the project's own set is ``editing/data/mend_train.jsonl``,
made by ``mend_data``), training the hypernetwork once per (weights, requests, hyper-parameters, step
bound) into ``<cache>/mend/<key>/hypernetwork.safetensors`` (``train_mend``), reading a hypernetwork a
person trained (``load_hypernetwork``: editguard's safetensors file or EasyEdit's torch archive, read with
``weights_only=True``), and edits (``mend_edit``): an ``EditOutcome`` whose ``WeightDelta`` holds only the
edited matrices.  The model comes back from every call bit for bit, with its ``requires_grad`` flags,
gradients, training flag and hooks as they were.

From easyeditor (through ``import_easyeditor``): the hypernetwork and the edit (``trainer.algs.MEND``: a
``GradientTransform`` per weight shape, hooks that record each edited matrix's input activations and
output gradients, the learned step sizes ``edit_lrs``), its losses (``kl_loc_loss``; ``masked_log_probs``
through ``edit_loss_fn``), its gradient accumulation (``safe_backward``) and its edit executor
(``MendRewriteExecutor.apply_to_model``).  What editguard does instead, and why:

- The training loop.  easyeditor's ``EditTrainer`` loads the model by name (``from_pretrained``) and its
  data through a tokenizer loaded by name, pickles its checkpoints (``torch.save``), and in this release
  measures the edit loss on the edited prompt itself.  ``train_mend`` drives ``MEND`` as
  ``EditTrainer.train_step`` does (cedit x edit loss + cloc x locality KL, Adam on the hypernetwork at
  ``lr`` and on ``edit_lrs`` at ``lr_lr`` every ``accumulate_bs`` steps, gradients clipped at
  ``grad_clip``), with the edit loss on the prompt and its paraphrase (the MEND paper's equivalence
  neighbourhood, as later EasyEdit releases do), at most ``max_steps`` steps; a last partial
  accumulation is applied too.  The model stays in eval mode (EasyEdit's recipes set dropout 0).
- The first training step edits two requests at once: the hypernetwork normalises its inputs with running
  statistics that need two samples, and the last edited layer sees one sample per target token.
- The executor is made per call and handed the hypernetwork: its ``init_model`` would unpickle ``archive``
  with a bare ``torch.load``.  The hypernetwork edits in eval mode (easyeditor leaves it in training mode,
  where every edit updates its normalisation statistics and the same edit comes out differently next time).
- easyeditor picks code paths by substrings of ``model_name``/``model_class``: it is told "gpt2" /
  "GPT2LMHeadModel" for GPT-2's Conv1D weights and "llama" / "LlamaForCausalLM" for ``Linear`` ones,
  whatever the family (as ``methods.easyedit_model_name`` does for the other methods).
- ``apply_to_model`` gives ``edit_lrs[i]`` to the i-th edited matrix in the model's parameter order, while
  training pairs them in ``inner_params`` order: the defaults list ``inner_params`` in the model's order.

Two fixes to easyeditor's source are in ``easyedit_compat`` (slicing a patched layer list; padding masked
in the executor's labels).  Bad input is refused with one ``MendError`` sentence naming the file or field.

Training is the slow part, and the step bound decides how good the editor is: EasyEdit trains up to 100,000
steps on a GPU; on one CPU thread a SmolLM2 step takes about a second, so ``max_steps=400`` is 7 minutes.
Families whose decoder layer adds to the MLP's output in place (Falcon) are refused: easyeditor's module
hooks cannot record that output's gradient.
"""

from __future__ import annotations

import contextlib
import json
import random
import re
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from editguard.editing.recipes import EditOutcome
from editguard.editing.requests import EditRequest

MEND_FORMAT = 1  # part of the training cache key: bump when training could give a different hypernetwork
HYPERNETWORK_FILE = "hypernetwork.safetensors"
METADATA_KEY = "editguard_mend"
EDIT_MODES = ("batch", "sequential")
MAX_EDITED_LAYERS = 3  # EasyEdit's recipes edit the last 3 layers (GPT-2 XL 45-47, Llama-2-7B 29-31)
MAX_RANK = 1920  # EasyEdit's rank, a quarter of GPT-2 XL's combined width (1600 + 6400)
# EasyEdit's published MEND settings, the same for GPT-2 XL and Llama-2-7B (hparams/TRAINING/MEND/*.yaml).
EASYEDIT_RECIPE: dict[str, Any] = {
    "alg": "MEND", "lr": 1e-6, "edit_lr": 1e-4, "lr_lr": 1e-4, "lr_scale": 1.0, "seed": 42,
    "cedit": 0.1, "cloc": 1.0, "cbase": 1.0, "dropout": 0.0, "train_base": False, "no_grad_layers": None,
    "one_sided": False, "n_hidden": 1, "hidden_dim": None, "init": "id", "norm": True, "combine": True,
    "x_only": False, "delta_only": False, "act": "relu", "mlp_class": "IDMLP", "shared": True,
    "batch_size": 1, "accumulate_bs": 10, "opt": "Adam", "grad_clip": 100.0, "max_length": 40,
}  # fmt: skip
# Fields easyeditor's dataclass requires that only its own trainer and editor read (never editguard's code).
_BOOKKEEPING: dict[str, Any] = {
    "tokenizer_class": "", "tokenizer_name": "", "archive": None, "debug": False, "results_dir": "",
    "model_save_pt": 5000, "silent": True, "eval_log_interval": 1000, "final_eval": False, "val_interval": 1000,
    "early_stop_patience": 20000, "early_stop_key": "loss/total_edit_val", "eval_only": False, "half": False,
    "save": False, "verbose": False, "val_batch_size": 5, "val_steps": 500, "model_parallel": False,
}  # fmt: skip
LOG_INTERVAL = 10  # training steps between progress lines (EasyEdit's log_interval, 1000, suits 100,000 steps)
# The hypernetwork's structure: a trained one fits only hyper-parameters that agree on these.
STRUCTURE = ("inner_params", "shared", "combine", "one_sided", "x_only", "delta_only", "n_hidden", "rank", "init", "mlp_class", "act", "norm")
# Hyper-parameters that do not change what training computes (left out of the cache key).
_NOT_TRAINING = ("device", "lr_scale", "log_interval", "archive", "max_iters", "training_requests")
# editguard's own hyper-parameters beside easyeditor's fields: where the training requests come from (a file in any
# edit format the gate reads; None: the project's set).  ``archive`` (a trained hypernetwork) and ``max_iters`` (the
# training steps' bound) are easyeditor's own names for the other two choices.
EDITGUARD_KEYS = ("training_requests",)
DEFAULT_TRAINING_STEPS = 400  # SmolLM2: about 7 minutes on one CPU thread; the demo edits then take (reliability 1.0)


class MendError(ValueError):
    """MEND cannot be configured, trained or applied as asked; the message says what to change."""


@dataclass(frozen=True)
class TrainedMend:
    """A hypernetwork's state (easyeditor's ``MEND.state_dict`` without the model config) and where it came from."""

    tensors: Mapping[str, Any]  # "mend.<shape or name>..." and "edit_lrs", on the CPU
    hparams: Mapping[str, Any]  # what it was trained with (empty for an EasyEdit archive, which does not say)
    source: str  # the file it was read from (or written to)
    info: Mapping[str, Any] = field(default_factory=dict)  # steps, final_loss, losses, seconds (editguard's training)
    computed: bool = False  # True when this call trained it, False when it was read


# ----------------------------------------------------------------------------- hyper-parameters


def edited_layers(depth: int) -> list[int]:
    """The last layers: three, as EasyEdit's recipes for GPT-2 XL (48 layers) and Llama-2-7B (32); one per
    four layers below twelve, so a 2-layer toy edits its last layer."""
    count = min(MAX_EDITED_LAYERS, max(1, depth // 4))
    return list(range(depth - count, depth))


def mend_hparams(model: Any, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """MEND's hyper-parameters for ``model``: EasyEdit's recipe on the MLP projections of the last layers,
    with ``overrides`` (easyeditor ``MENDHyperParams`` field names) laid over them."""
    import transformers

    from editguard.editing.layouts import LayoutError, layout_of

    overrides = dict(overrides or {})
    try:
        layout = layout_of(model)
    except LayoutError as error:
        if "inner_params" not in overrides:
            raise MendError(f"no default MEND hyper-parameters: {error}; give inner_params (the weight matrices to edit) as an override") from None
        inner, conv1d = overrides["inner_params"], isinstance(model, transformers.GPT2LMHeadModel)
    else:
        _check_supported(model, layout)
        inner = [name for layer in edited_layers(layout.depth) for name in _mlp_matrices(model, layout, layer)]
        conv1d = layout.conv1d
    inner = overrides.get("inner_params", inner)
    _check_inner(model, inner)
    hparams = {**_recipe(model, list(inner), conv1d), **overrides}
    check_hparams(model, hparams)
    return hparams


def _recipe(model: Any, inner: list[str], conv1d: bool) -> dict[str, Any]:
    return {
        **EASYEDIT_RECIPE,
        **_BOOKKEEPING,
        "alg_name": "MEND",
        "inner_params": inner,
        "rank": _rank(model, inner),
        "log_interval": LOG_INTERVAL,
        **_easyedit_switches(conv1d),
    }


def _check_supported(model: Any, layout: Any) -> None:
    import transformers

    if layout.conv1d and not isinstance(model, transformers.GPT2LMHeadModel):
        raise MendError(
            f"easyeditor's MEND reads Conv1D weights as (in, out) only in GPT2LMHeadModel, and this is a "
            f"{type(model).__name__}; edit it with ROME, MEMIT or FT, or gate an edited model made elsewhere with --editguard-edited"
        )


def _mlp_matrices(model: Any, layout: Any, layer: int) -> list[str]:
    """The weights of layer ``layer``'s MLP projections into its wider space and back (GPT-2: c_fc, c_proj;
    Llama: gate_proj, up_proj, down_proj), in the model's parameter order."""
    prefix = layout.layer().format(layer) + "."
    hidden = _hidden_size(model)
    output = f"{prefix}{layout.mlp_out}.weight"
    chosen = []
    for name, parameter in model.named_parameters():
        if not name.startswith(prefix) or not name.endswith(".weight") or parameter.dim() != 2:
            continue
        relative = name[len(prefix) : -len(".weight")]
        if relative == layout.attention or relative.startswith(layout.attention + "."):
            continue
        inside_mlp = not layout.mlp or relative.startswith(layout.mlp + ".")
        width_in = parameter.shape[0] if layout.conv1d else parameter.shape[1]
        width_out = parameter.shape[1] if layout.conv1d else parameter.shape[0]
        if name == output or (inside_mlp and width_in == hidden and width_out > hidden):
            chosen.append(name)
    return chosen


def _hidden_size(model: Any) -> int:
    return int(getattr(model.config, "hidden_size", None) or getattr(model.config, "n_embd"))


def _rank(model: Any, inner: list[str]) -> int:
    """A quarter of the widest combined (input + output) width, at most EasyEdit's 1920 (GPT-2 XL: 8000 / 4)."""
    parameters = dict(model.named_parameters())
    widest = max(sum(parameters[name].shape) for name in inner)
    return max(1, min(MAX_RANK, int(widest) // 4))


def _easyedit_switches(conv1d: bool) -> dict[str, str]:
    """easyeditor branches on "gpt"/"llama" in these names: Conv1D weights (GPT-2) or Linear ones (all others)."""
    return {"model_name": "gpt2", "model_class": "GPT2LMHeadModel"} if conv1d else {"model_name": "llama", "model_class": "LlamaForCausalLM"}


def check_hparams(model: Any, hparams: Mapping[str, Any]) -> None:
    """Refuse, in one sentence, a field easyeditor's MENDHyperParams lacks or inner_params this model does not have."""
    fields = _hparams_fields() | set(EDITGUARD_KEYS)
    unknown = sorted(set(hparams) - fields)
    if unknown:
        raise MendError(f"MEND has no hyper-parameter {unknown[0]!r}; its fields are easyeditor's MENDHyperParams: {', '.join(sorted(fields))}")
    _check_inner(model, hparams.get("inner_params"))


def _check_inner(model: Any, inner: Any) -> None:
    if not isinstance(inner, list) or not inner or not all(isinstance(name, str) for name in inner):
        raise MendError("MEND's inner_params must be a non-empty list of weight names; give the MLP weights to edit")
    parameters = dict(model.named_parameters())
    for name in inner:
        if name not in parameters:
            raise MendError(f"MEND's inner_params names {name!r}, which is not a parameter of this {type(model).__name__}; fix inner_params")
        if parameters[name].dim() != 2:
            raise MendError(f"MEND's inner_params names {name!r}, which is not a weight matrix; give 2-D weights only")


def _hparams_fields() -> set[str]:
    from editguard.editing.easyedit_compat import import_easyeditor

    easyeditor = import_easyeditor()
    return set(easyeditor.MENDHyperParams.__dataclass_fields__)


def _easyedit_params(hparams: Mapping[str, Any], device: str) -> Any:
    """easyeditor's ``MENDHyperParams`` for ``hparams``, placed on ``device``."""
    from editguard.editing.easyedit_compat import import_easyeditor

    easyeditor = import_easyeditor()
    values = {key: value for key, value in hparams.items() if key not in EDITGUARD_KEYS}
    values["inner_params"] = list(values["inner_params"])
    values["device"] = device
    try:
        return easyeditor.MENDHyperParams(**values)
    except TypeError as error:
        raise MendError(f"MEND hyper-parameters are incomplete: {error}; start from mend_hparams(model) and override fields") from None


# ----------------------------------------------------------------------------- training requests


def training_requests(source: str | Path | None = None) -> tuple[EditRequest, ...]:
    """The requests MEND trains on: the project's set (``source`` None) or a file in any layout
    ``requests.py`` reads; each needs a paraphrase and a locality prompt with its answer."""
    from editguard.editing.mend_data import training_file
    from editguard.editing.requests import located_requests

    located = located_requests(training_file() if source is None else source)
    for where, request in located:
        _check_training_request(request, where)
    if len(located) < 2:
        raise MendError(f"{located[0][0]}: MEND trains on many edits and this file holds one; give at least two (a few hundred is usual)")
    return tuple(request for _, request in located)


def _check_training_request(request: EditRequest, where: str) -> None:
    for name in ("rephrase", "locality_prompt", "locality_answer"):
        if not getattr(request, name):
            raise MendError(
                f"{where}: MEND's training request has no {name!r}; MEND learns from a paraphrase and an unrelated "
                "locality prompt per edit, so give every training request 'rephrase', 'locality_prompt' and 'locality_answer'"
            )


# ----------------------------------------------------------------------------- the model, prepared and restored


@contextlib.contextmanager
def _prepared(model: Any, tokenizer: Any, names: Sequence[str]) -> Iterator[None]:
    """The model as easyeditor's MEND wants it (gradients on ``names`` only, eval mode, left padding, a
    private RNG) and, on exit, exactly as it was: weights, flags, gradients, training flag, no hooks."""
    import torch

    from editguard.models import normalise_tokenizer, padding_side

    parameters = dict(model.named_parameters())
    saved = {name: parameters[name].detach().clone() for name in names}
    flags = {name: parameter.requires_grad for name, parameter in parameters.items()}
    grads = {name: parameter.grad for name, parameter in parameters.items()}
    training = model.training
    normalise_tokenizer(tokenizer)  # a pad token, input ids and mask only (load_model did it; a caller's own may not)
    try:
        for name, parameter in parameters.items():
            parameter.requires_grad_(name in saved)
        model.eval()
        with torch.random.fork_rng(devices=[]), padding_side(tokenizer, "left"), warnings.catch_warnings():
            # MEND hooks modules whose inputs need no gradient; torch warns on every backward pass
            warnings.filterwarnings("ignore", message="Full backward hook is firing")
            yield
    finally:
        _unhook(model, parameters.values())
        with torch.no_grad():
            for name, tensor in saved.items():
                parameters[name].copy_(tensor)
        for name, parameter in parameters.items():
            parameter.requires_grad_(flags[name])
            parameter.grad = grads[name]
        model.train(training)


def _unhook(model: Any, parameters: Any) -> None:
    """Remove what easyeditor's ``hook_model`` adds: its hooks, ``model.handles`` and the saved activations."""
    for handle in model.__dict__.pop("handles", []):
        handle.remove()
    for parameter in parameters:
        for name in ("__x__", "__delta__"):
            if name in parameter.__dict__:
                delattr(parameter, name)


def _new_alg(model: Any, params: Any) -> Any:
    """easyeditor's ``MEND`` around ``model`` (it hooks the model: only inside ``_prepared``)."""
    from editguard.editing.easyedit_compat import import_easyeditor

    import_easyeditor()
    from easyeditor.trainer.algs.MEND import MEND

    def no_copies() -> Any:
        raise MendError("MEND asked for a copy of the model, which editguard never makes")

    return MEND(model, params, no_copies)


def _device_of(model: Any) -> str:
    from editguard.models import input_device

    return str(input_device(model))


@contextlib.contextmanager
def _failures_named(what: str, model: Any) -> Iterator[None]:
    """An exception from inside easyeditor (or the model it runs) becomes one MendError sentence."""
    try:
        yield
    except MendError:
        raise
    except Exception as error:
        from editguard.errors import brief, innermost_frame

        family = getattr(model.config, "model_type", type(model).__name__)
        if "BackwardHookFunction is a view and is being modified inplace" in str(error):
            raise MendError(
                f"easyeditor's MEND reads each edited matrix's output gradient through a module hook, and this {family!r} "
                "model changes an edited projection's output in place (Falcon adds the attention output to the MLP's), "
                "which autograd refuses; edit it with ROME, MEMIT or FT, or gate an edited model made elsewhere with --editguard-edited"
            ) from error
        where = innermost_frame(error, "easyeditor")
        raise MendError(
            f"MEND failed inside easyeditor while {what}" + (f" at {where}" if where else "")
            + f": {brief(error)}; check its hyper-parameters for this {family!r} model"
        ) from error


# ----------------------------------------------------------------------------- batches (as the executor builds them)


@dataclass(frozen=True)
class _Batch:
    edit: dict[str, Any]  # the prompts with their new targets: the edit is computed from their gradient
    outer: dict[str, Any]  # the prompts and their paraphrases with the targets: the edit loss
    loc: dict[str, Any]  # unrelated prompts with their answers: the locality loss
    loc_mask: Any  # which of the last positions of ``loc`` are the answer's


def _labelled(tokenizer: Any, prompts: Sequence[str], targets: Sequence[str], device: str) -> dict[str, Any]:
    """``prompt + " " + target`` left-padded, labels the target's tokens (padding -100): apply_to_model's encoding."""
    spaced = [target if target.startswith(" ") else " " + target for target in targets]
    sentences = tokenizer([prompt + target for prompt, target in zip(prompts, spaced)], padding=True, return_tensors="pt")
    answer = tokenizer(spaced, padding=True, return_tensors="pt")
    labels = answer["input_ids"].masked_fill(answer["attention_mask"] == 0, -100)
    return {"input_ids": sentences["input_ids"].to(device), "attention_mask": sentences["attention_mask"].to(device), "labels": labels.to(device)}


def _training_batch(tokenizer: Any, requests: Sequence[EditRequest], device: str) -> _Batch:
    prompts = [request.prompt for request in requests]
    targets = [request.target_new for request in requests]
    outer = _labelled(tokenizer, prompts + [str(request.rephrase) for request in requests], targets + targets, device)
    loc = _labelled(tokenizer, [str(r.locality_prompt) for r in requests], [str(r.locality_answer) for r in requests], device)
    loc_mask = (loc["labels"] != -100).long()
    return _Batch(_labelled(tokenizer, prompts, targets, device), outer, {k: v for k, v in loc.items() if k != "labels"}, loc_mask)


def _schedule(count: int, steps: int, batch_size: int, seed: int) -> list[list[int]]:
    """Request indices per step: seeded shuffles of all requests, one after another; two in the first step."""
    rng = random.Random(seed)
    stream: list[int] = []
    while len(stream) < steps * batch_size + 2:
        order = list(range(count))
        rng.shuffle(order)
        stream += order
    sizes = [max(2, batch_size)] + [batch_size] * (steps - 1)
    batches, start = [], 0
    for size in sizes:
        batches.append(stream[start : start + size])
        start += size
    return batches


# ----------------------------------------------------------------------------- training


def training_key(model_fingerprint: str, requests: Sequence[EditRequest], hparams: Mapping[str, Any], max_steps: int) -> str:
    from editguard.fingerprint import fingerprint

    material = {
        "format": MEND_FORMAT,
        "model": model_fingerprint,
        "requests": [request.as_dict() for request in requests],
        "hparams": {key: value for key, value in hparams.items() if key not in _NOT_TRAINING},
        "max_steps": max_steps,
    }
    return fingerprint(material)


def train_mend(
    model: Any, tokenizer: Any, requests: Sequence[EditRequest], hparams: Mapping[str, Any], cache_dir: Path,
    model_fingerprint: str, *, max_steps: int, progress: Callable[[str], object] | None = None,
) -> TrainedMend:  # fmt: skip
    """The hypernetwork trained on ``requests`` for at most ``max_steps`` steps, once per (weights, requests,
    hyper-parameters, step bound): read from ``<cache_dir>/mend/<key>/`` when there, else trained under a
    file lock and written there atomically.  ``progress`` gets a line with the loss every ``log_interval``
    steps (default: editguard's progress reporter).  The model is left exactly as it was."""
    from editguard.atomic import compute_once
    from editguard.progress import reporter

    if not isinstance(max_steps, int) or isinstance(max_steps, bool) or max_steps < 1:
        raise MendError(f"MEND's max_steps must be a positive whole number of training steps, not {max_steps!r}")
    if len(requests) < 2:
        raise MendError("MEND trains on many edits and got fewer than two requests; give it the project's set (training_requests())")
    for index, request in enumerate(requests):
        _check_training_request(request, f"training request {index} ({request.prompt!r})")
    check_hparams(model, hparams)
    write = progress or reporter().line
    key = training_key(model_fingerprint, requests, hparams, max_steps)
    folder = Path(cache_dir) / "mend" / key
    file = folder / HYPERNETWORK_FILE

    def compute() -> TrainedMend:
        tensors, info = _train(model, tokenizer, requests, hparams, max_steps, write)
        info = {**info, "key": key, "model_fingerprint": model_fingerprint, "requests": len(requests)}
        _write_hypernetwork(file, tensors, hparams, info)
        return TrainedMend(tensors, dict(hparams), str(file), info)

    done = compute_once(folder, file.is_file, compute, lambda: _read_safetensors(file))
    if not done.computed:
        write(f"MEND hypernetwork reused from {file}")
    return replace(done.value, computed=done.computed)


def _train(
    model: Any, tokenizer: Any, requests: Sequence[EditRequest], hparams: Mapping[str, Any], max_steps: int,
    write: Callable[[str], object],
) -> tuple[dict[str, Any], dict[str, Any]]:  # fmt: skip
    """easyeditor's MEND trained as ``EditTrainer.train_step`` trains it (see the module docstring)."""
    import torch

    device = _device_of(model)
    params = _easyedit_params(hparams, device)
    schedule = _schedule(len(requests), max_steps, int(hparams["batch_size"]), int(hparams["seed"]))
    interval = max(1, int(hparams.get("log_interval", LOG_INTERVAL)))
    started = time.perf_counter()
    losses: list[list[float]] = []
    window: list[tuple[float, float, float]] = []
    with _prepared(model, tokenizer, params.inner_params), _failures_named("training", model):
        torch.manual_seed(int(hparams["seed"]))
        alg = _new_alg(model, params)
        alg.mend.train(True)
        optimiser = _optimiser(hparams, list(alg.mend.parameters()), float(hparams["lr"]))
        lr_optimiser = _optimiser(hparams, [alg.edit_lrs], float(hparams["lr_lr"]))
        for step, indices in enumerate(schedule, start=1):
            batch = _training_batch(tokenizer, [requests[index] for index in indices], device)
            window.append(_training_step(alg, batch, hparams))
            if step % int(hparams["accumulate_bs"]) == 0 or step == max_steps:
                _optimise(alg, optimiser, lr_optimiser, float(hparams["grad_clip"]), step)
            if step % interval == 0 or step == max_steps:
                means = [sum(values) / len(values) for values in zip(*window)]
                losses.append([step, *means])
                window.clear()
                write(
                    f"MEND training step {step}/{max_steps}: loss {means[0]:.4f} (edit {means[1]:.4f}, "
                    f"locality {means[2]:.5f}) after {time.perf_counter() - started:.1f} s"
                )
        tensors = _state_tensors(alg)
    info = {"steps": max_steps, "final_loss": losses[-1][1], "losses": losses, "seconds": time.perf_counter() - started}
    return tensors, info


def _optimiser(hparams: Mapping[str, Any], parameters: list[Any], lr: float) -> Any:
    import torch

    name = str(hparams["opt"])
    optimiser_class = getattr(torch.optim, name, None)
    if not isinstance(optimiser_class, type):
        raise MendError(f"MEND's opt {name!r} is not a torch.optim optimiser; use Adam (EasyEdit's)")
    return optimiser_class(parameters, lr=lr)


def _training_step(alg: Any, batch: _Batch, hparams: Mapping[str, Any]) -> tuple[float, float, float]:
    """One edit and its losses, gradients accumulated into the hypernetwork (``EditTrainer.edit_step``)."""
    import torch
    from easyeditor.trainer.losses import kl_loc_loss
    from easyeditor.trainer.utils import safe_backward

    with torch.no_grad():
        base_logits = alg(**batch.loc)
    edited, _ = alg.edit(batch.edit, None)
    post_outer = edited(**batch.outer)
    edit_loss = alg.edit_loss_fn(alg.config, post_outer, batch.outer["labels"])["nll"]
    post_loc = edited(**batch.loc)
    width = batch.loc_mask.size(1)
    loc_loss = kl_loc_loss(base_logits[:, -width:].detach(), post_loc[:, -width:], mask=batch.loc_mask)
    total = float(hparams["cedit"]) * edit_loss + float(hparams["cloc"]) * loc_loss
    safe_backward(total, alg.outer_parameters(), int(hparams["accumulate_bs"]))
    return total.item(), edit_loss.item(), loc_loss.item()


def _optimise(alg: Any, optimiser: Any, lr_optimiser: Any, clip: float, step: int) -> None:
    import torch

    norm = torch.nn.utils.clip_grad_norm_(alg.outer_parameters(), clip)
    if not bool(torch.isfinite(norm)):
        raise MendError(f"MEND training diverged at step {step} (a non-finite gradient); lower lr, lr_lr or edit_lr")
    for each in (optimiser, lr_optimiser):
        each.step()
        each.zero_grad()


def _state_tensors(alg: Any) -> dict[str, Any]:
    """The hypernetwork's state as easyeditor saves it (``MEND.state_dict``), without the model config."""
    return {name: value.detach().cpu().clone().contiguous() for name, value in alg.state_dict().items() if name != "model_config"}


# ----------------------------------------------------------------------------- files


def _write_hypernetwork(file: Path, tensors: Mapping[str, Any], hparams: Mapping[str, Any], info: Mapping[str, Any]) -> None:
    from safetensors.torch import save_file

    from editguard.atomic import atomic_path

    metadata = {METADATA_KEY: json.dumps({"format": MEND_FORMAT, "hparams": dict(hparams), "info": dict(info)}, default=str)}
    with atomic_path(file) as staging:
        save_file(dict(tensors), str(staging), metadata=metadata)


def _read_safetensors(file: Path) -> TrainedMend:
    from safetensors import safe_open

    from editguard.errors import brief

    try:
        with safe_open(str(file), framework="pt") as handle:
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
            header = handle.metadata() or {}
        record = json.loads(header.get(METADATA_KEY, "{}"))
    except Exception as error:  # safetensors' own error, OSError, or bad JSON in the header
        raise MendError(
            f"{file} is not a readable safetensors MEND hypernetwork ({brief(error)}); give a file train_mend wrote, "
            "or EasyEdit's trained archive (a torch file)"
        ) from None
    record = record if isinstance(record, dict) else {}
    return TrainedMend(tensors, _mapping(record.get("hparams")), str(file), _mapping(record.get("info")))


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def load_hypernetwork(path: str | Path, model: Any, hparams: Mapping[str, Any]) -> TrainedMend:
    """A trained hypernetwork from ``path``: editguard's ``.safetensors`` file or EasyEdit's archive (the torch
    file its trainer saves, read with ``weights_only=True``), refused in one sentence unless it fits ``model``
    with ``hparams``."""
    file = Path(path)
    if not file.is_file():
        raise MendError(f"MEND hypernetwork {str(file)!r} does not exist; train one with train_mend or give EasyEdit's archive")
    trained = _read_safetensors(file) if file.suffix == ".safetensors" else _read_easyedit_archive(file)
    check_fits(model, hparams, trained)
    return trained


def _read_easyedit_archive(file: Path) -> TrainedMend:
    """EasyEdit's archive: ``{"model": MEND.state_dict() (with "model_config"), "opt": ..., ...}``, or the state alone."""
    import pickle

    import torch

    from editguard.errors import brief

    try:
        with torch.serialization.safe_globals(_config_classes(file)):
            archive = torch.load(str(file), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        unsafe = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(error))
        if unsafe:
            raise MendError(
                f"{file} holds a pickled {unsafe.group(1)}, and editguard unpickles only tensors and transformers configs "
                "(weights_only); re-save the hypernetwork's state dict alone: torch.save({'model': archive['model']}, path)"
            ) from None
        raise MendError(f"{file} is not a readable torch archive (UnpicklingError); give the file EasyEdit's MEND trainer saved") from None
    except Exception as error:
        raise MendError(f"{file} is not a readable torch archive ({brief(error)}); give the file EasyEdit's MEND trainer saved") from None
    state = _archived_state(archive)
    if state is None:
        raise MendError(
            f"{file} is not an EasyEdit MEND archive: it holds no 'model' state dict of the hypernetwork; "
            "give the file EasyEdit's MEND trainer saved"
        )
    config = state.pop("model_config", None)
    tensors = {str(name).replace("gtn.", "mend."): value for name, value in state.items()}  # older MEND named it "gtn"
    if not all(isinstance(value, torch.Tensor) for value in tensors.values()):
        wrong = next(name for name, value in tensors.items() if not isinstance(value, torch.Tensor))
        raise MendError(f"{file}: entry {wrong!r} of the archive's 'model' state dict is not a tensor; give the file EasyEdit's MEND trainer saved")
    info = {"trained_for": _described(config)} if config is not None else {}
    return TrainedMend(tensors, {}, str(file), info)


def _archived_state(archive: Any) -> dict[str, Any] | None:
    """The hypernetwork's state: the archive's "model" entry (EasyEdit's trainer), or the archive itself when it is a
    bare state dict (every entry a tensor, but the model config)."""
    import torch

    if not isinstance(archive, dict):
        return None
    if isinstance(archive.get("model"), dict) and archive["model"]:
        return dict(archive["model"])
    tensors = [value for name, value in archive.items() if name != "model_config"]
    return dict(archive) if tensors and all(isinstance(value, torch.Tensor) for value in tensors) else None


def _config_classes(file: Path) -> list[Any]:
    """The transformers config classes the archive pickles (EasyEdit stores the model's config): allowed, nothing else."""
    import importlib

    import torch
    from transformers import PretrainedConfig

    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(str(file))
    except Exception:  # not a zip archive: torch.load says what is wrong
        return []
    classes: list[Any] = []
    for name in names:
        module, _, attribute = name.rpartition(".")
        if not module.startswith("transformers."):
            continue
        with contextlib.suppress(ImportError, AttributeError):
            candidate = getattr(importlib.import_module(module), attribute)
            if isinstance(candidate, type) and issubclass(candidate, PretrainedConfig):
                classes.append(candidate)
    return classes


def _described(config: Any) -> str:
    """"gpt2 (hidden size 1600, 48 layers)" from a transformers config."""
    hidden = getattr(config, "hidden_size", None) or getattr(config, "n_embd", None)
    layers = getattr(config, "num_hidden_layers", None) or getattr(config, "n_layer", None)
    return f"{getattr(config, 'model_type', '?')} (hidden size {hidden}, {layers} layers)"


def check_fits(model: Any, hparams: Mapping[str, Any], trained: TrainedMend) -> None:
    """Refuse, in one sentence naming the file, a hypernetwork whose tensors or structure do not fit this model."""
    check_hparams(model, hparams)
    fix = "train one for this model with train_mend, or give the hyper-parameters it was trained with"
    differing = [name for name in STRUCTURE if name in trained.hparams and trained.hparams[name] != hparams.get(name)]
    if differing:
        raise MendError(
            f"{trained.source} is a MEND hypernetwork trained with {differing[0]}={trained.hparams[differing[0]]!r}, "
            f"not {hparams.get(differing[0])!r}; {fix}"
        )
    expected = _expected_shapes(model, hparams)
    problem = _shape_problem(expected, trained.tensors)
    if problem:
        trained_for = trained.info.get("trained_for")
        this = _described(model.config)
        origin = f" (it was trained for {trained_for}, this model is {this})" if trained_for and trained_for != this else ""
        raise MendError(f"{trained.source} is a MEND hypernetwork for another model or other hyper-parameters{origin}: {problem}; {fix}")


def _shape_problem(expected: Mapping[str, tuple[int, ...]], tensors: Mapping[str, Any]) -> str | None:
    for name, shape in expected.items():
        if name not in tensors:
            return f"this model needs its tensor {name!r}, which it lacks"
        if tuple(tensors[name].shape) != shape:
            return f"its tensor {name!r} has shape {tuple(tensors[name].shape)}, this model needs {shape}"
    extra = sorted(set(tensors) - set(expected))
    if extra:
        return f"its tensor {extra[0]!r} has no place in this model's hypernetwork"
    return None


def _expected_shapes(model: Any, hparams: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    """The state easyeditor's MEND has for this model and ``hparams`` (built on the meta device: no memory)."""
    import torch

    params = _easyedit_params(hparams, "meta")
    parameters = dict(model.named_parameters())
    try:
        with torch.device("meta"):
            alg = _new_alg(model, params)
            return {name: tuple(value.shape) for name, value in alg.state_dict().items() if name != "model_config"}
    finally:
        _unhook(model, parameters.values())


# ----------------------------------------------------------------------------- editing


def mend_edit(
    model: Any, tokenizer: Any, requests: Sequence[EditRequest], hparams: Mapping[str, Any], trained: TrainedMend,
    *, mode: str = "batch",
) -> EditOutcome:  # fmt: skip
    """Edit ``requests`` with the trained hypernetwork through easyeditor's ``MendRewriteExecutor``: all in one
    edit (``mode="batch"``) or one after another, each on the model the last one edited (``"sequential"``).
    Returns the change as a ``WeightDelta`` of the edited matrices; the model is left exactly as it was."""
    import torch

    from editguard.editing.delta import delta_between
    from editguard.editing.quality import check_changed

    if mode not in EDIT_MODES:
        raise MendError(f"unknown MEND edit mode {mode!r}; choose one of {', '.join(EDIT_MODES)}")
    if not requests:
        raise MendError("MEND was given no edit requests; give at least one")
    check_fits(model, hparams, trained)
    device = _device_of(model)
    params = _easyedit_params(hparams, device)
    rows = [{"prompt": request.prompt, "target_new": request.target_new} for request in requests]
    with _prepared(model, tokenizer, params.inner_params), _failures_named(f"editing ({mode})", model):
        torch.manual_seed(int(hparams["seed"]))
        parameters = dict(model.named_parameters())
        base = {name: parameters[name].detach().clone() for name in params.inner_params}
        executor = _executor(model, tokenizer, params, trained)
        started = time.perf_counter()
        groups = [rows] if mode == "batch" else [[row] for row in rows]
        for group in groups:
            executor.apply_to_model(model, tokenizer, group, params, copy=False, return_orig_weights=False, keep_original_weight=False)
        seconds = time.perf_counter() - started
        delta = delta_between(base, model)
    delta = replace(delta, metadata={"method": "MEND", "mode": mode, "hypernetwork": trained.source})
    check_changed(delta, f"MEND on {len(requests)} request(s)")
    metrics = _metrics(model, tokenizer, requests, delta, mode, seconds)
    return EditOutcome(delta, metrics, seconds)


def _executor(model: Any, tokenizer: Any, params: Any, trained: TrainedMend) -> Any:
    """easyeditor's ``MendRewriteExecutor``, initialised with this hypernetwork in eval mode (not from a pickle)."""
    from easyeditor.models.mend.mend_main import MendRewriteExecutor

    alg = _new_alg(model, params)
    alg.load_state_dict({**{name: tensor for name, tensor in trained.tensors.items()}, "model_config": model.config})
    alg.mend.train(False)  # easyeditor leaves it training: each edit would move its normalisation statistics
    executor = MendRewriteExecutor()
    executor.model, executor.tokenizer, executor.alg, executor.is_init = model, tokenizer, alg, True
    return executor


def _metrics(model: Any, tokenizer: Any, requests: Sequence[EditRequest], delta: Any, mode: str, seconds: float) -> tuple[dict[str, Any], ...]:
    """Per request, EasyEdit's post-edit accuracies (as ``quality.edit_quality`` measures them, on the whole edit)."""
    from editguard.editing.quality import edit_quality

    quality = edit_quality(model, tokenizer, requests, delta)
    metrics = []
    for index, measured in enumerate(quality.per_request):
        post: dict[str, Any] = {"rewrite_acc": [measured.reliability]}
        if measured.generalisation is not None:
            post["rephrase_acc"] = [measured.generalisation]
        if measured.locality is not None:
            post["locality"] = {"neighborhood_acc": [measured.locality]}
        if measured.portability is not None:
            post["portability"] = {"one_hop_acc": [measured.portability]}
        notes = {"weights_changed": True, "seconds": seconds / len(requests), "mode": mode}
        metrics.append({"case_id": index, "post": post, "editguard": notes})
    return tuple(metrics)



# ----------------------------------------------------------------------------- the gate's edit session


def gate_hparams(model: Any) -> dict[str, Any]:
    """MEND's hyper-parameters in the gate: ``mend_hparams``, trained for ``max_iters`` steps on the project's set
    (``training_requests``: a file instead), unless ``archive`` names a hypernetwork trained already."""
    return {**mend_hparams(model), "max_iters": DEFAULT_TRAINING_STEPS, "training_requests": None}


class MendRun:
    """An edit session with MEND (``editors.EditSession``): on entry the hypernetwork is read (``archive``) or
    trained once into the cache; ``apply`` edits request after request, each on the model the last one edited,
    ``apply_batch`` several as one edit; ``delta`` is the change since entry, ``restart`` and exit put it back."""

    def __init__(
        self, model: Any, tokenizer: Any, hparams: Mapping[str, Any], *, seed: int = 0, cache_dir: Path | None = None,
        model_fingerprint: str | None = None,
    ) -> None:  # fmt: skip
        self.model, self.tokenizer, self.hparams = model, tokenizer, dict(hparams)
        self.cache_dir, self.model_fingerprint = cache_dir, model_fingerprint

    def __enter__(self) -> MendRun:
        check_hparams(self.model, self.hparams)
        self.trained = self._hypernetwork()
        parameters = dict(self.model.named_parameters())
        self._saved = {name: parameters[name].detach().clone() for name in self.hparams["inner_params"]}
        return self

    def __exit__(self, *exc: object) -> None:
        self.restart()

    def _hypernetwork(self) -> TrainedMend:
        from editguard.models import weights_fingerprint
        from editguard.atomic import default_cache_dir

        if self.hparams.get("archive"):
            return load_hypernetwork(self.hparams["archive"], self.model, self.hparams)
        requests = training_requests(self.hparams.get("training_requests"))
        steps = self.hparams.get("max_iters") or DEFAULT_TRAINING_STEPS
        fingerprint = self.model_fingerprint or weights_fingerprint(self.model)
        cache = self.cache_dir or default_cache_dir()
        return train_mend(self.model, self.tokenizer, requests, self.hparams, cache, fingerprint, max_steps=int(steps))

    def apply(self, requests: Sequence[EditRequest]) -> list[dict[str, Any]]:
        metrics: list[dict[str, Any]] = []
        for request in requests:
            metrics += self._edited([request])
        return metrics

    def apply_batch(self, requests: Sequence[EditRequest]) -> list[dict[str, Any]]:
        return self._edited(requests)

    def _edited(self, requests: Sequence[EditRequest]) -> list[dict[str, Any]]:
        """One MEND edit of ``requests`` on the model as it is now, added to it in place."""
        import torch

        from editguard.editing.delta import added

        outcome = mend_edit(self.model, self.tokenizer, requests, self.hparams, self.trained, mode="batch")
        parameters = dict(self.model.named_parameters())
        with torch.no_grad():
            for name, tensor in outcome.delta.tensors.items():
                parameters[name].copy_(added(parameters[name], tensor))
        return list(outcome.metrics)

    def delta(self) -> Any:
        from editguard.editing.delta import delta_between

        return replace(delta_between(self._saved, self.model), metadata={"method": "MEND", "hypernetwork": self.trained.source})

    def restart(self) -> None:
        import torch

        parameters = dict(self.model.named_parameters())
        with torch.no_grad():
            for name, tensor in self._saved.items():
                parameters[name].copy_(tensor)
