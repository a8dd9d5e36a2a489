"""Edited models made elsewhere, against a tiny torch module (no model is loaded): what the fuzz tier found.

The same inputs and many more go through ``tests/fuzz/test_fuzz_deltas.py``; ``tests/model/test_delta.py`` checks
them against a real model.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from editguard.editing.delta import DeltaError
from editguard.editing.external import check_edited_path, load_edited, read_delta_file


class Tied(torch.nn.Module):
    """An embedding and a head tied to it, as a language model's are."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(5, 4)
        self.layer = torch.nn.Linear(4, 4)
        self.head = torch.nn.Linear(4, 5, bias=False)
        self.head.weight = self.embed.weight


@pytest.fixture
def model() -> Tied:
    torch.manual_seed(0)
    return Tied()


def _edited(path: Path, model: torch.nn.Module) -> None:
    check_edited_path(path)
    load_edited(path, model, None if path.is_dir() else read_delta_file(path))


def test_a_float8_delta_is_checked_for_nan_not_raised(tmp_path: Path, model: Tied) -> None:
    path = tmp_path / "delta.safetensors"
    save_file({"layer.bias": torch.tensor([0.5, float("nan"), 0.0, 0.0]).to(torch.float8_e4m3fn)}, str(path))
    with pytest.raises(DeltaError, match=rf"edited model {path}: tensor 'layer.bias' holds 1 NaN or inf value \(of 4\)"):
        read_delta_file(path)


def test_a_tied_alias_of_another_shape_than_its_tensor_is_one_sentence(tmp_path: Path, model: Tied) -> None:
    path = tmp_path / "delta.safetensors"
    save_file({"embed.weight": torch.ones(5, 4), "head.weight": torch.ones(2)}, str(path))
    with pytest.raises(DeltaError, match=rf"^edited model {path}: tensor 'head.weight' is tied to 'embed.weight' .* changes them differently"):
        _edited(path, model)


@pytest.mark.parametrize("name", ["layer.weight", "head.weight"])
def test_a_checkpoint_weight_of_another_shape_names_its_shard(tmp_path: Path, model: Tied, name: str) -> None:
    folder = tmp_path / "edited"
    folder.mkdir()
    save_file({name: torch.ones(1)}, str(folder / "model.safetensors"))  # would broadcast against the base weight
    shard = folder / "model.safetensors"
    says = rf"^edited checkpoint '{shard}': tensor '{name}' has shape \(1,\), the base's has \(\d, 4\); was it made from this base model\?$"
    with pytest.raises(DeltaError, match=says):
        _edited(folder, model)


def test_a_checkpoint_weight_that_is_no_float_is_refused(tmp_path: Path, model: Tied) -> None:
    folder = tmp_path / "edited"
    folder.mkdir()
    save_file({"layer.weight": torch.ones(4, 4, dtype=torch.int8)}, str(folder / "model.safetensors"))
    with pytest.raises(DeltaError, match=r"tensor 'layer.weight' is int8, not floating point; save the edited model's weights as floats"):
        _edited(folder, model)


def test_a_checkpoint_tensor_the_base_lacks_says_what_to_check(tmp_path: Path, model: Tied) -> None:
    folder = tmp_path / "edited"
    folder.mkdir()
    save_file({"layer.extra": torch.ones(2)}, str(folder / "model.safetensors"))
    with pytest.raises(DeltaError, match=r"has tensor 'layer.extra', which the base model lacks; was it made from this base model\?$"):
        _edited(folder, model)
