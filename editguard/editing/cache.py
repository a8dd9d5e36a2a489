"""The edit cache: an edit is computed once per (base weights, method, hyper-parameters, requests).

Entries live under ``<cache>/edits/<key>/`` as ``delta.safetensors`` plus ``edit.json`` (EasyEdit's
metrics and the time it took).  A file lock per key makes concurrent xdist workers wait for the one
that computes instead of computing the same edit twice (``atomic.compute_once``); an entry is written
into a staging folder renamed into place (``atomic.atomic_folder``), so readers never see half of one.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from editguard.atomic import atomic_folder, cache_write, compute_once
from editguard.editing.delta import WeightDelta
from editguard.editing.recipes import EditOutcome
from editguard.fingerprint import fingerprint

CACHE_FORMAT = 1


@dataclass(frozen=True)
class CachedEdit:
    outcome: EditOutcome
    key: str
    path: Path
    reused: bool  # True when read from the cache, False when computed by this process


def edit_key(material: Mapping[str, Any]) -> str:
    return fingerprint({"format": CACHE_FORMAT, **material})


_COMPUTED: dict[str, EditOutcome] = {}  # edits this process computed but could not write: never computed twice


def cached_edit(cache_dir: Path, material: Mapping[str, Any], compute: Callable[[], EditOutcome]) -> CachedEdit:
    key = edit_key(material)
    folder = cache_dir / "edits" / key
    if key in _COMPUTED:
        return CachedEdit(_COMPUTED[key], key, folder, reused=False)

    def compute_and_write() -> EditOutcome:
        outcome = compute()
        if cache_write(cache_dir, lambda: _write(folder, outcome, material)) is None:
            _COMPUTED[key] = outcome  # the cache cannot hold it: this process keeps it
        return outcome

    done = compute_once(folder, lambda: (folder / "edit.json").is_file(), compute_and_write, lambda: _read(folder))
    return CachedEdit(done.value, key, folder, reused=not done.computed)


def _read(folder: Path) -> EditOutcome:
    record = json.loads((folder / "edit.json").read_text(encoding="utf-8"))
    delta = WeightDelta.load(folder / "delta.safetensors")
    return EditOutcome(delta, tuple(record["metrics"]), float(record["seconds"]))


def _write(folder: Path, outcome: EditOutcome, material: Mapping[str, Any]) -> bool:
    with atomic_folder(folder) as staging:
        outcome.delta.save(staging / "delta.safetensors")
        record = {"metrics": list(outcome.metrics), "seconds": outcome.seconds, "key_material": dict(material)}
        (staging / "edit.json").write_text(json.dumps(record, indent=2, default=str), encoding="utf-8")
    return True
