"""Models larger than one device, tested on a CPU: a model split by accelerate gives the same outcomes and the
same delta as the whole model; and tokenizers that return ``token_type_ids`` edit and score like any other.

Two CPU "devices": in a device map that names the CPU two ways ("cpu" and ``torch.device("cpu")``) accelerate
treats the modules mapped to "cpu" as offloaded, exactly as it does next to a GPU: their parameters move to the
meta device and the values stay in the hook that loads them before each forward pass.  The other modules run in
place.  So the split model goes through accelerate's real hooks, offload included, without a GPU.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from editguard.editing.delta import WeightDelta, applied
from editguard.editing.methods import EditError, resolve_hparams
from editguard.editing.modes import compute_edit
from editguard.editing.requests import load_requests
from editguard.models import TINY, Placement, dispatched, load_model, normalise_tokenizer, weights_fingerprint
from editguard.settings import Settings
from editguard.stages.examples import Examples
from editguard.stages.scoring import score_examples

ROME_QUICK = {"v_num_grad_steps": 3, "context_template_length_params": [[5, 5]]}


def _results(loaded: Any, tokenizer: Any = None, delta: WeightDelta | None = None) -> dict[str, Any]:
    from editguard.evaluator import Evaluator

    examples = Examples(Settings(limit=12, abilities=("sentiment", "closed_qa")))
    results = {}
    for ability in ("closed_qa", "sentiment"):
        task = examples.task(ability)
        with applied(loaded.model, delta) if delta is not None else _nothing():
            evaluator = Evaluator(loaded.model, tokenizer or loaded.tokenizer, max_batch=4, progress=False)
            results[ability] = score_examples(task, examples.sample(task), evaluator)
    return results


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


@pytest.fixture(scope="module")
def split(cache_dir: Path) -> Any:
    """The tiny GPT-2 with its second block and final norm offloaded (meta parameters, values in the hooks)."""
    import torch

    loaded = load_model(TINY, device="cpu", cache_dir=cache_dir)
    here = torch.device("cpu")
    device_map = {
        "transformer.wte": here, "transformer.wpe": here, "transformer.drop": here, "lm_head": here,
        "transformer.h.0": here, "transformer.h.1": "cpu", "transformer.ln_f": "cpu",
    }  # fmt: skip
    model = dispatched(loaded.model, Placement(device_map=device_map))
    return loaded.__class__(loaded.name, loaded.source, model, loaded.tokenizer, loaded.fingerprint, "cpu")


def test_a_split_model_has_the_same_weights_outcomes_and_edit_as_the_whole(tiny: Any, split: Any, cache_dir: Path) -> None:
    offloaded = {name for name, p in split.model.named_parameters() if p.is_meta}
    assert "transformer.h.1.mlp.c_proj.weight" in offloaded and "transformer.h.0.mlp.c_proj.weight" not in offloaded
    assert weights_fingerprint(split.model) == tiny.fingerprint  # read through the hooks
    assert _results(split) == _results(tiny)

    hparams = resolve_hparams("ROME", split.model, None, "cpu") | ROME_QUICK
    request = load_requests("demo")[:1]
    on_split = compute_edit(split.model, split.tokenizer, request, hparams, cache_dir=cache_dir, model_fingerprint=split.fingerprint)
    whole = compute_edit(tiny.model, tiny.tokenizer, request, hparams, cache_dir=cache_dir, model_fingerprint=tiny.fingerprint)
    assert on_split.delta.changed_parameters == ("transformer.h.0.mlp.c_proj.weight",)
    assert on_split.delta.fingerprint == whole.delta.fingerprint
    assert _results(split, delta=whole.delta) == _results(tiny, delta=whole.delta)
    assert weights_fingerprint(split.model) == tiny.fingerprint  # the edit was reverted in place


def test_a_delta_on_an_offloaded_layer_is_applied_where_accelerate_keeps_it(tiny: Any, split: Any) -> None:
    name = "transformer.h.1.mlp.c_proj.weight"
    delta = WeightDelta({name: dict(tiny.model.named_parameters())[name].detach() * -0.5})
    damaged = _results(split, delta=delta)
    assert damaged == _results(tiny, delta=delta) and damaged != _results(tiny)
    assert weights_fingerprint(split.model) == tiny.fingerprint


def test_an_edit_of_an_offloaded_layer_is_refused_in_one_sentence(split: Any) -> None:
    hparams = resolve_hparams("KN", split.model, None, "cpu")  # KN may touch every layer, the offloaded one too
    with pytest.raises(EditError, match="'transformer.h.1.mlp.c_proj.weight' is offloaded by the device map.*--editguard-edited"):
        compute_edit(split.model, split.tokenizer, load_requests("demo")[:1], hparams)


def test_a_device_map_file_loads_the_model_through_accelerate(tmp_path: Path, cache_dir: Path, tiny: Any) -> None:
    path = tmp_path / "map.json"
    path.write_text(json.dumps({"transformer": "cpu", "lm_head": "cpu"}))
    loaded = load_model(TINY, device="cpu", cache_dir=cache_dir, device_map=str(path))
    assert loaded.device_map == {"transformer": "cpu", "lm_head": "cpu"} and loaded.device == "cpu"
    assert loaded.fingerprint == tiny.fingerprint


def test_a_tokenizer_returning_token_type_ids_edits_and_scores_like_one_that_does_not(tiny: Any, cache_dir: Path) -> None:
    """A PreTrainedTokenizerFast that returns token_type_ids (4.x's default; 5.x's when its model inputs name them)
    broke every easyeditor method."""
    import copy

    from transformers import PreTrainedTokenizerFast

    def bare() -> Any:
        # a padded call earlier in this worker leaves padding switched on in the shared backend; a fresh
        # tokenizer built from a copy of it would inherit that pad token, so the copy starts without one
        backend = copy.deepcopy(tiny.tokenizer.backend_tokenizer)
        backend.no_padding()
        backend.no_truncation()
        inputs = ["input_ids", "token_type_ids", "attention_mask"]
        return PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<|endoftext|>", model_input_names=inputs)

    tiny.tokenizer(["Paris", "The Eiffel Tower"], padding=True)  # as any earlier scoring does, whatever the order
    plain = bare()
    assert "token_type_ids" in plain("The Eiffel Tower") and plain.pad_token is None
    request = load_requests("demo")[:1]
    for name, quick in (("ROME", ROME_QUICK), ("FT", {"num_steps": 5})):
        hparams = resolve_hparams(name, tiny.model, None, "cpu") | quick
        with_types = compute_edit(tiny.model, plain, request, hparams, cache_dir=cache_dir, model_fingerprint=tiny.fingerprint)
        reference = compute_edit(tiny.model, tiny.tokenizer, request, hparams, cache_dir=cache_dir, model_fingerprint=tiny.fingerprint)
        assert with_types.delta.fingerprint == reference.delta.fingerprint, name
    assert "token_type_ids" not in plain("The Eiffel Tower") and plain.pad_token == "<|endoftext|>"  # normalised for editing
    other = bare()
    assert _results(tiny, normalise_tokenizer(other)) == _results(tiny)


def test_offloaded_embeddings_still_score_and_show_their_layout(tiny: Any, cache_dir: Path) -> None:
    """Inputs go to the first device that holds a weight, not to the meta device of offloaded embeddings."""
    import torch

    from editguard.editing.layouts import layout_of

    loaded = load_model(TINY, device="cpu", cache_dir=cache_dir)
    here = torch.device("cpu")
    device_map = {"transformer.wte": "cpu", "transformer.wpe": "cpu", "lm_head": "cpu", "transformer.drop": here,
                  "transformer.h.0": here, "transformer.h.1": here, "transformer.ln_f": here}  # fmt: skip
    model = dispatched(loaded.model, Placement(device_map=device_map))
    assert model.get_input_embeddings().weight.is_meta
    # accelerate gives the tied output matrix its own (meta) parameter, so its name is lm_head's there
    assert dataclasses.replace(layout_of(model), lm_head="") == dataclasses.replace(layout_of(tiny.model), lm_head="")
    split = loaded.__class__(loaded.name, loaded.source, model, loaded.tokenizer, loaded.fingerprint, "cpu")
    assert _results(split) == _results(tiny)
