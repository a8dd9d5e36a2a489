"""Reports: the per-ability table on the terminal and the JSON file for CI systems.

A ``Row`` is what one gate test contributes; rows travel from xdist workers to the controller as
plain dicts in the test report's ``user_properties``.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

PROPERTY = "editguard"


@dataclass(frozen=True)
class Row:
    ability: str
    dataset: str
    verdict: str  # pass, fail, recorded, error
    baseline: float | None = None
    edited: float | None = None
    tolerance: float | None = None
    n: int | None = None
    note: str = ""
    edit: str = ""  # how the edit was obtained, for the summary line
    edit_reused: bool | None = None
    metric: str = ""
    chance: float | None = None
    unparsed: float | None = None  # fraction of the edited model's outputs that could not be parsed
    cached: int = 0  # results of the scored model read from the output cache instead of computed

    @property
    def difference(self) -> float | None:
        if self.baseline is None or self.edited is None:
            return None
        return self.edited - self.baseline

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "difference": self.difference}

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> Row:
        fields = cls.__dataclass_fields__
        return cls(**{key: value for key, value in record.items() if key in fields})


def _number(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def table(rows: Sequence[Row]) -> list[str]:
    header = ("ability", "dataset", "metric", "chance", "baseline", "edited", "diff", "tolerance", "n", "unparsed", "verdict")
    body = [
        (
            row.ability,
            row.dataset,
            row.metric,
            _number(row.chance),
            _number(row.baseline),
            _number(row.edited),
            _number(row.difference, signed=True),
            _number(row.tolerance),
            "-" if row.n is None else str(row.n),
            "-" if row.unparsed is None else f"{row.unparsed:.0%}",
            row.verdict.upper(),
        )
        for row in sorted(rows, key=lambda r: r.ability)
    ]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]

    def render(line: Sequence[str]) -> str:
        return "  ".join(cell.ljust(width) if i < 3 else cell.rjust(width) for i, (cell, width) in enumerate(zip(line, widths))).rstrip()

    return [render(header), "  ".join("-" * width for width in widths), *map(render, body)]


def write_json(path: Path, rows: Sequence[Row], context: Mapping[str, Any]) -> None:
    """Write the report atomically."""
    document = {
        **context,
        "passed": all(row.verdict in ("pass", "recorded") for row in rows),
        "abilities": [row.as_dict() for row in sorted(rows, key=lambda r: r.ability)],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, staging = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(handle, "w", encoding="utf-8") as stream:
        json.dump(document, stream, indent=2)
        stream.write("\n")
    os.replace(staging, path)
