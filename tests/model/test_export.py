"""The edit exported for a serving engine: a checkpoint folder and a PEFT LoRA adapter (editing/export.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from editguard.editing.delta import WeightDelta, applied
from editguard.editing.export import ExportError, export_checkpoint, export_lora, factor

GATE = ("--pyargs", "editguard.gate", "-p", "no:cacheprovider", "-W", "ignore::pytest.PytestAssertRewriteWarning", "--editguard-device", "cpu")


@pytest.fixture(scope="module")
def demo_delta(smollm2: Any, cache_dir: Path) -> WeightDelta:
    """The three demo ROME edits on SmolLM2 (cached by the edit cache, as the gate computes them)."""
    from editguard.settings import Settings
    from editguard.stages.edits import Edits

    return Edits(Settings(cache_dir=cache_dir, device="cpu"), lambda: smollm2).primary.delta


def test_the_lora_adapter_of_the_demo_edits_reproduces_the_delta(smollm2: Any, demo_delta: WeightDelta, tmp_path: Path) -> None:
    """Three sequential ROME edits of one matrix: rank 3, and B @ A equal to the delta to float32 rounding."""
    import torch
    from safetensors.torch import load_file

    export = export_lora(smollm2.model, demo_delta, tmp_path / "lora", base_model="smollm2")
    (name, delta), = demo_delta.tensors.items()
    assert export.rank == 3
    scale = float(delta.abs().max())
    assert export.max_abs_error < 1e-5 * scale  # float32 rounding of the factors, measured in float64
    tensors = load_file(str(tmp_path / "lora" / "adapter_model.safetensors"))
    key = "base_model.model." + name.removesuffix(".weight")
    rebuilt = tensors[f"{key}.lora_B.weight"] @ tensors[f"{key}.lora_A.weight"]  # (out, in), float32
    assert float((rebuilt - delta).abs().max()) < 1e-5 * scale
    config = json.loads((tmp_path / "lora" / "adapter_config.json").read_text())
    assert (config["peft_type"], config["r"], config["lora_alpha"], config["target_modules"]) == ("LORA", 3, 3, ["down_proj"])
    assert config["layers_to_transform"] == [4]
    assert torch.equal(smollm2.model.get_parameter(name), smollm2.model.get_parameter(name))  # nothing applied


def test_peft_loads_the_adapter_onto_the_base_with_the_deltas_outcomes(smollm2: Any, demo_delta: WeightDelta, tmp_path: Path) -> None:
    """PEFT (the reference loader) on a copy of the base: the same answers, log-likelihoods within 1e-4."""
    import copy

    from peft import PeftModel

    from editguard.evaluator import Evaluator
    from editguard.stages.examples import sample
    from editguard.stages.scoring import score_examples
    from editguard.tasks import get_task
    from editguard.tasks.sources import load_records, parse_data_source

    export_lora(smollm2.model, demo_delta, tmp_path / "lora", base_model="smollm2")
    task = get_task("sentiment", "default")
    chosen = sample(task.examples(load_records("sentiment", parse_data_source("probe"))), 32)
    with applied(smollm2.model, demo_delta):
        by_delta = score_examples(task, chosen, Evaluator(smollm2.model, smollm2.tokenizer))
    merged = PeftModel.from_pretrained(copy.deepcopy(smollm2.model), str(tmp_path / "lora")).merge_and_unload()
    by_adapter = score_examples(task, chosen, Evaluator(merged.eval(), smollm2.tokenizer))
    assert {k: r.outcome for k, r in by_adapter.items()} == {k: r.outcome for k, r in by_delta.items()}
    unmerged = PeftModel.from_pretrained(copy.deepcopy(smollm2.model), str(tmp_path / "lora")).eval()
    ids = smollm2.tokenizer("The Eiffel Tower is located in the city of", return_tensors="pt")["input_ids"]
    import torch

    with torch.inference_mode(), applied(smollm2.model, demo_delta):
        expected = torch.log_softmax(smollm2.model(ids).logits[0, -1], -1)
    with torch.inference_mode():
        served = torch.log_softmax(unmerged(input_ids=ids).logits[0, -1], -1)  # the adapter as an engine runs it: x A^T B^T
    assert float((served - expected).abs().max()) < 1e-4


def test_the_checkpoint_is_base_plus_delta_and_the_base_is_left_as_it_was(tiny: Any, tmp_path: Path) -> None:
    import torch

    from editguard.editing.delta import delta_between
    from editguard.models import weights_fingerprint

    name = "transformer.h.0.mlp.c_proj.weight"
    delta = WeightDelta({name: 0.01 * torch.randn_like(tiny.model.get_parameter(name)).detach()})
    before = weights_fingerprint(tiny.model)
    folder = export_checkpoint(tiny.model, tiny.tokenizer, delta, tmp_path / "checkpoint")
    assert weights_fingerprint(tiny.model) == before
    from transformers import AutoModelForCausalLM

    edited = AutoModelForCausalLM.from_pretrained(folder)
    assert sorted(p.name for p in folder.iterdir() if p.suffix == ".safetensors") == ["model.safetensors"]
    again = delta_between({n: p.detach() for n, p in tiny.model.named_parameters()}, edited)
    assert again.changed_parameters == (name,)
    assert torch.allclose(again.tensors[name], delta.tensors[name], atol=1e-7)


def test_a_full_rank_delta_is_refused_with_a_sentence() -> None:
    import torch

    generator = torch.Generator().manual_seed(0)
    with pytest.raises(ExportError, match=r"has rank 16 of at most 16: it is not low-rank.*serve the exported checkpoint"):
        factor("model.layers.0.mlp.down_proj", torch.randn(24, 16, generator=generator))
    low = torch.randn(24, 2, generator=generator) @ torch.randn(2, 16, generator=generator)
    assert factor("m", low).rank == 2


def test_a_tensor_that_is_not_a_linear_weight_is_refused(tiny: Any, tmp_path: Path) -> None:
    import torch

    name = "transformer.h.0.mlp.c_proj.weight"  # GPT-2's Conv1D, not a Linear layer
    delta = WeightDelta({name: torch.zeros_like(tiny.model.get_parameter(name)).detach()})
    with pytest.raises(ExportError, match=r"'transformer.h.0.mlp.c_proj.weight' is not the weight of a Linear layer"):
        export_lora(tiny.model, delta, tmp_path / "lora", base_model="tiny")
    assert not (tmp_path / "lora").exists()


def test_the_gate_exports_the_edited_model(pytester: pytest.Pytester, tiny: Any) -> None:
    """--editguard-export-edited from the gate: a checkpoint, no adapter for GPT-2's Conv1D (said why), export.json."""
    import torch

    name = "transformer.h.0.mlp.c_proj.weight"
    delta = WeightDelta({name: 0.01 * torch.ones_like(tiny.model.get_parameter(name)).detach()})
    delta.save(pytester.path / "delta.safetensors")
    args = (*GATE, "--editguard-model", "tiny-gpt2", "--editguard-limit", "8", "--editguard-abilities", "sentiment")
    pytester.runpytest_inprocess(*args, "--editguard-update-baselines").assert_outcomes(passed=1)
    result = pytester.runpytest_inprocess(*args, "--editguard-edited", "delta.safetensors", "--editguard-export-edited", "out")
    result.stdout.fnmatch_lines(["*edited model exported to *out (no LoRA adapter: *not the weight of a Linear layer*"])
    written = json.loads((pytester.path / "out" / "export.json").read_text())
    assert written["lora"] is None and "Linear" in written["lora_refused"]
    assert (pytester.path / "out" / "checkpoint" / "model.safetensors").is_file()
