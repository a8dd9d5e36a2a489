"""Edited models made elsewhere (``editing/external.py``): delta files and checkpoint folders, against a tiny module.

Safetensors files of every dtype (ints, bools, float8), NaN and inf, empty ones, wrong shapes and names, odd
metadata; files that are no safetensors (a pickle renamed, damaged bytes); checkpoint folders of shards.
``check_edited_path``, ``read_delta_file`` and ``load_edited`` give a delta that fits the module, is finite and
changes something (and reverts exactly), or one ``DeltaError`` / ``UnchangedWeights`` sentence naming the file.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch
from fuzz_support import FUZZ, ODD_DOCUMENTS, assert_one_sentence, byte_damage, count, fresh_folder, odd_bytes
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import save, save_file

from editguard.editing.delta import applied
from editguard.editing.external import check_edited_path, load_edited, read_delta_file


class Tiny(torch.nn.Module):
    """Two layers and a head tied to the embeddings, as a language model's is."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(5, 4)
        self.layer = torch.nn.Linear(4, 4)
        self.head = torch.nn.Linear(4, 5, bias=False)
        self.head.weight = self.embed.weight


torch.manual_seed(0)
MODEL = Tiny()
PARAMETERS = {name: tuple(parameter.shape) for name, parameter in MODEL.named_parameters(remove_duplicate=False)}
BASE = {name: tensor.clone() for name, tensor in MODEL.state_dict().items()}
DTYPES = [
    torch.float32, torch.float16, torch.bfloat16, torch.float64, torch.int8, torch.int32, torch.int64, torch.uint8,
    torch.bool, torch.float8_e4m3fn, torch.float8_e5m2,
]  # fmt: skip
ODD_VALUES = [0.0, 1.0, -1e-3, 1e30, float("nan"), float("inf"), float("-inf")]


@st.composite
def tensor_for(draw: Any, shape: tuple[int, ...]) -> torch.Tensor:
    if draw(st.integers(0, 7)) == 7:  # a shape that fits no parameter
        shape = draw(st.sampled_from([(), (0,), (4, 5), (1,), (4, 4, 1)]))
    size = 1
    for dim in shape:
        size *= dim
    fill = draw(st.sampled_from(["random", "random", "random", "zeros", "odd"]))
    values = torch.zeros(size) if fill == "zeros" else torch.randn(size, generator=torch.Generator().manual_seed(draw(st.integers(0, 99))))
    if fill == "odd" and size:
        values[draw(st.integers(0, size - 1))] = draw(st.sampled_from(ODD_VALUES))
    dtype = draw(st.sampled_from(DTYPES)) if draw(st.integers(0, 4)) == 4 else torch.float32
    return values.reshape(shape).to(dtype)


@st.composite
def tensors(draw: Any) -> dict[str, torch.Tensor]:
    names = draw(st.lists(st.sampled_from(list(PARAMETERS)), max_size=3, unique=True))
    if draw(st.integers(0, 7)) == 7:  # a name the model does not have
        names.append(draw(st.sampled_from(["layer.weight.extra", "missing", ""])))
    return {name: draw(tensor_for(PARAMETERS.get(name, (2,)))) for name in names}


METADATA = st.sampled_from(
    [None, {"editguard": "{}"}, {"editguard": '{"method": "ROME"}'}, {"editguard": "not json"}, {"editguard": "[1, 2]"},
     {"editguard": "1" * 5000}, {"editguard": "[" * 100_000}, {"other": "x"}]
)  # fmt: skip


def _edited(base: torch.Tensor, change: torch.Tensor, changed: bool) -> torch.Tensor:
    """A checkpoint's weight: the base's, changed or not, or (a change of another shape) the change itself."""
    if change.shape != base.shape:
        return change
    return base + change.to(torch.float32) if changed else base.clone()


@st.composite
def delta_file(draw: Any) -> tuple[str, Any]:
    """(suffix, bytes) of a delta file, or ("/", {shard name: tensors}) for a checkpoint folder."""
    kind = draw(st.sampled_from(["safetensors", "safetensors", "safetensors", "checkpoint", "damaged", "pickle", "odd"]))
    if kind == "checkpoint":  # edited weights, not differences: each a base weight, changed or not
        shards = {}
        for number in range(draw(st.integers(0, 2))):
            chosen = draw(st.lists(st.sampled_from(sorted(BASE)), max_size=3, unique=True))
            shard = {name: _edited(BASE[name], draw(tensor_for(tuple(BASE[name].shape))), draw(st.booleans())) for name in chosen}
            shard.update(draw(tensors()) if draw(st.integers(0, 3)) == 3 else {})
            shards[f"model-{number}.safetensors"] = shard
        return "/", shards
    if kind == "pickle":
        buffer = io.BytesIO()
        torch.save(draw(tensors()), buffer)
        return draw(st.sampled_from([".safetensors", ".bin"])), buffer.getvalue()
    if kind == "odd":
        return ".safetensors", draw(st.one_of(ODD_DOCUMENTS, odd_bytes))
    data = save({name: tensor.contiguous() for name, tensor in draw(tensors()).items()}, metadata=draw(METADATA))
    if kind == "damaged":
        data = byte_damage(data, draw) if draw(st.booleans()) else len(data).to_bytes(8, "little") + data[8:]
    return (draw(st.sampled_from([".pt", ""])) if draw(st.integers(0, 7)) == 7 else ".safetensors"), data


def _write(folder: Path, suffix: str, content: Any) -> Path:
    if suffix == "/":
        path = folder / "edited"
        path.mkdir()
        for name, shard in content.items():
            save_file({key: value.contiguous() for key, value in shard.items()}, str(path / name))
        return path
    path = folder / f"delta{suffix}"
    path.write_bytes(content)
    return path


@settings(FUZZ, max_examples=600)
@given(content=delta_file())
def test_an_edited_model_gives_a_fitting_finite_delta_or_one_sentence(tmp_path: Path, content: tuple[str, Any]) -> None:
    count("deltas")
    path = _write(fresh_folder(tmp_path), *content)
    try:
        check_edited_path(path)
        read = None if path.is_dir() else read_delta_file(path)
        delta = load_edited(path, MODEL, read)
    except Exception as error:  # noqa: BLE001 -- the property: editguard's own error, or none
        assert_one_sentence(error, str(path))
        return
    parameters = dict(MODEL.named_parameters())
    assert delta.tensors and any(bool(tensor.any()) for tensor in delta.tensors.values())
    for name, tensor in delta.tensors.items():
        assert name in parameters and tuple(tensor.shape) == tuple(parameters[name].shape), name
        assert tensor.is_floating_point() and bool(torch.isfinite(tensor.float()).all()), name
    assert isinstance(delta.metadata, dict)
    with applied(MODEL, delta):
        pass
    assert all(torch.equal(MODEL.state_dict()[name], tensor) for name, tensor in BASE.items())  # reverted bit for bit
