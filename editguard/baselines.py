"""Baselines: the base model's score per ability, stored as plain JSON files in the user's repo.

``<folder>/<model>/<ability>.json`` holds the score, the per-example outcomes, the task version, the
fingerprints of the task (data and prompt) and of the model's weights, and library versions.  Files are
written atomically and fsynced (``editguard.atomic``), so a crash never leaves half a baseline, and follow
the umask; reading or writing a model's folder removes the temporaries an interrupted earlier write left.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from editguard.atomic import os_error_cause, write_text
from editguard.errors import shown
from editguard.statistics.metrics import Metric, OutcomeKind, get_metric
from editguard.errors import not_a_file

if TYPE_CHECKING:
    from editguard.identity import ModelIdentity

FORMAT = 1


class BaselineError(ValueError):
    """A baseline file is unreadable or malformed; the message names the file and the field."""


@dataclass(frozen=True)
class Baseline:
    ability: str
    metric: str
    score: float
    n: int
    outcomes: Mapping[str, float | list[float]]  # example id -> outcome (counts for entity F1)
    task_version: int
    task_fingerprint: str
    model: str
    model_fingerprint: str
    versions: Mapping[str, str] = field(default_factory=dict)
    protocol: str = "default"
    data: str = "probe"  # the data source the examples came from
    dtype: str = "float32"  # the precision the base model was scored in; written only when not float32
    backend: str = "hf"  # where it was scored: hf (in process) or engine (a served model); written only when not hf
    unparsed: int = 0  # examples whose output could not be parsed
    extras: Mapping[str, float] = field(default_factory=dict)  # secondary metrics, e.g. MRR
    format: int = FORMAT
    # the digests of the base model's tokenizer parts and computation config (identity.ModelIdentity.recorded)
    identity: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        record = asdict(self)
        record["outcomes"] = dict(sorted(self.outcomes.items(), key=lambda item: _natural(item[0])))
        if self.dtype == "float32":  # said only when it is not: float32 files stay as they were before dtypes
            del record["dtype"]
        if self.backend == "hf":
            del record["backend"]
        if not self.identity:  # a baseline made without the model's identity (in tests) is written as it was before identities
            del record["identity"]
        return json.dumps(record, indent=2, sort_keys=False) + "\n"


_FIELDS: dict[str, type | tuple[type, ...]] = {
    "ability": str,
    "metric": str,
    "score": (int, float),
    "n": int,
    "outcomes": dict,
    "task_version": int,
    "task_fingerprint": str,
    "model": str,
    "model_fingerprint": str,
}


# Fields a baseline may leave out (a default applies), checked when they are there.
_OPTIONAL_FIELDS: dict[str, type | tuple[type, ...]] = {
    "versions": dict,
    "protocol": str,
    "data": str,
    "dtype": str,
    "backend": str,
    "unparsed": int,
    "extras": dict,
}


_TYPE_NAMES: dict[type | tuple[type, ...], str] = {str: "a string", int: "a whole number", dict: "a JSON object"}
_RERECORD = "re-record it with --editguard-update-baselines"


BACKEND_WORDS = {"hf": "in process", "engine": "through an engine"}


def backend_of(setting: str) -> str:
    """A run's --editguard-backend as a baseline records it: hf, or engine (vllm is an engine editguard starts)."""
    return "hf" if setting == "hf" else "engine"


def _natural(key: str) -> tuple[int, Any]:
    return (0, int(key)) if key.isdigit() else (1, key)


def staleness(
    baseline: Baseline, *, task_version: int, task_fingerprint: str, model_fingerprint: str, dtype: str = "float32",
    identity: ModelIdentity | None = None,
) -> str | None:
    """Why ``baseline`` no longer describes the current task and base model, or None if it does.

    Another dtype is told before other weights: the weights fingerprint covers the dtype, so it differs too,
    and the dtype is the cause a person can act on.  With ``identity`` the tokenizer and the computation config
    must match too; a baseline recorded before they were fingerprinted is stale.
    """
    if baseline.task_version != task_version:
        return f"it was recorded for task version {baseline.task_version}, the task is now version {task_version}"
    if baseline.task_fingerprint != task_fingerprint:
        return (
            f"the task's data or prompt changed since it was recorded "
            f"(fingerprint {baseline.task_fingerprint} there, {task_fingerprint} now)"
        )
    if baseline.dtype != dtype:
        return f"it was recorded with the model in {baseline.dtype}, and this run loads it in {dtype}"
    if baseline.model_fingerprint != model_fingerprint:
        return (
            f"it was recorded on other base weights "
            f"(model fingerprint {baseline.model_fingerprint} there, {model_fingerprint} now)"
        )
    if identity is None:
        return None
    if not baseline.identity:
        return "it was recorded before editguard fingerprinted the tokenizer and configuration beside the weights"
    changed = identity.changes(baseline.identity)
    return f"{' and '.join(changed)} changed since it was recorded" if changed else None


class BaselineStore:
    def __init__(self, folder: Path):
        self.folder = folder

    def path(self, model: str, ability: str, protocol: str = "default") -> Path:
        suffix = "" if protocol == "default" else f".{protocol}"
        return self.folder / model / f"{ability}{suffix}.json"

    def read(self, model: str, ability: str, protocol: str = "default") -> Baseline | None:
        """The stored baseline, None when there is none; BaselineError when the file is malformed."""
        path = self.path(model, ability, protocol)
        what = not_a_file(path)
        if what:
            thing = "the link" if path.is_symlink() else "it"
            raise BaselineError(f"baseline {path} is {what}, not a baseline file; remove {thing} and record the baseline with --editguard-update-baselines")
        if not path.is_file():
            return None
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError) as error:  # ValueError: not UTF-8, not JSON, a number too long
            why = str(error).partition(";")[0]
            raise BaselineError(f"baseline {path} is not valid JSON ({why}); re-record it with --editguard-update-baselines") from None
        return _validated(path, record)

    def write(self, baseline: Baseline) -> Path:
        """Write the baseline atomically; BaselineError naming the file and the cause when it cannot be (the file
        that was there, if any, is left as it was)."""
        path = self.path(baseline.model, baseline.ability, baseline.protocol)
        try:
            return write_text(path, baseline.to_json())
        except OSError as error:
            raise BaselineError(
                f"baseline {path} cannot be written ({os_error_cause(error)}); the file there, if any, is unchanged: "
                "make the baselines folder writable (or free the disk) and record again"
            ) from None


def _validated(path: Path, record: Any) -> Baseline:
    if not isinstance(record, dict):
        raise BaselineError(f"baseline {path} must hold a JSON object; re-record it with --editguard-update-baselines")
    for name, kind in (_FIELDS | _OPTIONAL_FIELDS).items():
        value = record.get(name)
        if name not in record and name in _FIELDS:
            raise BaselineError(f"baseline {path}: field {name!r} is missing; {_RERECORD}")
        if name in record and (not isinstance(value, kind) or isinstance(value, bool)):
            expected = _TYPE_NAMES.get(kind, "a number")
            raise BaselineError(f"baseline {path}: field {name!r} is {shown(value)}, not {expected}; {_RERECORD}")
    if record.get("format", FORMAT) != FORMAT:
        raise BaselineError(
            f"baseline {path}: format {shown(record['format'])} is not supported by this editguard (expects {FORMAT}); "
            f"{_RERECORD}, or run the editguard that wrote it"
        )
    _check_values(path, record)
    _check_identity(path, record.get("identity", {}))
    known = {name: record[name] for name in Baseline.__dataclass_fields__ if name in record}
    return Baseline(**known)


def _check_values(path: Path, record: dict[str, Any]) -> None:
    """Values a verdict is computed from: finite, of the metric's shape, and as many outcomes as ``n`` says."""
    if not math.isfinite(record["score"]):
        raise BaselineError(f"baseline {path}: field 'score' is {record['score']}, not a finite number; {_RERECORD}")
    try:
        metric = get_metric(record["metric"])
    except KeyError as error:
        raise BaselineError(f"baseline {path}: field 'metric': {error.args[0]}; {_RERECORD}") from None
    for example, outcome in record["outcomes"].items():
        why = _outcome_problem(metric.kind, outcome)
        if why:
            raise BaselineError(f"baseline {path}: field 'outcomes', example {shown(example)}: {shown(outcome)} {why}; {_RERECORD}")
    lengths = {len(outcome) for outcome in record["outcomes"].values() if isinstance(outcome, list)}
    if len(lengths) > 1:
        raise BaselineError(f"baseline {path}: field 'outcomes' mixes lists of {sorted(lengths)} counts; {_RERECORD}")
    if lengths and not _aggregates(metric, list(record["outcomes"].values())):
        raise BaselineError(
            f"baseline {path}: field 'outcomes' holds lists of {lengths.pop()} counts, not the counts metric {metric.name!r} reads; {_RERECORD}"
        )
    if record["n"] != len(record["outcomes"]):
        raise BaselineError(f"baseline {path}: field 'n' is {record['n']} but 'outcomes' holds {len(record['outcomes'])}; {_RERECORD}")
    if not 0 <= record.get("unparsed", 0) <= record["n"]:
        raise BaselineError(f"baseline {path}: field 'unparsed' is {record['unparsed']}, not a count of the {record['n']} examples; {_RERECORD}")
    for name, value in record.get("extras", {}).items():
        if not _is_number(value):
            raise BaselineError(f"baseline {path}: field 'extras', metric {shown(name)}: {shown(value)} is not a finite number; {_RERECORD}")
    for name, value in record.get("versions", {}).items():
        if not isinstance(value, str):
            raise BaselineError(f"baseline {path}: field 'versions', package {shown(name)}: {shown(value)} is not a version; {_RERECORD}")


def _check_identity(path: Path, identity: Any) -> None:
    """The recorded identity is {"tokenizer": {part: digest}, "config": digest} (absent in files recorded before identities)."""
    tokenizer = identity.get("tokenizer") if isinstance(identity, dict) else None
    if identity == {} or (
        isinstance(tokenizer, dict) and all(isinstance(v, str) for v in tokenizer.values()) and isinstance(identity.get("config"), str)
    ):
        return
    raise BaselineError(f"baseline {path}: field 'identity' is {shown(identity)}, not the model's recorded identity; {_RERECORD}")


def _outcome_problem(kind: OutcomeKind, outcome: Any) -> str | None:
    """Why ``outcome`` is not an outcome of ``kind`` (None when it is)."""
    if kind is OutcomeKind.COUNTS:
        if not isinstance(outcome, list) or not all(_is_number(value) and value >= 0 for value in outcome):
            return "is not a list of counts (non-negative numbers) as the metric needs"
        return None
    if not _is_number(outcome):
        return "is not a number"
    if kind is OutcomeKind.BINARY and outcome not in (0, 1):
        return "is not 0 or 1 as the metric's outcomes are"
    if kind is OutcomeKind.REAL:
        return None if math.isfinite(outcome) else "is not a finite number"
    if not 0 <= outcome <= 1:
        return "is outside [0, 1]"
    return None


def _aggregates(metric: Metric, outcomes: list[Any]) -> bool:
    """Whether the metric computes a score from these counts (entity F1 reads three of each example, for one)."""
    try:
        metric.aggregate(outcomes)
    except (IndexError, TypeError, ValueError, ZeroDivisionError):
        return False
    return True


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
