"""The editor seam's contract, for every entry of the table and for a user's own editor, on the tiny GPT-2: a finite,
non-zero delta of only the tensors the entry declares; the model restored bit for bit; the edit cached by content."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from editguard.editing.cache import cached_edit
from editguard.editing.methods import resolve_hparams
from editguard.editing.editors import editor_for
from editguard.editing.modes import compute_edit
from editguard.editing.methods import METHODS, EditError
from editguard.editing.requests import load_requests
from editguard.models import weights_fingerprint

# Fewer optimisation steps than the defaults: the contract is about what changes and what comes back, not how well.
QUICK: dict[str, dict[str, Any]] = {
    "ROME": {"v_num_grad_steps": 4, "context_template_length_params": [[5, 5]]},
    "MEMIT": {"v_num_grad_steps": 4, "mom2_dataset": "editguard-probes", "mom2_n_samples": 24},
    "FT": {"num_steps": 3},
    "KN": {"steps": 2, "batch_size": 2},
    "MEND": {"max_iters": 12, "log_interval": 6},
}
USER_EDITOR = '''
import torch

LAYER = "transformer.h.1.mlp.c_proj.weight"


def scaled(model, tokenizer, requests):
    """Shrinks one MLP projection a little per request: the edited weights, as a dict."""
    weight = dict(model.named_parameters())[LAYER]
    return {LAYER: weight.detach() * (1 - 0.01 * len(requests))}


def in_place(model, tokenizer, requests):
    """Edits in place and returns the model, as EasyEdit's own editors do."""
    with torch.no_grad():
        dict(model.named_parameters())[LAYER].mul_(0.99)
    return model


def not_a_parameter(model, tokenizer, requests):
    return {"transformer.h.1.attn.bias": torch.zeros(1)}


def wrong_type(model, tokenizer, requests):
    return [1, 2, 3]


def raises(model, tokenizer, requests):
    raise RuntimeError("the editor broke")
'''


@pytest.fixture(scope="module")
def user_module(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("editors")
    (folder / "my_editors.py").write_text(USER_EDITOR)
    sys.path.insert(0, str(folder))
    yield "my_editors"
    sys.path.remove(str(folder))
    sys.modules.pop("my_editors", None)


def _hparams(name: str, tiny: Any) -> dict[str, Any]:
    return resolve_hparams(name, tiny.model, None, "cpu") | QUICK.get(name, {})


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_editor_of_the_table_keeps_the_contract(name: str, tiny: Any, cache_dir: Path, tmp_path: Path) -> None:
    _keeps_the_contract(name, _hparams(name, tiny), tiny, cache_dir, tmp_path)


def test_a_users_editor_keeps_the_contract(user_module: str, tiny: Any, cache_dir: Path, tmp_path: Path) -> None:
    for function in ("scaled", "in_place"):
        spec = f"{user_module}:{function}"
        _keeps_the_contract(spec, resolve_hparams(spec, tiny.model, None, "cpu"), tiny, cache_dir, tmp_path / function)


def _keeps_the_contract(name: str, hparams: dict[str, Any], tiny: Any, cache_dir: Path, tmp_path: Path) -> None:
    import torch

    editor = editor_for(name)
    requests = load_requests("demo")[:2]
    fingerprint = weights_fingerprint(tiny.model)
    flags = {parameter: p.requires_grad for parameter, p in tiny.model.named_parameters()}
    outcome = compute_edit(tiny.model, tiny.tokenizer, requests, hparams, cache_dir=cache_dir, model_fingerprint=fingerprint)
    delta = outcome.delta
    assert delta.tensors, f"{name} changed nothing"
    assert set(delta.changed_parameters) <= set(editor.touched(tiny.model, hparams)), name
    for tensor_name, tensor in delta.tensors.items():
        assert bool(torch.isfinite(tensor).all()) and float(tensor.abs().max()) > 0, tensor_name
    assert weights_fingerprint(tiny.model) == fingerprint  # restored bit for bit
    assert {parameter: p.requires_grad for parameter, p in tiny.model.named_parameters()} == flags
    from editguard.editing.delta import applied

    with applied(tiny.model, delta):
        assert weights_fingerprint(tiny.model) != fingerprint
    assert weights_fingerprint(tiny.model) == fingerprint  # applied and reverted bit for bit
    material = {"base": fingerprint, **editor.describe(hparams), "requests": [r.as_dict() for r in requests]}
    calls: list[int] = []

    def computed() -> Any:
        calls.append(1)
        return outcome

    first = cached_edit(tmp_path, material, computed)
    again = cached_edit(tmp_path, material, computed)
    assert (first.reused, again.reused, len(calls)) == (False, True, 1)  # cached by content: computed once
    assert again.outcome.delta.fingerprint == delta.fingerprint


@pytest.mark.parametrize(
    ("function", "says"),
    [
        ("not_a_parameter", "returned edited weights with 'transformer.h.1.attn.bias', which is not a parameter of the model"),
        ("wrong_type", "returned list; return the edited weights (a dict of parameter name -> tensor), a WeightDelta, or the model"),
        ("raises", "raised RuntimeError: the editor broke on 1 request(s)"),
    ],
)
def test_a_users_editor_that_breaks_the_contract_is_one_sentence(user_module: str, tiny: Any, function: str, says: str) -> None:
    spec = f"{user_module}:{function}"
    fingerprint = weights_fingerprint(tiny.model)
    with pytest.raises(EditError, match=says.replace("(", r"\(").replace(")", r"\)")):
        compute_edit(tiny.model, tiny.tokenizer, load_requests("demo")[:1], resolve_hparams(spec, tiny.model, None, "cpu"))
    assert weights_fingerprint(tiny.model) == fingerprint


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("no_such_module_here:edit", "module 'no_such_module_here' cannot be imported (ModuleNotFoundError"),
        ("my_editors:missing", "module 'my_editors' has no 'missing'; name a function(model, tokenizer, requests)"),
        ("my_editors:LAYER", "module 'my_editors' has a str named, not a callable 'LAYER'"),
        ("just_a_name", "unknown edit method 'just_a_name'; choose one of FT, KN, MEMIT, MEND, ROME, or name your own editor as module:function"),
    ],
)
def test_a_users_editor_that_cannot_be_had_is_one_sentence(user_module: str, spec: str, says: str) -> None:
    with pytest.raises(EditError, match=says.replace("(", r"\(").replace(")", r"\)")):
        editor_for(spec)


def test_the_users_editor_module_source_is_in_the_cache_key(user_module: str, tmp_path: Path) -> None:
    first = editor_for(f"{user_module}:scaled").describe({})
    assert first["editor"] == f"{user_module}:scaled" and "source" in first["version"]
    assert editor_for(f"{user_module}:in_place").describe({})["version"] != first["version"]  # another function
    assert textwrap.dedent(USER_EDITOR)


# ----------------------------------------------------------------------------- in the gate

GATE = (
    "--pyargs", "editguard.gate", "-p", "no:cacheprovider", "-W", "ignore::pytest.PytestAssertRewriteWarning",
    "--editguard-device", "cpu", "--editguard-limit", "8", "--editguard-abilities", "canary,sentiment",
    "--editguard-no-signal", "gate", "--editguard-edits", "demo",
)  # fmt: skip


@pytest.fixture
def project(pytester: pytest.Pytester, tiny: Any, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    pytester.makepyprojecttoml("[tool.editguard]\nmodel = 'tiny-gpt2'\ntolerance = 0.5\n")
    pytester.makepyfile(my_gate_editors=USER_EDITOR)
    monkeypatch.syspath_prepend(str(pytester.path))
    pytester.runpytest_inprocess(*GATE, "--editguard-update-baselines").assert_outcomes(passed=2)
    return pytester


def test_a_users_editor_is_gated_with_an_edit_count_curve(project: pytest.Pytester) -> None:
    result = project.runpytest_inprocess(
        *GATE, "--editguard-editor", "my_gate_editors:scaled", "--editguard-edit-counts", "1,2,3", "--editguard-report", "r.json",
        "-k", "not test_edit_quality",
    )  # fmt: skip
    result.assert_outcomes(passed=2)
    out = result.stdout.str()
    assert "edit: 3 my_gate_editors:scaled edits (sequential) from demo edits" in out
    assert "canary: first edit count -- plain:" in out and "sentiment: first edit count -- plain:" in out
    report = __import__("json").loads((project.path / "r.json").read_text())
    curve = next(row["curve"] for row in report["abilities"] if row["ability"] == "sentiment")
    assert [point[0] for point in curve["plain"]] == [1, 2, 3]
    again = project.runpytest_inprocess(*GATE, "--editguard-editor", "my_gate_editors:scaled", "-k", "not test_edit_quality")
    again.stdout.fnmatch_lines(["*edit: 3 my_gate_editors:scaled edits*reused from the edit cache*"])  # cached by content


def test_mend_is_gated_in_batch_mode_with_its_hypernetwork_trained_once(project: pytest.Pytester) -> None:
    (project.path / "mend.yaml").write_text("max_iters: 12\nlog_interval: 6\n")
    args = (*GATE, "--editguard-method", "MEND", "--editguard-mode", "batch", "--editguard-hparams", "mend.yaml", "-k", "not test_edit_quality")
    first = project.runpytest_inprocess(*args)
    first.assert_outcomes(passed=2)
    assert "edit: 3 MEND edits (batch) from demo edits" in first.stdout.str()
    second = project.runpytest_inprocess(*args, "--editguard-rescore")
    second.assert_outcomes(passed=2)
    second.stdout.fnmatch_lines(["*reused from the edit cache*"])


def test_an_editor_that_cannot_be_imported_is_told_at_start_up(project: pytest.Pytester) -> None:
    result = project.runpytest_inprocess(*GATE, "--editguard-editor", "my_gate_editors:nothing_here")
    assert result.ret == 4
    assert "--editguard-editor 'my_gate_editors:nothing_here': module 'my_gate_editors' has no 'nothing_here'" in result.stdout.str() + result.stderr.str()
