"""The EasyEdit adapter: easyeditor imports cleanly on this stack, and ROME really edits."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from editguard.editing.methods import EditError, resolve_hparams
from editguard.editing.modes import compute_edit
from editguard.editing.requests import EditRequest, load_requests
from editguard.models import weights_fingerprint


def test_easyeditor_imports_without_touching_the_process() -> None:
    """Run in a fresh interpreter: placeholders stay private, no bytecode, logging and RNG untouched."""
    script = """
import importlib.util, logging, random, sys
import transformers
random.seed(1234); before = random.random(); random.seed(1234)
handlers = list(logging.getLogger().handlers)
from editguard.editing.easyedit_compat import import_easyeditor, placeholder_names
easyeditor = import_easyeditor()
assert hasattr(easyeditor, "BaseEditor") and hasattr(easyeditor, "ROMEHyperParams")
assert random.random() == before, "easyeditor re-seeded the global RNG"
assert logging.getLogger().handlers == handlers, "easyeditor configured the root logger"
assert "timm" in placeholder_names() or importlib.util.find_spec("timm") is not None
for name in placeholder_names():
    assert name not in sys.modules, name
    assert importlib.util.find_spec(name) is None, name  # still missing for everyone but easyeditor
print("ok", sorted(placeholder_names()))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("ok")


def test_easyeditor_code_is_device_neutral_and_site_packages_untouched(monkeypatch: pytest.MonkeyPatch) -> None:
    from editguard.editing.easyedit_compat import _RewritingLoader, import_easyeditor

    import_easyeditor()
    compute_v = sys.modules["easyeditor.models.rome.compute_v"]
    source = Path(compute_v.__file__).read_text()
    assert 'f"cuda:{hparams.device}"' in source  # the installed file still says cuda ...
    assert "cuda:" not in str(compute_v.compute_v.__code__.co_consts)  # ... the code that runs does not
    loader = compute_v.__spec__.loader
    assert isinstance(loader, _RewritingLoader)

    def no_bytecode(*args: object) -> None:
        pytest.fail("the rewriting loader wrote bytecode into site-packages")

    monkeypatch.setattr(loader, "set_data", no_bytecode)
    assert not any("cuda:" in constant for constant in _string_constants(loader.get_code(compute_v.__name__)))
    assert any("cuda:" in constant for constant in _string_constants(compile(source, "compute_v.py", "exec")))


def _string_constants(code: Any) -> list[str]:
    """Every string constant of a code object and the code objects nested in it."""
    found = []
    for constant in code.co_consts:
        if isinstance(constant, str):
            found.append(constant)
        elif hasattr(constant, "co_consts"):
            found += _string_constants(constant)
    return found


def test_rome_hparams_follow_the_architecture(tiny: Any, smollm2: Any) -> None:
    gpt2 = resolve_hparams("rome", tiny.model.config, None, "cpu")
    llama = resolve_hparams("ROME", smollm2.model.config, None, "cpu")
    assert gpt2["rewrite_module_tmp"] == "transformer.h.{}.mlp.c_proj"
    assert llama["rewrite_module_tmp"] == "model.layers.{}.mlp.down_proj"
    assert llama["layers"] == [4] and llama["v_loss_layer"] == 29


def test_yaml_overrides_and_errors(tiny: Any, tmp_path: Path) -> None:
    path = tmp_path / "rome.yaml"
    path.write_text("alg_name: ROME\nlayers: [1]\nv_num_grad_steps: 3\nmodel_name: ignored\n")
    hparams = resolve_hparams("ROME", tiny.model.config, path, "cpu")
    assert hparams["layers"] == [1] and hparams["v_num_grad_steps"] == 3 and "model_name" not in hparams
    path.write_text("alg_name: MEMIT\n")
    with pytest.raises(EditError, match="is for MEMIT, not ROME"):
        resolve_hparams("ROME", tiny.model.config, path, "cpu")
    with pytest.raises(EditError, match="unknown edit method 'GRACE'"):
        resolve_hparams("GRACE", tiny.model.config, None, "cpu")


def test_rome_on_the_tiny_model_changes_only_the_edited_layer(tiny: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # EasyEdit would write logs/run.log here
    hparams = resolve_hparams("ROME", tiny.model.config, None, "cpu") | {"v_num_grad_steps": 3}
    request = EditRequest("The Eiffel Tower is located in", "The Eiffel Tower", "Rome")
    outcome = compute_edit(tiny.model, tiny.tokenizer, [request], hparams)
    assert outcome.delta.changed_parameters == ("transformer.h.0.mlp.c_proj.weight",)
    assert weights_fingerprint(tiny.model) == tiny.fingerprint  # the model came back unchanged
    assert tiny.tokenizer.padding_side == "right"
    again = compute_edit(tiny.model, tiny.tokenizer, [request], hparams)
    assert again.delta.fingerprint == outcome.delta.fingerprint  # seeded: the same edit twice
    assert not (tmp_path / "logs").exists()


def test_rome_edits_the_embedded_default_and_the_edits_take(smollm2: Any, cache_dir: Path) -> None:
    """The demo edits on SmolLM2 (the run the gate makes, cached for the lifecycle tests)."""
    from editguard.editing.delta import applied
    from editguard.settings import Settings
    from editguard.stages.edits import Edits

    flags = {name: p.requires_grad for name, p in smollm2.model.named_parameters()}
    edit = Edits(Settings(cache_dir=cache_dir, device="cpu"), lambda: smollm2).primary  # the loaded model, reused
    delta, info = edit.delta, edit.info
    assert delta.changed_parameters == ("model.layers.4.mlp.down_proj.weight",)
    assert weights_fingerprint(smollm2.model) == smollm2.fingerprint  # restored bit for bit
    assert {name: p.requires_grad for name, p in smollm2.model.named_parameters()} == flags
    assert info.rewrite_success == 1.0, info.metrics
    assert all(metrics["editguard"]["weights_changed"] for metrics in info.metrics)
    requests = load_requests("demo")
    with applied(smollm2.model, delta):
        for request in requests:
            ids = smollm2.tokenizer(request.prompt, return_tensors="pt")
            output = smollm2.model.generate(**ids, max_new_tokens=4, do_sample=False, pad_token_id=smollm2.tokenizer.pad_token_id)
            assert request.target_new in smollm2.tokenizer.decode(output[0, ids["input_ids"].shape[1]:])
    assert weights_fingerprint(smollm2.model) == smollm2.fingerprint
    logging.getLogger(__name__).info("demo edit: %s", info)


def test_memit_reads_a_block_output_as_a_tuple_or_a_tensor() -> None:
    """Llama blocks return a tensor in transformers 4.55, GPT-2 blocks a tuple: compute_z takes either."""
    import torch

    from editguard.editing.easyedit_compat import _MODULE_REWRITES, import_easyeditor

    import_easyeditor()
    compute_z = sys.modules["easyeditor.models.memit.compute_z"]
    installed = Path(compute_z.__file__).read_bytes()
    pairs, _ = _MODULE_REWRITES["easyeditor.models.memit.compute_z"]
    assert all(old in installed for old, _ in pairs)  # the installed file still has every pattern rewritten
    tensor = torch.ones(2, 3)
    assert compute_z._block_output((tensor, None)) is tensor
    assert compute_z._block_output(tensor) is tensor


def test_every_method_gets_every_required_field_for_both_families() -> None:
    """The defaults build easyeditor's own hyper-parameter class, for GPT-2 XL and a 30-layer Llama."""
    from transformers import GPT2Config, LlamaConfig

    from editguard.editing.easyedit_compat import import_easyeditor
    from editguard.editing.mend import EDITGUARD_KEYS  # editguard's own field (MEND's training set), not easyeditor's
    from editguard.editing.methods import METHODS

    easyeditor = import_easyeditor()
    gpt2_xl, smollm2_like = GPT2Config(n_layer=48), LlamaConfig(num_hidden_layers=30, tie_word_embeddings=True)
    for name, record in sorted(METHODS.items()):
        for config in (gpt2_xl, smollm2_like):
            hparams = resolve_hparams(name, config, None, "cpu")
            fields = {"model_name": "x", **{key: value for key, value in hparams.items() if key not in EDITGUARD_KEYS}}
            getattr(easyeditor, record.hparams_class)(**fields)  # raises on a missing field
    assert resolve_hparams("MEMIT", gpt2_xl, None, "cpu")["layers"] == [12, 13, 14, 15, 16]  # EasyEdit: 13-17
    assert resolve_hparams("MEMIT", smollm2_like, None, "cpu")["layers"] == [4, 5, 6, 7, 8]  # EasyEdit Llama: 4-8
    assert resolve_hparams("MEMIT", smollm2_like, None, "cpu")["lm_head_module"] == "model.embed_tokens"  # tied
    assert resolve_hparams("FT", smollm2_like, None, "cpu")["layers"] == [19]  # EasyEdit Llama-2: 21 of 32
    assert resolve_hparams("FT", gpt2_xl, None, "cpu")["layers"] == [0]


def test_yaml_for_another_method_with_easyedit_floats(tiny: Any, tmp_path: Path) -> None:
    path = tmp_path / "memit.yaml"
    path.write_text('alg_name: "MEMIT"\nmodel_name: "./hugging_cache/gpt2-xl"\ndevice: 0\nlayers: [1]\nv_lr: 5e-1\nmom2_update_weight: 1.5E+4\nmom2_dataset: "wikipedia"\n')
    hparams = resolve_hparams("memit", tiny.model.config, path, "cpu")
    assert hparams["layers"] == [1] and hparams["v_lr"] == 0.5 and hparams["mom2_update_weight"] == 15000.0
    assert hparams["device"] == "cpu" and hparams["alg_name"] == "MEMIT"
    with pytest.raises(EditError, match="is for MEMIT, not FT"):
        resolve_hparams("FT", tiny.model.config, path, "cpu")
    with pytest.raises(EditError, match="would download 'wikipedia'"):  # no local statistics, no network
        compute_edit(tiny.model, tiny.tokenizer, load_requests("demo")[:1], hparams, cache_dir=tmp_path)
    assert weights_fingerprint(tiny.model) == tiny.fingerprint
