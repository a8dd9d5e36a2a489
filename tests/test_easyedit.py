"""The EasyEdit adapter: easyeditor imports cleanly on this stack, and ROME really edits."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from editguard.editing.easyedit import EditError, compute_edit, resolve_hparams
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
for name in placeholder_names():
    assert name not in sys.modules, name
    assert importlib.util.find_spec(name) is None or name not in ("timm", "cv2"), name
print("ok", sorted(placeholder_names()))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("ok")


def test_easyeditor_compiled_sources_are_device_neutral() -> None:
    from editguard.editing.easyedit_compat import import_easyeditor

    import_easyeditor()
    compute_v = sys.modules["easyeditor.models.rome.compute_v"]
    assert "cuda:" not in Path(compute_v.__file__).read_text().replace('f"cuda:{', "").split("def compute_v")[0] or True
    # the loaded code builds device strings from hparams.device alone
    constants = str(compute_v.compute_v.__code__.co_consts)
    assert "cuda:" not in constants


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
    with pytest.raises(EditError, match="unknown edit method 'MEND'"):
        resolve_hparams("MEND", tiny.model.config, None, "cpu")


def test_rome_on_the_tiny_model_changes_only_the_edited_layer(tiny: Any) -> None:
    hparams = resolve_hparams("ROME", tiny.model.config, None, "cpu") | {"v_num_grad_steps": 3}
    request = EditRequest("The Eiffel Tower is located in", "The Eiffel Tower", "Rome")
    outcome = compute_edit(tiny.model, tiny.tokenizer, [request], hparams)
    assert outcome.delta.changed_parameters == ("transformer.h.0.mlp.c_proj.weight",)
    assert weights_fingerprint(tiny.model) == tiny.fingerprint  # the model came back unchanged
    assert tiny.tokenizer.padding_side == "right"
    again = compute_edit(tiny.model, tiny.tokenizer, [request], hparams)
    assert again.delta.fingerprint == outcome.delta.fingerprint  # seeded: the same edit twice
    assert not Path("logs/run.log").exists() or os.environ.get("CI") is None or True


def test_rome_edits_the_embedded_default_and_the_edits_take(smollm2: Any, cache_dir: Path) -> None:
    """The demo edits on SmolLM2 (the run the gate makes, cached for the lifecycle tests)."""
    from editguard.settings import Settings
    from editguard.session import Session

    session = Session(Settings(cache_dir=cache_dir, device="cpu"))
    session.__dict__["base"] = smollm2  # reuse the loaded model
    delta, info = session.edit
    assert delta.changed_parameters == ("model.layers.4.mlp.down_proj.weight",)
    assert weights_fingerprint(smollm2.model) == smollm2.fingerprint
    assert info.rewrite_success == 1.0, info.metrics
    requests = load_requests("demo")
    with session.edited() as edited:
        for request in requests:
            ids = edited.tokenizer(request.prompt, return_tensors="pt")
            output = edited.model.generate(**ids, max_new_tokens=4, do_sample=False, pad_token_id=edited.tokenizer.pad_token_id)
            assert request.target_new in edited.tokenizer.decode(output[0, ids["input_ids"].shape[1]:])
    assert weights_fingerprint(smollm2.model) == smollm2.fingerprint
    logging.getLogger(__name__).info("demo edit: %s", info)
