"""File readers: JSONL, JSON, CSV, TSV and CoNLL text into rows, with errors naming the file and the record.

Readers know file layouts, not abilities: a row is a dict as the file spells it, still to be normalised
and validated by the ability's schema (``sources`` does that).  Ability modules use these readers for the
reference study's own layouts (``Ability.read_study``) and declare the formats they read beyond the
common ones (``Ability.file_formats``: CoNLL text for ner).
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from editguard.tasks.schema import DataSchemaError, show


@dataclass(frozen=True)
class Rows:
    where: str  # the file, folder or dataset, as errors name it
    rows: list[dict[str, Any]]
    textual: bool = False  # every value is text (CSV / TSV cells), still to be parsed per the schema


@dataclass(frozen=True)
class FileFormat:
    name: str  # as messages name it
    suffixes: tuple[str, ...]
    read: Callable[[Path], Rows]


def text(path: Path) -> str:
    _check_file(path)
    try:
        return path.read_text(encoding="utf-8-sig")  # -sig: a byte-order mark would break the JSON / header
    except UnicodeDecodeError as error:
        raise _not_utf8(str(path), error) from None


def _check_file(path: Path) -> None:
    if path.is_dir():
        raise DataSchemaError(str(path), None, None, "is a folder, not a file", "give the path of the data file itself")


def _not_utf8(where: str, error: UnicodeDecodeError) -> DataSchemaError:
    return DataSchemaError(where, None, None, f"is not UTF-8 text ({error.reason})", "save it as UTF-8")


def _json_problem(error: ValueError | RecursionError) -> str:
    """Why ``json.loads`` refused a text: a syntax error, a number of more digits than Python reads, or too deep nesting."""
    if isinstance(error, json.JSONDecodeError):
        return error.msg
    return "nested too deeply" if isinstance(error, RecursionError) else str(error).partition(";")[0]


def json_object(where: str, number: int, source: str) -> dict[str, Any]:
    try:
        value = json.loads(source)
    except (ValueError, RecursionError) as error:
        raise DataSchemaError(where, number, None, f"is not valid JSON ({_json_problem(error)})", "fix its syntax") from None
    return _object(where, number, value)


def _object(where: str, number: int, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise DataSchemaError(where, number, None, f"is {show(value)}", "write each record as a JSON object")
    return value


def jsonl_rows(where: str, source: str) -> Rows:
    # Split at "\n" only: str.splitlines would also split at U+2028 inside a JSON string.
    lines = [line for line in source.split("\n") if line.strip()]
    return Rows(where, [json_object(where, number, line) for number, line in enumerate(lines, 1)])


def read_jsonl(path: Path) -> Rows:
    return jsonl_rows(str(path), text(path))


def read_json(path: Path) -> Rows:
    data = _json_document(path)
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        data = data["data"]
    if not isinstance(data, list):
        fix = "give a list of records, or an object whose 'data' key holds one"
        raise DataSchemaError(str(path), None, None, f"holds {type(data).__name__}", fix)
    return Rows(str(path), [_object(str(path), number, item) for number, item in enumerate(data, 1)])


def _json_document(path: Path) -> Any:
    source = text(path)
    try:
        return json.loads(source)
    except (ValueError, RecursionError) as error:
        at = f" at line {error.lineno}" if isinstance(error, json.JSONDecodeError) else ""
        raise DataSchemaError(str(path), None, None, f"is not valid JSON ({_json_problem(error)}{at})", "fix its syntax") from None


def natural_key(path: Path) -> list[Any]:
    # dev_2.txt before dev_10.txt; the split alternates text and digits, so the types line up.
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def read_json_files(folder: Path, pattern: str) -> Rows:
    """One JSON object per file of the folder, the files in natural order (dev_2 before dev_10)."""
    files = sorted(folder.glob(pattern), key=natural_key)
    return Rows(str(folder), [json_object(str(file), number, text(file)) for number, file in enumerate(files, 1)])


def _read_delimited(path: Path, dialect: dict[str, Any]) -> Rows:
    _check_file(path)
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle, **dialect)
        try:
            header = list(reader.fieldnames or [])
            rows = [_complete_row(str(path), number, row, header) for number, row in enumerate(reader, 1)]
        except UnicodeDecodeError as error:
            raise _not_utf8(str(path), error) from None
        except csv.Error as error:  # a cell longer than the csv module's limit (131,072 characters)
            problem = f"line {reader.line_num} cannot be read ({error})"
            raise DataSchemaError(str(path), None, None, problem, "shorten the cell, or give the records as JSON lines") from None
    return Rows(str(path), rows, textual=True)


def _complete_row(where: str, number: int, row: dict[Any, Any], header: list[str]) -> dict[str, str]:
    # DictReader files surplus cells under None and fills missing ones with None: both mean a broken row.
    if None in row or None in row.values():
        cells = len(header) + len(row.get(None) or []) - sum(value is None for value in row.values())
        problem = f"has {cells} cells where the header has {len(header)} columns"
        raise DataSchemaError(where, number, None, problem, "give every row one cell per header column")
    return row


def read_csv(path: Path) -> Rows:
    return _read_delimited(path, {})


def read_tsv(path: Path) -> Rows:
    # No quoting in TSV: GLUE's files carry bare quotes inside fields ('Mao\'s "Little Red Book"'), and a
    # field that starts with one would otherwise be read as a quoted field running into the next lines.
    return _read_delimited(path, {"delimiter": "\t", "quoting": csv.QUOTE_NONE})


def _conll_blocks(source: str) -> list[list[tuple[int, list[str]]]]:
    """Sentences as (line number, columns) lists; blank and -DOCSTART- lines end a sentence."""
    blocks: list[list[tuple[int, list[str]]]] = [[]]
    for number, line in enumerate(source.split("\n"), 1):
        columns = line.split()
        if columns and columns[0] != "-DOCSTART-":
            blocks[-1].append((number, columns))
        elif blocks[-1]:
            blocks.append([])
    return [block for block in blocks if block]


def _conll_record(where: str, number: int, block: list[tuple[int, list[str]]]) -> dict[str, Any]:
    for line, columns in block:
        if len(columns) < 2:
            problem = f"line {line} has only one column"
            raise DataSchemaError(where, number, "ner_tags", problem, "write 'word [POS chunk] TAG' on each line")
    return {"tokens": [columns[0] for _, columns in block], "ner_tags": [columns[-1] for _, columns in block]}


def read_conll(path: Path) -> Rows:
    """CoNLL-2003 text: one token per line, its tag in the last column; rows of ``tokens`` and ``ner_tags`` (names)."""
    blocks = _conll_blocks(text(path))
    return Rows(str(path), [_conll_record(str(path), number, block) for number, block in enumerate(blocks, 1)])


def renamed(rows: Rows, names: Mapping[str, str]) -> Rows:
    """The rows with some columns renamed (a layout's column name -> the schema's)."""
    renamed_rows = [{names.get(key, key): value for key, value in row.items()} for row in rows.rows]
    return Rows(rows.where, renamed_rows, rows.textual)


# Every ability's records can be read from these; an ability may add formats of its own (Ability.file_formats).
COMMON_FORMATS: tuple[FileFormat, ...] = (
    FileFormat("JSON lines", (".jsonl",), read_jsonl),
    FileFormat("JSON", (".json",), read_json),
    FileFormat("CSV", (".csv",), read_csv),
    FileFormat("TSV", (".tsv",), read_tsv),
)
CONLL = FileFormat("CoNLL text", (".txt", ".conll"), read_conll)
