from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from editguard.editing.delta import DeltaError, WeightDelta, applied
from editguard.editing.external import load_edited
from editguard.models import weights_fingerprint


def _noise_delta(model: Any, name: str = "transformer.h.0.mlp.c_proj.weight") -> WeightDelta:
    import torch

    parameter = dict(model.named_parameters())[name]
    generator = torch.Generator().manual_seed(1)
    return WeightDelta({name: torch.randn(parameter.shape, generator=generator) * 0.1})


def test_apply_changes_only_the_delta_tensors_and_revert_is_exact(tiny: Any) -> None:
    import torch

    delta = _noise_delta(tiny.model)
    before = {name: p.detach().clone() for name, p in tiny.model.named_parameters()}
    with applied(tiny.model, delta):
        changed = {name for name, p in tiny.model.named_parameters() if not torch.equal(p, before[name])}
        assert changed == {"transformer.h.0.mlp.c_proj.weight"}
    assert weights_fingerprint(tiny.model) == tiny.fingerprint  # bit for bit


def test_revert_happens_on_error(tiny: Any) -> None:
    with pytest.raises(RuntimeError), applied(tiny.model, _noise_delta(tiny.model)):
        raise RuntimeError("scoring failed")
    assert weights_fingerprint(tiny.model) == tiny.fingerprint


def test_save_and_load_round_trip(tiny: Any, tmp_path: Path) -> None:
    delta = WeightDelta(_noise_delta(tiny.model).tensors, {"method": "test"})
    delta.save(tmp_path / "delta.safetensors")
    loaded = WeightDelta.load(tmp_path / "delta.safetensors")
    assert loaded.fingerprint == delta.fingerprint
    assert loaded.metadata == {"method": "test"}


def test_a_delta_that_does_not_fit_is_refused(tiny: Any) -> None:
    import torch

    with pytest.raises(DeltaError, match="not a parameter"):
        with applied(tiny.model, WeightDelta({"nope.weight": torch.zeros(1)})):
            pass
    with pytest.raises(DeltaError, match="has shape"):
        with applied(tiny.model, WeightDelta({"transformer.h.0.mlp.c_proj.weight": torch.zeros(2, 2)})):
            pass


def test_an_edited_checkpoint_becomes_the_same_delta(tiny: Any, tmp_path: Path) -> None:
    delta = _noise_delta(tiny.model)
    with applied(tiny.model, delta):
        tiny.model.save_pretrained(tmp_path / "edited")
    from_checkpoint = load_edited(tmp_path / "edited", tiny.model)
    assert from_checkpoint.changed_parameters == delta.changed_parameters
    import torch

    name = delta.changed_parameters[0]
    assert torch.allclose(from_checkpoint.tensors[name], delta.tensors[name], atol=1e-6)
