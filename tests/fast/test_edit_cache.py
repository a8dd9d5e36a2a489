"""The edit cache: an edit is computed once per key, even when several processes ask at once."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path
from typing import Any

from editguard.editing.cache import cached_edit, edit_key


def _delta_outcome(marker: Path) -> Any:
    import torch

    from editguard.editing.delta import WeightDelta
    from editguard.editing.recipes import EditOutcome

    with marker.open("a") as stream:  # one line per computation
        stream.write("computed\n")
    time.sleep(1.0)  # long enough for the other process to arrive while this one holds the lock
    return EditOutcome(WeightDelta({"w": torch.ones(2, 2)}), ({"post": {"rewrite_acc": [1.0]}},), 1.0)


def _worker(cache_dir: str, marker: str, results: Any) -> None:
    cached = cached_edit(Path(cache_dir), {"base": "b", "requests": ["r"]}, lambda: _delta_outcome(Path(marker)))
    results.put((cached.reused, cached.outcome.delta.fingerprint))


def test_two_processes_asking_for_the_same_edit_compute_it_once(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    marker = tmp_path / "computations.txt"
    workers = [context.Process(target=_worker, args=(str(tmp_path), str(marker), results)) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    outcomes = sorted(results.get(timeout=5) for _ in workers)
    assert marker.read_text().splitlines() == ["computed"]
    assert [reused for reused, _ in outcomes] == [False, True]
    assert outcomes[0][1] == outcomes[1][1]


def test_any_change_in_the_key_material_misses() -> None:
    material = {"base": "b", "method": "ROME", "hparams": {"layers": [4]}, "requests": [{"prompt": "p"}]}
    key = edit_key(material)
    assert edit_key(dict(material)) == key
    for field, value in [("base", "c"), ("method", "FT"), ("hparams", {"layers": [5]}), ("requests", [{"prompt": "q"}])]:
        assert edit_key({**material, field: value}) != key
