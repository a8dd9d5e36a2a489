from __future__ import annotations

from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from editguard.editing.delta import DeltaError, WeightDelta
from editguard.editing.rect import kept_count, regularize, relative_change

NAME = "layer.weight"


def _pair(seed: int, shape: tuple[int, ...] = (4, 6)) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=generator), torch.randn(shape, generator=generator)


def test_keeps_the_entries_with_the_largest_relative_change() -> None:
    delta = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]])
    weight = torch.tensor([[10.0, 0.5, 4.0], [2.0, 0.25, 8.0]])  # ratios 0.1 2 0.25 / 0.5 4 0.125
    kept = regularize(WeightDelta({NAME: delta}), {NAME: weight}, 0.5).tensors[NAME]
    assert kept.tolist() == [[0.0, 1.0, 0.0], [1.0, 1.0, 0.0]]


def test_relative_not_absolute_change_decides() -> None:
    delta = torch.tensor([5.0, 0.1])
    weight = torch.tensor([100.0, 0.01])  # the small delta is the larger relative change
    assert regularize(WeightDelta({NAME: delta}), {NAME: weight}, 0.5).tensors[NAME].tolist() == [0.0, pytest.approx(0.1)]


@settings(max_examples=60, deadline=None)
@given(
    rows=st.integers(1, 7),
    columns=st.integers(1, 7),
    fraction=st.floats(0.01, 1.0),
    seed=st.integers(0, 10_000),
)
def test_exactly_the_top_count_is_kept(rows: int, columns: int, fraction: float, seed: int) -> None:
    delta, weight = _pair(seed, (rows, columns))
    kept = regularize(WeightDelta({NAME: delta}), {NAME: weight}, fraction).tensors[NAME]
    count = kept_count(fraction, delta.numel())
    mask = kept != 0
    assert int(mask.sum()) == count  # random normals: no delta entry is exactly 0
    assert torch.equal(kept[mask], delta[mask])  # kept entries are untouched
    ratio = relative_change(delta, weight)
    if count < delta.numel():
        assert ratio[mask].min() >= ratio[~mask].max()


@pytest.mark.parametrize(("fraction", "numel", "count"), [(0.001, 10, 1), (0.4, 10, 4), (0.4, 11, 5), (0.7, 10, 7), (1.0, 3, 3), (0.5, 0, 0)])
def test_kept_count_is_the_ceiling_without_float_noise(fraction: float, numel: int, count: int) -> None:
    assert kept_count(fraction, numel) == count


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_fraction_one_is_the_identity(seed: int) -> None:
    delta, weight = _pair(seed)
    delta[0, 0] = 0.0
    weight[1, 1] = 0.0
    result = regularize(WeightDelta({NAME: delta}), {NAME: weight}, 1.0)
    assert torch.equal(result.tensors[NAME], delta)


def test_a_zero_weight_counts_as_an_infinite_change_and_zero_over_zero_ranks_last() -> None:
    delta = torch.tensor([0.0, 1e-6, 3.0, 2.0])
    weight = torch.tensor([0.0, 0.0, 1.0, 1.0])
    assert relative_change(delta, weight).tolist() == [0.0, float("inf"), 3.0, 2.0]
    kept = regularize(WeightDelta({NAME: delta}), {NAME: weight}, 0.25).tensors[NAME]
    assert kept.tolist() == [0.0, pytest.approx(1e-6), 0.0, 0.0]


def test_ties_are_broken_by_lowest_index() -> None:
    delta = torch.ones(2, 3)
    weight = torch.ones(2, 3)
    kept = regularize(WeightDelta({NAME: delta}), {NAME: weight}, 0.5).tensors[NAME]
    assert kept.tolist() == [[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]]


def test_nothing_given_is_changed_and_dtype_and_shape_are_kept() -> None:
    delta = torch.randn(3, 5, generator=torch.Generator().manual_seed(3)).to(torch.bfloat16)
    weight = torch.randn(3, 5, generator=torch.Generator().manual_seed(4)).to(torch.bfloat16)
    original = WeightDelta({NAME: delta}, {"method": "ROME"})
    delta_before, weight_before = delta.clone(), weight.clone()
    result = regularize(original, {NAME: weight})
    assert torch.equal(delta, delta_before) and torch.equal(weight, weight_before)
    assert original.metadata == {"method": "ROME"}
    assert result.tensors[NAME].dtype == torch.bfloat16
    assert result.tensors[NAME].shape == (3, 5)
    assert result.tensors[NAME] is not delta


def test_metadata_records_the_fraction_beside_what_was_there() -> None:
    delta, weight = _pair(0)
    result = regularize(WeightDelta({NAME: delta}, {"method": "ROME"}), {NAME: weight}, 0.25)
    assert result.metadata == {"method": "ROME", "rect_keep_fraction": 0.25}


def test_base_weights_from_a_model_or_a_function() -> None:
    model = torch.nn.Linear(4, 3, bias=False)
    delta = torch.randn(3, 4, generator=torch.Generator().manual_seed(5))
    from_model = regularize(WeightDelta({"weight": delta}), model).tensors["weight"]
    from_function = regularize(WeightDelta({"weight": delta}), lambda name: model.weight).tensors["weight"]
    assert torch.equal(from_model, from_function)
    assert int((from_model != 0).sum()) == kept_count(0.4, 12)


def test_every_tensor_is_regularised_on_its_own() -> None:
    first, second = _pair(6, (2, 5)), _pair(7, (4,))
    delta = WeightDelta({"a": first[0], "b": second[0]})
    result = regularize(delta, {"a": first[1], "b": second[1]}, 0.5)
    assert int((result.tensors["a"] != 0).sum()) == 5
    assert int((result.tensors["b"] != 0).sum()) == 2


def test_a_missing_or_misshapen_base_weight_is_named() -> None:
    delta = WeightDelta({NAME: torch.ones(2, 2)})
    with pytest.raises(DeltaError, match="'layer.weight' has no base weight"):
        regularize(delta, {"other": torch.ones(2, 2)})
    with pytest.raises(DeltaError, match=r"'layer.weight' has shape \(2, 2\), its base weight has \(4,\)"):
        regularize(delta, {NAME: torch.ones(4)})


@pytest.mark.parametrize("fraction", [0.0, -0.1, 1.5, float("nan"), True])
def test_a_fraction_outside_zero_to_one_names_the_option(fraction: Any) -> None:
    with pytest.raises(ValueError, match=r"--editguard-rect must be a fraction in \(0, 1\]"):
        regularize(WeightDelta({NAME: torch.ones(2)}), {NAME: torch.ones(2)}, fraction)
