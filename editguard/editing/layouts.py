"""Where an edit goes in a causal LM, found by looking at the loaded model, not by its family's name.

EasyEdit's methods name modules by templates (``rewrite_module_tmp``: the MLP output projection of layer
``{}``; ``layer_module_tmp``, ``mlp_module_tmp``, ``attn_module_tmp``, ``ln_f_module``, ``lm_head_module``).
``layout_of`` finds them in any decoder-only transformer from its module tree and one short forward pass:

- the decoder layers: the ``ModuleList`` of ``num_hidden_layers`` blocks of one class;
- the attention: the first module of a block whose class name says "Attention";
- the MLP output projection: the one linear map of a block, outside its attention, from a wider space to
  the model width (``Conv1D`` in GPT-2, which stores its weight transposed); its parent is the MLP;
- the MLP's input neurons (KN's): the first linear map from the model width to that wider space, or, when
  gate and up projections are fused into one twice as wide (Phi-3), the MLP's activation module;
- the final norm: the last module outside the blocks whose class name says "Norm";
- the embeddings and the output matrix from ``get_input_embeddings`` / ``get_output_embeddings``, the
  latter by the name its weight has among the parameters (a tied head is the embedding's weight);
- whether the MLP sees ``(batch, position, width)`` activations, as every EasyEdit method but FT assumes,
  or a flattened ``(tokens, width)`` (OPT): a two-token forward pass with a hook tells.

A table is used only where the structure cannot decide: ``_OUTPUT_NAMES`` breaks a tie between several
candidate output projections (never needed by the eleven families tested), and which of EasyEdit's
published recipes a model gets (``recipe``): Llama-2's for a gated MLP (gate and up projections: Llama,
Mistral, Qwen2, Gemma, Phi-3, OLMo), GPT-2 XL's for a plain one (GPT-2, GPT-J, GPT-NeoX, OPT, Falcon).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class LayoutError(ValueError):
    """The model's structure does not show where an edit goes; the message says what was not found."""


# Names of MLP output projections across transformers' causal LMs: only to break a tie between candidates.
_OUTPUT_NAMES = ("down_proj", "c_proj", "fc_out", "fc2", "dense_4h_to_h", "w2", "wo", "out_proj")


@dataclass(frozen=True)
class Layout:
    """Module paths of one model; ``block`` paths are relative to a decoder layer ("" is the layer itself)."""

    model_type: str
    layers: str  # "model.layers"
    depth: int
    attention: str  # "self_attn"
    mlp: str  # "mlp" ("" when the projections sit in the layer itself, as in OPT)
    mlp_out: str  # "mlp.down_proj"
    mlp_in: str  # "mlp.gate_proj": the module whose output KN reads as neuron activations
    final_norm: str | None  # "model.norm"
    embeddings: str  # "model.embed_tokens"
    lm_head: str  # "lm_head", or the embeddings' name when tied
    conv1d: bool  # GPT-2's Conv1D: weight is (in, out), not (out, in)
    gated: bool  # gate and up projections (SwiGLU / GeGLU)
    token_major: bool  # the MLP sees (tokens, width) instead of (batch, position, width)

    def layer(self, relative: str = "") -> str:
        """The template of a module of layer ``{}``: ``layer("mlp.down_proj")`` -> "model.layers.{}.mlp.down_proj"."""
        return f"{self.layers}.{{}}" + (f".{relative}" if relative else "")

    @property
    def recipe(self) -> str:
        """Which of EasyEdit's published settings fit: "llama" (gated MLP) or "gpt2" (plain MLP)."""
        return "llama" if self.gated else "gpt2"

    def templates(self) -> dict[str, str]:
        """EasyEdit's module templates."""
        return {
            "rewrite_module_tmp": self.layer(self.mlp_out),
            "layer_module_tmp": self.layer(),
            "mlp_module_tmp": self.layer(self.mlp),
            "attn_module_tmp": self.layer(self.attention),
            "ln_f_module": self.final_norm or "",
            "lm_head_module": self.lm_head,
        }

    def kn_attributes(self) -> dict[str, str]:
        """The attributes easyeditor's KnowledgeNeurons reads (it knows only GPT-2, GPT-J and Llama by name)."""
        embeddings = self.embeddings if self.conv1d else f"{self.embeddings}.weight"
        return {
            "transformer_layers_attr": self.layers,
            "input_ff_attr": self.mlp_in,
            "output_ff_attr": f"{self.mlp_out}.weight",
            "word_embeddings_attr": embeddings,
        }

    @property
    def kn_model_type(self) -> str:
        """KN's own switch: "gpt2" edits rows of a Conv1D weight, "llama" columns of a Linear one."""
        return "gpt2" if self.conv1d else "llama"


def layout_of(model: Any) -> Layout:
    """The layout of ``model`` (a transformers causal LM, on any device, meta included); LayoutError if unclear."""
    layers_path, layers = _decoder_layers(model)
    block = layers[0]
    hidden = _hidden_size(model)
    attention = _attention(block)
    linears = {name: widths for name, module in block.named_modules() if (widths := _widths(module)) is not None}
    outside = {name: widths for name, widths in linears.items() if not _inside(name, attention)}
    mlp_out = _mlp_output(outside, hidden, model)
    wide = outside[mlp_out][0]
    mlp = mlp_out.rpartition(".")[0]
    inputs = [name for name, (width_in, width_out) in outside.items() if width_in == hidden and width_out in (wide, 2 * wide)]
    return Layout(
        model_type=str(getattr(model.config, "model_type", "")),
        layers=layers_path,
        depth=len(layers),
        attention=attention,
        mlp=mlp,
        mlp_out=mlp_out,
        mlp_in=_mlp_input(block, outside, inputs, wide, mlp),
        final_norm=_final_norm(model, layers_path),
        embeddings=_name_of(model, model.get_input_embeddings()),
        lm_head=_output_matrix(model),
        conv1d=type(dict(block.named_modules())[mlp_out]).__name__ == "Conv1D",
        gated=len(inputs) >= 2 or any(outside[name][1] == 2 * wide for name in inputs),
        token_major=_flattens_mlp(model, f"{layers_path}.0.{mlp_out}"),
    )


def _hidden_size(model: Any) -> int:
    hidden = getattr(model.config, "hidden_size", None) or getattr(model.config, "n_embd", None)
    if not isinstance(hidden, int):
        raise LayoutError(f"the {type(model).__name__} config gives no hidden_size")
    return hidden


def _decoder_layers(model: Any) -> tuple[str, Any]:
    import torch

    depth = getattr(model.config, "num_hidden_layers", None)
    found = [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.ModuleList) and len(module) == depth and len({type(child) for child in module}) == 1
    ]
    if not found:
        raise LayoutError(f"{type(model).__name__} has no list of {depth} decoder layers (num_hidden_layers)")
    return found[0]


def _attention(block: Any) -> str:
    names = [name for name, module in block.named_modules() if name and "attention" in type(module).__name__.lower()]
    if not names:
        raise LayoutError(f"the decoder layer {type(block).__name__} has no module whose class is an Attention")
    return names[0]


def _inside(name: str, parent: str) -> bool:
    return name == parent or name.startswith(parent + ".")


def _widths(module: Any) -> tuple[int, int] | None:
    """(input width, output width) of a linear map (torch Linear or GPT-2's Conv1D), else None."""
    import torch

    weight = getattr(module, "weight", None)
    if isinstance(module, torch.nn.Linear):
        return int(module.in_features), int(module.out_features)
    if type(module).__name__ == "Conv1D" and weight is not None and weight.dim() == 2:
        return int(weight.shape[0]), int(weight.shape[1])
    return None


def _mlp_output(outside: dict[str, tuple[int, int]], hidden: int, model: Any) -> str:
    """The one map from a wider space back to the model width, outside the attention."""
    candidates = [name for name, (width_in, width_out) in outside.items() if width_out == hidden and width_in > hidden]
    if len(candidates) > 1:
        named = [name for name in candidates if name.rpartition(".")[2] in _OUTPUT_NAMES]
        candidates = named[:1] if named else candidates
    if len(candidates) != 1:
        raise LayoutError(
            f"{type(model).__name__}: no single MLP output projection (a linear map to width {hidden} from a wider "
            f"space) outside the attention; found {candidates or 'none'}"
        )
    return candidates[0]


def _mlp_input(block: Any, outside: dict[str, tuple[int, int]], inputs: list[str], wide: int, mlp: str) -> str:
    """KN's neurons: the first projection to the MLP's width, else (fused gate and up) the MLP's activation."""
    exact = [name for name in inputs if outside[name][1] == wide]
    if exact:
        return exact[0]
    modules = dict(block.named_modules())
    activations = [name for name, module in modules.items() if name and _inside(name, mlp or name) and _is_activation(module)]
    if not activations:
        raise LayoutError(f"the decoder layer {type(block).__name__} has no projection to the MLP's width {wide} nor an activation module")
    return activations[0]


def _is_activation(module: Any) -> bool:
    name = type(module).__name__.lower()
    return not list(module.parameters(recurse=False)) and any(part in name for part in ("gelu", "silu", "relu", "activation", "swish", "tanh"))


def _final_norm(model: Any, layers_path: str) -> str | None:
    norms = [
        name
        for name, module in model.named_modules()
        if "norm" in type(module).__name__.lower() and not _inside(name, layers_path)
    ]
    return norms[-1] if norms else None


def _name_of(model: Any, target: Any) -> str:
    for name, module in model.named_modules():
        if module is target:
            return name
    raise LayoutError(f"{type(model).__name__}: its embeddings are not one of its modules")


def _output_matrix(model: Any) -> str:
    """The parameter name of the output matrix without ".weight" (tied: the embedding's, listed first)."""
    head = model.get_output_embeddings()
    weight = getattr(head, "weight", None)
    for name, parameter in model.named_parameters():
        if parameter is weight:
            return name.removesuffix(".weight")
    raise LayoutError(f"{type(model).__name__} has no output matrix (get_output_embeddings)")


def _flattens_mlp(model: Any, mlp_out: str) -> bool:
    """A two-token forward pass: does the MLP output projection see (tokens, width) instead of (batch, position, width)?"""
    import torch

    seen: list[int] = []
    module = dict(model.named_modules())[mlp_out]
    if all(p.is_meta for p in model.parameters()):  # built from a config alone: assume the common (batch, position)
        return False

    def record(_: Any, inputs: tuple[Any, ...]) -> None:
        seen.append(inputs[0].dim())
        raise _Seen

    from editguard.models import input_device

    handle = module.register_forward_pre_hook(record)
    device = input_device(model)  # the embeddings may be offloaded by a device map
    try:
        with torch.no_grad():
            model(input_ids=torch.zeros((1, 2), dtype=torch.long, device=device))
    except _Seen:
        pass
    finally:
        handle.remove()
    if not seen:
        raise LayoutError(f"{type(model).__name__}: a forward pass never reached {mlp_out}")
    return seen[0] == 2


class _Seen(Exception):
    """Stops the probing forward pass once the MLP output projection has been reached."""
