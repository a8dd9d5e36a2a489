"""Half precision on the tiny model: loading, exact deltas, edits by every method, and the gate's dtype bookkeeping.

The must-show on the embedded default (``editguard --editguard-dtype bfloat16``) is the same code path as the
pytester runs here on ``tiny-gpt2``; SmolLM2 in bfloat16 on a CPU is slow (bfloat16 matrix products have no
fast CPU kernels on these machines), so the suite does not load it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from editguard.editing.delta import WeightDelta, applied
from editguard.editing.editors import open_session
from editguard.editing.methods import resolve_hparams
from editguard.editing.requests import load_requests
from editguard.models import TINY, load_model, weights_fingerprint

QUICK = {  # this checks precision, not how well the edit takes
    "ROME": {"v_num_grad_steps": 3, "context_template_length_params": [[5, 5]]},
    "FT": {"num_steps": 5},
    "KN": {"steps": 2, "batch_size": 2},
    "MEMIT": {"v_num_grad_steps": 3, "mom2_dataset": "editguard-probes", "mom2_n_samples": 24},
}


@pytest.fixture(scope="module")
def tiny_bf16(cache_dir: Path) -> Any:
    return load_model(TINY, device="cpu", cache_dir=cache_dir, dtype="bfloat16")


def test_the_model_loads_in_the_dtype_asked_and_its_fingerprint_says_so(tiny: Any, tiny_bf16: Any) -> None:
    import torch

    assert {p.dtype for p in tiny_bf16.model.parameters()} == {torch.bfloat16} and tiny_bf16.dtype == "bfloat16"
    assert {p.dtype for p in tiny.model.parameters()} == {torch.float32} and tiny.dtype == "float32"
    assert tiny_bf16.fingerprint != tiny.fingerprint  # caches and baselines keep one entry per precision
    for name, parameter in tiny_bf16.model.named_parameters():  # the float32 weights, rounded once
        assert torch.equal(parameter, dict(tiny.model.named_parameters())[name].to(torch.bfloat16))


@pytest.mark.parametrize("name", sorted(QUICK))
def test_each_method_edits_in_bfloat16_and_base_plus_delta_is_the_edited_model(name: str, tiny_bf16: Any, cache_dir: Path) -> None:
    """The delta is kept in float32 (exact), so applying it gives the edited bfloat16 weights bit for bit."""
    import torch

    model = tiny_bf16.model
    hparams = resolve_hparams(name, model, None, "cpu") | QUICK[name]
    with open_session(model, tiny_bf16.tokenizer, hparams, cache_dir=cache_dir, model_fingerprint=tiny_bf16.fingerprint) as run:
        run.apply(load_requests("demo")[:1])
        delta = run.delta()
        edited = {key: dict(model.named_parameters())[key].detach().clone() for key in delta.tensors}
    assert edited and weights_fingerprint(model) == tiny_bf16.fingerprint  # restored
    assert {tensor.dtype for tensor in delta.tensors.values()} == {torch.float32}
    assert all(bool(tensor.isfinite().all()) and bool(tensor.any()) for tensor in delta.tensors.values())
    with applied(model, delta):
        parameters = dict(model.named_parameters())
        for key, weight in edited.items():
            assert parameters[key].dtype == torch.bfloat16 and torch.equal(parameters[key], weight), key
    assert weights_fingerprint(model) == tiny_bf16.fingerprint


def test_a_half_precision_delta_rounded_to_bfloat16_would_not_give_the_edit_back() -> None:
    """Why deltas stay float32: the difference of two bfloat16 numbers needs more bits than bfloat16 has."""
    import torch

    from editguard.editing.delta import added, exact_difference

    base = torch.tensor([1.0, 3.0, 0.0078125, -2.5], dtype=torch.bfloat16)
    edited = torch.tensor([1.0078125, 0.0107421875, 260.0, -2.484375], dtype=torch.bfloat16)
    delta = exact_difference(edited, base)
    assert delta.dtype == torch.float32 and torch.equal(added(base, delta), edited)
    assert not torch.equal(base + (edited - base), edited)  # the same sum in bfloat16 loses the edit


GATE = (
    "--pyargs", "editguard.gate", "-p", "no:cacheprovider", "-W", "ignore::pytest.PytestAssertRewriteWarning",
    "--editguard-model", TINY, "--editguard-device", "cpu", "--editguard-limit", "8", "--editguard-abilities", "sentiment",
    "--editguard-no-signal", "gate",
)  # fmt: skip


def test_the_gate_records_and_checks_baselines_per_dtype(pytester: pytest.Pytester, tiny: Any) -> None:
    pytester.makepyprojecttoml("[tool.editguard]\ntolerance = 0.5\ninconclusive = 'warn'\n")
    name = "transformer.h.1.mlp.c_proj.weight"
    WeightDelta({name: dict(tiny.model.named_parameters())[name].detach().clone() * 1e-3}).save(pytester.path / "edit.safetensors")
    edited = ("--editguard-edited", "edit.safetensors")

    recorded = pytester.runpytest_subprocess(*GATE, "--editguard-update-baselines", "--editguard-report", "f32.json")
    recorded.assert_outcomes(passed=1)
    baseline = pytester.path / "baselines" / TINY / "sentiment.json"
    assert json.loads(baseline.read_text()).get("dtype", "float32") == "float32"  # auto on a CPU; float32 is left unsaid

    stale = pytester.runpytest_subprocess(*GATE, *edited, "--editguard-dtype", "bfloat16")
    stale.assert_outcomes(failed=1, skipped=1)
    stale.stdout.fnmatch_lines([
        f"*baseline {baseline} is stale: it was recorded with the model in float32, and this run loads it in bfloat16; "
        "re-record it with --editguard-update-baselines, or run with --editguard-dtype float32*"
    ])  # fmt: skip

    again = pytester.runpytest_subprocess(*GATE, "--editguard-dtype", "bfloat16", "--editguard-update-baselines")
    again.assert_outcomes(passed=1)
    assert json.loads(baseline.read_text())["dtype"] == "bfloat16"
    gated = pytester.runpytest_subprocess(*GATE, *edited, "--editguard-dtype", "bfloat16", "--editguard-report", "bf16.json")
    gated.assert_outcomes(passed=1, skipped=1)
    gated.stdout.fnmatch_lines(["*model dtype: bfloat16 (--editguard-dtype)*"])
    report = json.loads((pytester.path / "bf16.json").read_text())
    assert report["dtype"] == "bfloat16" and [row["dtype"] for row in report["abilities"] if row["ability"] == "sentiment"] == ["bfloat16"]
