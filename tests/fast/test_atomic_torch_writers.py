"""Safe writes of the callers that need torch: weight deltas, MEMIT statistics and the edit cache.

A write that fails half way leaves the previous file (or no entry) and no temporary.  Model-free: tiny
tensors only.  The torch-free writers are tested in ``test_atomic.py``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from editguard import atomic
from editguard.editing import memit_stats
from editguard.editing.cache import cached_edit
from editguard.editing.delta import WeightDelta


class Interrupted(Exception):
    """Raised inside a writer after part of its output was written."""


def _delta(value: float) -> WeightDelta:
    import torch

    return WeightDelta({"w": torch.full((4, 4), value)}, {"method": "test"})


def _save_file_half_then_raise(tensors: Any, filename: Any, metadata: Any = None) -> None:
    Path(filename).write_bytes(b"half a safetensors file")
    raise Interrupted("half way")


def _savez_half_then_raise(stream: Any, **arrays: Any) -> None:
    stream.write(b"PK\x03\x04 half an archive")
    raise Interrupted("half way")


def _fail(*args: Any, **kwargs: Any) -> None:
    raise OSError("disk full")


@pytest.mark.parametrize("failure", ["os.replace fails", "writer dies half way"])
def test_a_delta_save_failing_half_way_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: str) -> None:
    import safetensors.torch

    path = tmp_path / "delta.safetensors"
    _delta(1.0).save(path)
    before = path.read_bytes()
    if failure == "os.replace fails":
        monkeypatch.setattr(atomic.os, "replace", _fail)
    else:
        monkeypatch.setattr(safetensors.torch, "save_file", _save_file_half_then_raise)
    with pytest.raises((OSError, Interrupted)):
        _delta(2.0).save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["delta.safetensors"]
    assert WeightDelta.load(path).fingerprint == _delta(1.0).fingerprint


def test_a_delta_file_follows_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0o027)
    try:
        _delta(1.0).save(tmp_path / "delta.safetensors")
    finally:
        os.umask(previous)
    assert (tmp_path / "delta.safetensors").stat().st_mode & 0o777 == 0o640


def test_a_memit_statistics_file_failing_half_way_keeps_the_old_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np
    import torch

    file, hparams = tmp_path / "stats" / "mlp_float32_mom2_3.npz", {"mom2_dtype": "float32", "mom2_n_samples": 3}
    memit_stats._write_npz(file, (torch.eye(2), 3), hparams)
    before = file.read_bytes()
    monkeypatch.setattr(np, "savez", _savez_half_then_raise)
    with pytest.raises(Interrupted):
        memit_stats._write_npz(file, (torch.eye(2) * 2, 3), hparams)
    monkeypatch.undo()
    assert file.read_bytes() == before
    assert os.listdir(file.parent) == [file.name]
    assert np.load(file)["mom2.mom2"].tolist() == [[1.0, 0.0], [0.0, 1.0]]


def test_an_edit_cache_entry_failing_half_way_leaves_no_entry_and_is_computed_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from editguard.editing.recipes import EditOutcome

    material, computed = {"base": "b", "requests": ["r"]}, []

    def compute() -> EditOutcome:
        computed.append(1)
        return EditOutcome(_delta(1.0), ({"post": {"rewrite_acc": [1.0]}},), 1.0)

    monkeypatch.setattr(WeightDelta, "save", lambda self, path: _save_file_half_then_raise({}, path))
    with pytest.raises(Interrupted):
        cached_edit(tmp_path, material, compute)
    monkeypatch.undo()
    assert [path.suffix for path in (tmp_path / "edits").iterdir()] == [".lock"]  # no staging folder, no entry
    first = cached_edit(tmp_path, material, compute)
    again = cached_edit(tmp_path, material, compute)
    assert (len(computed), first.reused, again.reused) == (2, False, True)
    assert sorted(os.listdir(first.path)) == ["delta.safetensors", "edit.json"]
    assert again.outcome.delta.fingerprint == first.outcome.delta.fingerprint


def test_a_full_disk_under_safetensors_is_an_unwritable_cache_and_the_edit_is_computed_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """safetensors says a full disk in its own exception, not an OSError: the write is told as the disk's and the run
    goes on with the edit it computed (on a real full tmpfs this was a traceback, and the edit computed per test)."""
    from safetensors import SafetensorError

    from editguard.editing.recipes import EditOutcome

    computed: list[int] = []

    def compute() -> EditOutcome:
        computed.append(1)
        return EditOutcome(_delta(1.0), ({"post": {"rewrite_acc": [1.0]}},), 1.0)

    def full_disk(tensors: Any, filename: Any, metadata: Any = None) -> None:
        Path(filename).write_bytes(b"part of a file")
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr("safetensors.torch.save_file", full_disk)
    atomic.forget_unwritable()
    result = cached_edit(tmp_path, {"base": "b", "requests": ["r"]}, compute)
    assert (len(computed), result.reused) == (1, False)
    assert result.outcome.delta.fingerprint == _delta(1.0).fingerprint
    assert list(atomic.unwritable_caches().values()) == ["no space left on the device"]
    assert [path.suffix for path in (tmp_path / "edits").iterdir()] == [".lock"]  # no half-written entry
    atomic.forget_unwritable()
