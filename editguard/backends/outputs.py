"""The output cache: per-example results of a model on an ability, kept on disk between runs.

An entry is keyed by everything that decides the results: the model's content fingerprint (the
base's weights, plus the edit's delta for an edited model), the ability's task fingerprint (version,
protocol, prompt template and every example of its data), the protocol, and the evaluator settings
(evaluator version, dtype, device kind, torch and transformers versions).  Batch size is not part of
the key: scores do not depend on it (tested).  A key that differs in any part misses, so one model's
outputs are never served for another.

Results are stored per example id, so a run on a different sample (``--editguard-limit``) or a
chunked run scores only the examples it has not seen.  Writes merge under a file lock and land
atomically (``editguard.atomic``); they skip fsync: a damaged entry is read as a miss and rescored.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from editguard.atomic import cache_write, compute_once, write_json
from editguard.fingerprint import fingerprint
from editguard.statistics.metrics import ExampleResult

CACHE_FORMAT = 1


class OutputCache:
    """Per-example entries under ``<cache>/outputs/``; ``root=None`` disables reading and writing.

    ``load`` / ``store`` hold ``ExampleResult``s; ``entries`` / ``store_entries`` hold any JSON value per key, for
    results that are not scores (the locality property's answers).  ``name`` opens the file name (default: the
    material's ability)."""

    def __init__(self, root: Path | None, *, read: bool = True, name: str | None = None):
        self.root = root
        self.read = read
        self.name = name

    @staticmethod
    def key(material: Mapping[str, Any]) -> str:
        return fingerprint({"format": CACHE_FORMAT, **material})

    def path(self, material: Mapping[str, Any]) -> Path | None:
        if self.root is None:
            return None
        return self.root / "outputs" / f"{self.name or material.get('ability', 'results')}.{self.key(material)}.json"

    def load(self, material: Mapping[str, Any]) -> dict[str, ExampleResult]:
        """The cached results for this key (empty when missing, disabled, or unreadable)."""
        try:
            return {key: ExampleResult.from_json(value) for key, value in self.entries(material).items()}
        except (ValueError, KeyError, TypeError):
            return {}  # a damaged entry is a miss; it is rewritten when stored

    def store(self, material: Mapping[str, Any], results: Mapping[str, ExampleResult]) -> None:
        """Merge ``results`` into the entry (under a lock, written atomically); nothing to do when it holds them."""
        self.store_entries(material, {key: result.as_json() for key, result in results.items()})

    def entries(self, material: Mapping[str, Any]) -> dict[str, Any]:
        """The entry's values by key, as stored (empty when missing, disabled, or unreadable)."""
        path = self.path(material)
        if path is None or not self.read or not path.is_file():
            return {}
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))["results"]
        except (OSError, ValueError, KeyError, TypeError):
            return {}
        return stored if isinstance(stored, dict) else {}

    def store_entries(self, material: Mapping[str, Any], values: Mapping[str, Any]) -> None:
        """Merge JSON ``values`` into the entry (under a lock, written atomically); nothing to do when it holds them."""
        path = self.path(material)
        if path is None or not values:
            return
        stored = OutputCache(self.root, name=self.name)  # reads even under --editguard-rescore: the merge keeps every entry

        def merge() -> None:
            merged = {**stored.entries(material), **values}
            record = {"material": dict(material), "results": {key: merged[key] for key in sorted(merged)}}
            write_json(path, record, durable=False, indent=None, sort_keys=True, default=str)

        assert self.root is not None
        cache_write(self.root, lambda: compute_once(path, is_done=lambda: _holds(stored.entries(material), values), compute=merge, read=lambda: None))


def _holds(cached: Mapping[str, Any], values: Mapping[str, Any]) -> bool:
    return all(key in cached and cached[key] == value for key, value in values.items())
