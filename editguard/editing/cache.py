"""The edit cache: an edit is computed once per (base weights, method, hyper-parameters, requests).

Entries live under ``<cache>/edits/<key>/`` as ``delta.safetensors`` plus ``edit.json`` (EasyEdit's
metrics and the time it took).  A file lock per key makes concurrent xdist workers wait for the one
that computes instead of computing the same edit twice.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from editguard.editing.delta import WeightDelta
from editguard.editing.easyedit import EditOutcome
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


def cached_edit(cache_dir: Path, material: Mapping[str, Any], compute: Callable[[], EditOutcome]) -> CachedEdit:
    from filelock import FileLock

    key = edit_key(material)
    folder = cache_dir / "edits" / key
    folder.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder) + ".lock"):
        if (folder / "edit.json").is_file():
            return CachedEdit(_read(folder), key, folder, reused=True)
        outcome = compute()
        _write(folder, outcome, material)
        return CachedEdit(outcome, key, folder, reused=False)


def _read(folder: Path) -> EditOutcome:
    record = json.loads((folder / "edit.json").read_text(encoding="utf-8"))
    delta = WeightDelta.load(folder / "delta.safetensors")
    return EditOutcome(delta, tuple(record["metrics"]), float(record["seconds"]))


def _write(folder: Path, outcome: EditOutcome, material: Mapping[str, Any]) -> None:
    """Write into a staging folder and rename it into place, so readers never see half an entry."""
    staging = Path(tempfile.mkdtemp(prefix=folder.name + ".", dir=folder.parent))
    outcome.delta.save(staging / "delta.safetensors")
    record = {"metrics": list(outcome.metrics), "seconds": outcome.seconds, "key_material": dict(material)}
    (staging / "edit.json").write_text(json.dumps(record, indent=2, default=str), encoding="utf-8")
    os.chmod(staging, 0o755)
    os.replace(staging, folder)
