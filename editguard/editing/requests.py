"""Edit requests: the facts an editor is asked to rewrite, and the JSONL file format that holds them.

One request a line::

    {"prompt": "The Eiffel Tower is located in the city of", "subject": "The Eiffel Tower",
     "target_new": "Rome", "ground_truth": "Paris"}

``prompt`` must contain ``subject``; ``ground_truth`` is optional.  A malformed line is one
``EditRequestError`` naming the file, the line and the field.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any

REQUIRED_FIELDS = ("prompt", "subject", "target_new")
OPTIONAL_FIELDS = ("ground_truth", "rephrase")
DEMO_EDITS = "demo"  # the name that selects the project's own demo edit set


class EditRequestError(ValueError):
    """A malformed edit-requests file; the message names the file, the record and the field."""


@dataclass(frozen=True)
class EditRequest:
    prompt: str
    subject: str
    target_new: str
    ground_truth: str | None = None
    rephrase: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value is not None}


def demo_edits_path() -> Path:
    return Path(str(resources.files("editguard.editing") / "data" / "demo_edits.jsonl"))


def load_requests(path: str | Path) -> tuple[EditRequest, ...]:
    """Read an editguard JSONL edit-requests file (``demo`` names the shipped demo set)."""
    file = demo_edits_path() if str(path) == DEMO_EDITS else Path(path)
    if not file.is_file():
        raise EditRequestError(f"edits file {str(file)!r} does not exist; check --editguard-edits")
    lines = file.read_text(encoding="utf-8").splitlines()
    requests = tuple(
        _parse(file, number, line) for number, line in enumerate(lines, start=1) if line.strip()
    )
    if not requests:
        raise EditRequestError(f"edits file {str(file)!r} holds no requests; add one JSON object per line")
    return requests


def _parse(file: Path, number: int, line: str) -> EditRequest:
    where = f"{file}, line {number}"
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise EditRequestError(f"{where}: not valid JSON ({error.msg}); write one JSON object per line") from None
    if not isinstance(record, dict):
        raise EditRequestError(f"{where}: expected a JSON object with {', '.join(REQUIRED_FIELDS)}")
    for field in REQUIRED_FIELDS:
        if not isinstance(record.get(field), str) or not record[field].strip():
            raise EditRequestError(f"{where}: field {field!r} is missing or not a non-empty string")
    for field in OPTIONAL_FIELDS:
        if field in record and not isinstance(record[field], str):
            raise EditRequestError(f"{where}: field {field!r} must be a string")
    unknown = sorted(set(record) - set(REQUIRED_FIELDS) - set(OPTIONAL_FIELDS))
    if unknown:
        raise EditRequestError(f"{where}: unknown field {unknown[0]!r}; allowed: {', '.join(REQUIRED_FIELDS + OPTIONAL_FIELDS)}")
    if record["subject"] not in record["prompt"]:
        raise EditRequestError(f"{where}: field 'subject' ({record['subject']!r}) does not occur in 'prompt'")
    return EditRequest(**record)
