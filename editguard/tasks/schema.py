"""Record schemas: the field kinds that abilities declare, their checks, and the errors that name a bad field.

An ability module declares its schema as ``{field: Field}`` in the order its records carry the fields,
from the kinds here (``INT``, ``STR``, ``LABEL``, ...) or its own ``Field``.  A check returns what is
wrong with a value, or None.  A normaliser (also declared by the ability) raises ``FieldProblem`` when a
value cannot be conformed; ``sources`` turns that into a ``DataSchemaError`` naming the file, the record
and the field.  The helpers at the end (``fill``, ``name_label``, ``fill_id``) are the normalisers' parts.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


class DataSchemaError(ValueError):
    """A record (or a whole source) that does not fit the ability's schema, with where and how to fix it."""

    def __init__(self, where: str, record: int | None, field: str | None, problem: str, fix: str) -> None:
        self.where, self.record, self.field = where, record, field
        place = where + (f", record {record}" if record is not None else "")
        place += f", field {field!r}" if field is not None else ""
        super().__init__(f"{place}: {problem}; {fix}.")


class FieldProblem(Exception):
    """Raised inside one record's conversion; ``sources`` turns it into a DataSchemaError with the place."""

    def __init__(self, field: str, problem: str, wanted: str | None = None) -> None:
        super().__init__(field, problem)
        self.field, self.problem, self.wanted = field, problem, wanted


@dataclass(frozen=True)
class Field:
    """One kind of field: its check, how to write it (for the error's remedy), and how a CSV / TSV cell reads."""

    check: Callable[[Any], str | None]  # what is wrong with a value, or None
    wanted: str  # "write it as <wanted>"
    cell: Callable[[str], Any] | None = None  # parse a CSV / TSV cell; None: the cell's text, verbatim


Schema = Mapping[str, Field]


# --- checks: each returns what is wrong, or None -------------------------------------------------------------


def show(value: Any) -> str:
    text = repr(value)
    return f"{text if len(text) <= 60 else text[:57] + '...'} ({type(value).__name__})"


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # True is an int to Python, not to a schema


def type_check(kind: type) -> Callable[[Any], str | None]:
    return lambda value: None if isinstance(value, kind) else f"is {show(value)}"


def check_int(value: Any) -> str | None:
    return None if is_int(value) else f"is {show(value)}"


def check_label(value: Any) -> str | None:
    if is_int(value) and value in (0, 1):
        return None
    if is_int(value) and value == -1:
        return (
            "is -1, which marks an unlabelled record "
            "(GLUE and SuperGLUE hide their test labels: use the validation split)"
        )
    return f"is {show(value)}"


def first_bad(items: list[Any], ok: Callable[[Any], bool]) -> str | None:
    for number, item in enumerate(items, 1):
        if not ok(item):
            return f"has element {number} = {show(item)}"
    return None


def check_text(value: Any) -> str | None:
    if not isinstance(value, str):
        return f"is {show(value)}"
    return None if value.strip() else f"is {show(value)}, empty: the ability cannot score a record without it"


def check_strs(value: Any) -> str | None:
    if not isinstance(value, list):
        return f"is {show(value)}"
    return first_bad(value, lambda item: isinstance(item, str))


def check_answers(value: Any) -> str | None:
    if value == []:
        return "is an empty list"
    problem = check_strs(value)
    empty = None if problem else first_bad(value, lambda item: bool(item.strip()))
    return problem or (f"{empty}, an empty answer that an empty output would match" if empty else None)


# --- CSV / TSV cells: text, parsed per the field's kind --------------------------------------------------


def int_cell(text: str) -> Any:
    return int(text) if re.fullmatch(r"-?\d+", text) else text


def bool_cell(text: str) -> Any:
    return {"true": True, "false": False, "1": True, "0": False}.get(text.lower(), text)


def json_cell(text: str) -> Any:
    # A list in a CSV / TSV cell is written as JSON, e.g. ["Mars", "the red planet"].
    try:
        return json.loads(text) if text.startswith("[") else text
    except json.JSONDecodeError:
        return text  # left as text, so validation names the field


# --- the kinds several abilities share ----------------------------------------------------------------------

INT = Field(check_int, "an integer", int_cell)
STR = Field(type_check(str), "a string")  # text stays verbatim (SST-2's sentences keep their trailing space)
TEXT = Field(check_text, "a non-empty string")  # a text the prompt or the scorer needs
BOOL = Field(type_check(bool), "true or false", bool_cell)
LABEL = Field(check_label, "0 or 1", int_cell)
STRS = Field(check_strs, "a list of strings", json_cell)
ANSWERS = Field(check_answers, "a non-empty list of non-empty strings", json_cell)


# --- normalisers' parts: other sources' spellings of the schema, and the optional fields' fills -------------


def fill(record: dict[str, Any], field: str, value: Any) -> None:
    if field not in record:
        record[field] = value


def name_label(record: dict[str, Any], names: Mapping[str, int]) -> None:
    """A label given by name (or as text) becomes its id."""
    label = record.get("label")
    if isinstance(label, str) and label.strip() in names:
        record["label"] = names[label.strip()]


def fill_id(record: dict[str, Any], position: int) -> None:
    fill(record, "id", str(position))
    if is_int(record["id"]):  # an id is a name: 13817023 and "13817023" name the same record
        record["id"] = str(record["id"])


def keep(record: dict[str, Any], position: int) -> dict[str, Any]:
    """The normaliser of an ability whose sources all spell the schema as it is."""
    return record


def with_id(record: dict[str, Any], position: int) -> dict[str, Any]:
    """The normaliser of an ability whose only optional field is ``id`` (the record's position by default)."""
    fill_id(record, position)
    return record


def no_cross_check(record: Mapping[str, Any]) -> None:
    """The record check of an ability whose fields are independent of one another."""
