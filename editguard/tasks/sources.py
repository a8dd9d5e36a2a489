"""Where an ability's records come from, and the record schema they must fit.

This module owns the data-source syntax ('probe', 'hf:NAME[/CONFIG][:SPLIT]', 'file:PATH', 'study:PATH'),
the readers for each layout (the embedded probes, a Hugging Face dataset, local JSONL / JSON / CSV / TSV /
CoNLL files, and the reference study's own files), the per-ability record schemas (those of the embedded
probe files, which are the Hugging Face datasets' own), and the validation that names the file, the record
and the field when a record does not fit.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

# CoNLL-2003's tag ids, as the Hugging Face dataset numbers them.
NER_TAGS: tuple[str, ...] = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC")
_TAG_IDS: dict[str, int] = {tag: index for index, tag in enumerate(NER_TAGS)}

# Field -> kind, in the order the records carry them; each kind is a key of _CHECKS.
_SCHEMAS: dict[str, dict[str, str]] = {
    "sentiment": {"idx": "int", "sentence": "str", "label": "label"},
    "closed_qa": {"question": "str", "title": "str", "answer": "bool", "passage": "str"},
    "nli": {"idx": "int", "sentence1": "str", "sentence2": "str", "label": "label"},
    "open_qa": {"question": "str", "answer": "answers", "passage": "str"},
    "reasoning": {"question": "str", "answer": "rationale"},
    "dialogue": {"id": "str", "article": "str", "options": "options", "answers": "letter"},
    "summarization": {"id": "str", "dialogue": "str", "summary": "str"},
    "ner": {"id": "str", "tokens": "strs", "ner_tags": "tags"},
}

ABILITIES: tuple[str, ...] = tuple(sorted(_SCHEMAS))

_WANTED: dict[str, str] = {
    "int": "an integer",
    "str": "a string",
    "bool": "true or false",
    "label": "0 or 1",
    "strs": "a list of strings",
    "answers": "a non-empty list of strings",
    "options": "a list of exactly 4 strings",
    "letter": 'one of "A", "B", "C", "D"',
    "tags": "a list of tag ids 0-8 (" + ", ".join(NER_TAGS) + "), one per token",
    "rationale": "a string ending in '#### <number>'",
}

# GSM8K's answer is a rationale whose last line is '#### <number>'; scoring reads that number.
_FINAL_ANSWER = re.compile(r"####\s*-?[\d,.]*\d\s*$")


class DataSchemaError(ValueError):
    """A record (or a whole source) that does not fit the ability's schema, with where and how to fix it."""

    def __init__(self, where: str, record: int | None, field: str | None, problem: str, fix: str) -> None:
        self.where, self.record, self.field = where, record, field
        place = where + (f", record {record}" if record is not None else "")
        place += f", field {field!r}" if field is not None else ""
        super().__init__(f"{place}: {problem}; {fix}.")


class _FieldProblem(Exception):
    """Raised inside one record's conversion; _conform turns it into a DataSchemaError with the place."""

    def __init__(self, field: str, problem: str, wanted: str | None = None) -> None:
        super().__init__(field, problem)
        self.field, self.problem, self.wanted = field, problem, wanted


# --- data sources -------------------------------------------------------------------------------------

_SOURCE_KINDS = ("probe", "hf", "file", "study")


@dataclass(frozen=True)
class DataSource:
    kind: str  # 'probe' | 'hf' | 'file' | 'study'
    path: str | None = None  # file and study
    name: str | None = None  # hf
    config: str | None = None  # hf
    split: str | None = None  # hf

    def __post_init__(self) -> None:
        if self.kind not in _SOURCE_KINDS:
            raise ValueError(f"unknown data source kind {self.kind!r}; the kinds are {', '.join(_SOURCE_KINDS)}")
        if self.kind in ("file", "study") and not self.path:
            raise ValueError(f"a {self.kind!r} data source needs a path")
        if self.kind == "hf" and not self.name:
            raise ValueError("an 'hf' data source needs a dataset name")

    def __str__(self) -> str:
        return _SOURCE_TEXT[self.kind](self)


def _hf_text(source: DataSource) -> str:
    path = "/".join(part for part in (source.name, source.config) if part)
    return f"hf:{path}" + (f":{source.split}" if source.split else "")


_SOURCE_TEXT: dict[str, Callable[[DataSource], str]] = {
    "probe": lambda source: "probe",
    "hf": _hf_text,
    "file": lambda source: f"file:{source.path}",
    "study": lambda source: f"study:{source.path}",
}

# NAME may carry an owner ('nyu-mll/glue/sst2' is owner/name/config); a split may be sliced ('train[:100]').
_HF_SOURCE = re.compile(r"(?P<path>[\w.\-]+(?:/[\w.\-]+){0,2})(?::(?P<split>[\w+]+(?:\[[^\]]*\])?))?")


def _bad_source(text: str) -> ValueError:
    return ValueError(
        f"unrecognised data source {text!r}: write 'probe', 'hf:NAME[/CONFIG][:SPLIT]' "
        "(as in 'hf:glue/sst2:validation'), 'file:PATH' or 'study:PATH'"
    )


def _parse_hf(kind: str, rest: str, text: str) -> DataSource:
    match = _HF_SOURCE.fullmatch(rest)
    if match is None:
        raise _bad_source(text)
    *name, last = match["path"].split("/")
    if not name:  # a bare NAME has no config
        return DataSource("hf", name=last, split=match["split"])
    return DataSource("hf", name="/".join(name), config=last, split=match["split"])


def _parse_path(kind: str, rest: str, text: str) -> DataSource:
    if not rest.strip():
        raise _bad_source(text)
    return DataSource(kind, path=rest.strip())


_SOURCE_PARSERS: dict[str, Callable[[str, str, str], DataSource]] = {
    "hf": _parse_hf,
    "file": _parse_path,
    "study": _parse_path,
}


def parse_data_source(text: str) -> DataSource:
    """'probe' | 'hf:NAME[/CONFIG][:SPLIT]' | 'file:PATH' | 'study:PATH' -> DataSource (ValueError otherwise)."""
    if text.strip() == "probe":
        return DataSource("probe")
    kind, colon, rest = text.strip().partition(":")
    parser = _SOURCE_PARSERS.get(kind) if colon else None
    if parser is None:
        raise _bad_source(text)
    return parser(kind, rest, text)


# --- loading --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Rows:
    where: str  # the file, folder or dataset, as errors name it
    rows: list[dict[str, Any]]
    textual: bool = False  # every value is text (CSV / TSV cells), still to be parsed per the schema


def load_records(ability: str, source: DataSource) -> list[dict[str, Any]]:
    """The ability's records from the source, each in the ability's schema, validated."""
    if ability not in _SCHEMAS:
        raise ValueError(f"unknown ability {ability!r}; the abilities are {', '.join(ABILITIES)}")
    rows = _SOURCE_READERS[source.kind](ability, source)
    if not rows.rows:
        fix = "point the data source at a non-empty one"
        raise DataSchemaError(rows.where, None, None, "holds no records", fix)
    return [_conform(ability, rows, position, row) for position, row in enumerate(rows.rows)]


def _conform(ability: str, rows: _Rows, position: int, row: dict[str, Any]) -> dict[str, Any]:
    try:
        record = _parse_cells(ability, row) if rows.textual else dict(row)
        return _validated(ability, _NORMALISERS[ability](record, position))
    except _FieldProblem as problem:
        wanted = problem.wanted or _WANTED[_SCHEMAS[ability][problem.field]]
        fix = f"write it as {wanted}, per the {ability} schema (see editguard/tasks/data/{ability}.jsonl)"
        raise DataSchemaError(rows.where, position + 1, problem.field, problem.problem, fix) from None


def _validated(ability: str, record: Mapping[str, Any]) -> dict[str, Any]:
    schema = _SCHEMAS[ability]
    for field, kind in schema.items():
        if field not in record:
            raise _FieldProblem(field, "is missing")
        problem = _CHECKS[kind](record[field])
        if problem is not None:
            raise _FieldProblem(field, problem)
    _CROSS_CHECKS.get(ability, lambda record: None)(record)
    return {field: record[field] for field in schema}  # exactly the schema: extra source columns go


# --- field checks: each returns what is wrong, or None ---------------------------------------------------


def _show(value: Any) -> str:
    text = repr(value)
    return f"{text if len(text) <= 60 else text[:57] + '...'} ({type(value).__name__})"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # True is an int to Python, not to a schema


def _type_check(kind: type) -> Callable[[Any], str | None]:
    return lambda value: None if isinstance(value, kind) else f"is {_show(value)}"


def _check_int(value: Any) -> str | None:
    return None if _is_int(value) else f"is {_show(value)}"


def _check_label(value: Any) -> str | None:
    if _is_int(value) and value in (0, 1):
        return None
    if _is_int(value) and value == -1:
        return (
            "is -1, which marks an unlabelled record "
            "(GLUE and SuperGLUE hide their test labels: use the validation split)"
        )
    return f"is {_show(value)}"


def _first_bad(items: list[Any], ok: Callable[[Any], bool]) -> str | None:
    for number, item in enumerate(items, 1):
        if not ok(item):
            return f"has element {number} = {_show(item)}"
    return None


def _check_strs(value: Any) -> str | None:
    if not isinstance(value, list):
        return f"is {_show(value)}"
    return _first_bad(value, lambda item: isinstance(item, str))


def _check_answers(value: Any) -> str | None:
    return "is an empty list" if value == [] else _check_strs(value)


def _check_options(value: Any) -> str | None:
    problem = _check_strs(value)
    return f"has {len(value)} options" if problem is None and len(value) != 4 else problem


def _check_letter(value: Any) -> str | None:
    return None if isinstance(value, str) and value in ("A", "B", "C", "D") else f"is {_show(value)}"


def _check_tags(value: Any) -> str | None:
    if not isinstance(value, list):
        return f"is {_show(value)}"
    return _first_bad(value, lambda tag: _is_int(tag) and 0 <= tag < len(NER_TAGS))


def _check_rationale(value: Any) -> str | None:
    if not isinstance(value, str):
        return f"is {_show(value)}"
    return None if _FINAL_ANSWER.search(value) else "does not end in '#### <number>'"


_CHECKS: dict[str, Callable[[Any], str | None]] = {
    "int": _check_int,
    "str": _type_check(str),
    "bool": _type_check(bool),
    "label": _check_label,
    "strs": _check_strs,
    "answers": _check_answers,
    "options": _check_options,
    "letter": _check_letter,
    "tags": _check_tags,
    "rationale": _check_rationale,
}


def _check_ner_lengths(record: Mapping[str, Any]) -> None:
    tags, tokens = record["ner_tags"], record["tokens"]
    if len(tags) != len(tokens):
        raise _FieldProblem("ner_tags", f"has {len(tags)} tags for {len(tokens)} tokens")


_CROSS_CHECKS: dict[str, Callable[[Mapping[str, Any]], None]] = {"ner": _check_ner_lengths}


# --- normalisers: other sources' spellings of the schema, and the optional fields' fills -----------------

_LABEL_NAMES: dict[str, dict[str, int]] = {
    "sentiment": {"0": 0, "1": 1},
    "nli": {"entailment": 0, "not_entailment": 1, "0": 0, "1": 1},  # GLUE RTE's label ids
}


def _fill(record: dict[str, Any], field: str, value: Any) -> None:
    if field not in record:
        record[field] = value


def _name_label(record: dict[str, Any], names: Mapping[str, int]) -> None:
    label = record.get("label")
    if isinstance(label, str) and label.strip() in names:
        record["label"] = names[label.strip()]


def _fill_id(record: dict[str, Any], position: int) -> None:
    _fill(record, "id", str(position))
    if _is_int(record["id"]):  # an id is a name: 13817023 and "13817023" name the same record
        record["id"] = str(record["id"])


def _sentiment(record: dict[str, Any], position: int) -> dict[str, Any]:
    _fill(record, "idx", position)
    _name_label(record, _LABEL_NAMES["sentiment"])
    return record


def _nli(record: dict[str, Any], position: int) -> dict[str, Any]:
    _fill(record, "idx", position)
    _name_label(record, _LABEL_NAMES["nli"])
    return record


def _closed_qa(record: dict[str, Any], position: int) -> dict[str, Any]:
    _fill(record, "title", "")
    if "answer" not in record and "label" in record:  # super_glue's boolq: label 0/1 instead of answer
        record["answer"] = _boolean_label(record["label"])
    return record


def _boolean_label(label: Any) -> bool:
    if isinstance(label, str) and label.strip() in ("0", "1"):
        return label.strip() == "1"
    if isinstance(label, int) and label in (0, 1):
        return bool(label)
    raise _FieldProblem("label", f"is {_show(label)}", "0 or 1 (or give 'answer' as true or false)")


def _open_qa(record: dict[str, Any], position: int) -> dict[str, Any]:
    _fill(record, "passage", "")  # nq_open has no passage: the question is asked closed-book
    return record


def _with_id(record: dict[str, Any], position: int) -> dict[str, Any]:
    _fill_id(record, position)
    return record


def _ner(record: dict[str, Any], position: int) -> dict[str, Any]:
    _fill_id(record, position)
    tags = record.get("ner_tags")
    if isinstance(tags, list) and tags and all(isinstance(tag, str) for tag in tags):
        record["ner_tags"] = _tag_ids(tags)
    return record


def _tag_ids(tags: list[str]) -> list[int]:
    unknown = next((tag for tag in tags if tag not in _TAG_IDS), None)
    if unknown is not None:
        raise _FieldProblem("ner_tags", f"has the unknown tag {unknown!r}")
    return [_TAG_IDS[tag] for tag in _iob1_to_iob2(tags)]


def _iob1_to_iob2(tags: list[str]) -> list[str]:
    """IOB1 (CoNLL-2003's original) starts an entity with I- unless it follows one of its type; IOB2 with B-."""
    converted: list[str] = []
    for tag in tags:
        previous = converted[-1] if converted else "O"
        starts = tag.startswith("I-") and previous[2:] != tag[2:]
        converted.append("B-" + tag[2:] if starts else tag)
    return converted


_NORMALISERS: dict[str, Callable[[dict[str, Any], int], dict[str, Any]]] = {
    "sentiment": _sentiment,
    "closed_qa": _closed_qa,
    "nli": _nli,
    "open_qa": _open_qa,
    "reasoning": lambda record, position: record,
    "dialogue": _with_id,
    "summarization": _with_id,
    "ner": _ner,
}


# --- CSV / TSV cells: text, parsed per the field's kind --------------------------------------------------


def _int_cell(text: str) -> Any:
    return int(text) if re.fullmatch(r"-?\d+", text) else text


def _bool_cell(text: str) -> Any:
    return {"true": True, "false": False, "1": True, "0": False}.get(text.lower(), text)


def _json_cell(text: str) -> Any:
    # A list in a CSV / TSV cell is written as JSON, e.g. ["Mars", "the red planet"].
    try:
        return json.loads(text) if text.startswith("[") else text
    except json.JSONDecodeError:
        return text  # left as text, so validation names the field


_CELL_PARSERS: dict[str, Callable[[str], Any]] = {
    "int": _int_cell,
    "label": _int_cell,
    "bool": _bool_cell,
    "strs": _json_cell,
    "answers": _json_cell,
    "options": _json_cell,
    "tags": _json_cell,
}


def _parse_cells(ability: str, row: Mapping[str, str]) -> dict[str, Any]:
    schema, record = _SCHEMAS[ability], {}
    for field, cell in row.items():
        kind = schema.get(field, "str")
        if kind == "str":
            record[field] = cell  # text stays verbatim (SST-2's sentences keep their trailing space)
        elif cell.strip():  # an empty non-text cell is an absent value: optional fields get filled
            record[field] = _CELL_PARSERS[kind](cell.strip())
    return record


# --- readers --------------------------------------------------------------------------------------------


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8-sig")  # -sig: a byte-order mark would break the JSON / header


def _json_object(where: str, number: int, text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise DataSchemaError(where, number, None, f"is not valid JSON ({error.msg})", "fix its syntax") from None
    return _object(where, number, value)


def _object(where: str, number: int, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise DataSchemaError(where, number, None, f"is {_show(value)}", "write each record as a JSON object")
    return value


def _jsonl_rows(where: str, text: str) -> _Rows:
    # Split at "\n" only: str.splitlines would also split at U+2028 inside a JSON string.
    lines = [line for line in text.split("\n") if line.strip()]
    return _Rows(where, [_json_object(where, number, line) for number, line in enumerate(lines, 1)])


def _read_jsonl(path: Path) -> _Rows:
    return _jsonl_rows(str(path), _text(path))


def _read_json(path: Path) -> _Rows:
    data = _json_document(path)
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        data = data["data"]
    if not isinstance(data, list):
        fix = "give a list of records, or an object whose 'data' key holds one"
        raise DataSchemaError(str(path), None, None, f"holds {type(data).__name__}", fix)
    return _Rows(str(path), [_object(str(path), number, item) for number, item in enumerate(data, 1)])


def _json_document(path: Path) -> Any:
    try:
        return json.loads(_text(path))
    except json.JSONDecodeError as error:
        problem = f"is not valid JSON ({error.msg} at line {error.lineno})"
        raise DataSchemaError(str(path), None, None, problem, "fix its syntax") from None


def _read_delimited(path: Path, dialect: dict[str, Any]) -> _Rows:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle, **dialect)
        header = list(reader.fieldnames or [])
        rows = [_complete_row(str(path), number, row, header) for number, row in enumerate(reader, 1)]
    return _Rows(str(path), rows, textual=True)


def _complete_row(where: str, number: int, row: dict[Any, Any], header: list[str]) -> dict[str, str]:
    # DictReader files surplus cells under None and fills missing ones with None: both mean a broken row.
    if None in row or None in row.values():
        cells = len(header) + len(row.get(None) or []) - sum(value is None for value in row.values())
        problem = f"has {cells} cells where the header has {len(header)} columns"
        raise DataSchemaError(where, number, None, problem, "give every row one cell per header column")
    return row


def _read_csv(path: Path) -> _Rows:
    return _read_delimited(path, {})


def _read_tsv(path: Path) -> _Rows:
    # No quoting in TSV: GLUE's files carry bare quotes inside fields ('Mao\'s "Little Red Book"'), and a
    # field that starts with one would otherwise be read as a quoted field running into the next lines.
    return _read_delimited(path, {"delimiter": "\t", "quoting": csv.QUOTE_NONE})


def _conll_blocks(text: str) -> list[list[tuple[int, list[str]]]]:
    """Sentences as (line number, columns) lists; blank and -DOCSTART- lines end a sentence."""
    blocks: list[list[tuple[int, list[str]]]] = [[]]
    for number, line in enumerate(text.split("\n"), 1):
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


def _read_conll(path: Path) -> _Rows:
    blocks = _conll_blocks(_text(path))
    return _Rows(str(path), [_conll_record(str(path), number, block) for number, block in enumerate(blocks, 1)])


_FILE_READERS: dict[str, Callable[[Path], _Rows]] = {
    ".jsonl": _read_jsonl,
    ".json": _read_json,
    ".csv": _read_csv,
    ".tsv": _read_tsv,
    ".txt": _read_conll,
    ".conll": _read_conll,
}
_CONLL_SUFFIXES = (".txt", ".conll")


# --- the reference study's layout -------------------------------------------------------------------------


def _renamed(rows: _Rows, names: Mapping[str, str]) -> _Rows:
    renamed = [{names.get(key, key): value for key, value in row.items()} for row in rows.rows]
    return _Rows(rows.where, renamed, rows.textual)


def _study_nli(path: Path) -> _Rows:
    return _renamed(_read_tsv(path), {"index": "idx"})


def _study_open_qa(path: Path) -> _Rows:
    rows = _read_jsonl(path)
    return _Rows(rows.where, [_study_passage(rows.where, number, row) for number, row in enumerate(rows.rows, 1)])


def _study_passage(where: str, number: int, row: dict[str, Any]) -> dict[str, Any]:
    output = row.get("output")
    if not (isinstance(output, list) and output and isinstance(output[0], str)):
        problem = f"is {_show(output)}" if "output" in row else "is missing"
        fix = "give the retrieved passages as a non-empty list of strings"
        raise DataSchemaError(where, number, "output", problem, fix)
    # The study's retrieved passages start with blank lines ("\n\n"), left over from the generator that wrote them.
    return {key: value for key, value in row.items() if key != "output"} | {"passage": output[0].strip()}


def _natural_key(path: Path) -> list[Any]:
    # dev_2.txt before dev_10.txt; the split alternates text and digits, so the types line up.
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def _study_dialogue(folder: Path) -> _Rows:
    if not folder.is_dir():
        raise ValueError(f"{folder}: the study's dialogue data is a folder of dev_N.txt files; give that folder")
    files = sorted(folder.glob("*.txt"), key=_natural_key)
    rows = [_json_object(str(file), number, _text(file)) for number, file in enumerate(files, 1)]
    return _Rows(str(folder), rows)


_STUDY_READERS: dict[str, Callable[[Path], _Rows]] = {
    "sentiment": _read_tsv,  # header: sentence label
    "nli": _study_nli,  # header: index sentence1 sentence2 label (label as text)
    "closed_qa": _read_jsonl,
    "open_qa": _study_open_qa,
    "reasoning": _read_jsonl,
    "dialogue": _study_dialogue,
    "summarization": _read_json,
    "ner": _read_conll,
}


# --- sources -----------------------------------------------------------------------------------------------


def _existing(source: DataSource) -> Path:
    path = Path(str(source.path)).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder (data source '{source}')")
    return path


def _probe_rows(ability: str, source: DataSource) -> _Rows:
    text = (resources.files("editguard.tasks") / "data" / f"{ability}.jsonl").read_text(encoding="utf-8")
    return _jsonl_rows(f"editguard/tasks/data/{ability}.jsonl", text)


def _file_rows(ability: str, source: DataSource) -> _Rows:
    path = _existing(source)
    reader = _FILE_READERS.get(path.suffix.lower())
    if reader is None:
        raise ValueError(f"{path}: unsupported file type; give .jsonl, .json, .csv, .tsv (or .txt, .conll for ner)")
    if path.suffix.lower() in _CONLL_SUFFIXES and ability != "ner":
        formats = ".jsonl, .json, .csv or .tsv"
        raise ValueError(f"{path}: CoNLL text holds ner records only; give the {ability} records as {formats}")
    return reader(path)


def _study_rows(ability: str, source: DataSource) -> _Rows:
    return _STUDY_READERS[ability](_existing(source))


def _hf_rows(ability: str, source: DataSource) -> _Rows:
    try:
        import datasets  # lazily: only this source needs the large Hugging Face package
    except ImportError as error:
        raise ImportError(
            f"data source '{source}' needs the Hugging Face 'datasets' package, which is not installed; "
            "install it with `pip install datasets`"
        ) from error
    where = f"Hugging Face dataset '{source}'"
    loaded = datasets.load_dataset(source.name, source.config, split=source.split)
    return _Rows(where, [dict(row) for row in _one_split(where, loaded)])


def _one_split(where: str, loaded: Any) -> Iterable[Mapping[str, Any]]:
    if not isinstance(loaded, Mapping):  # a split was named: load_dataset gave that split
        return loaded
    if len(loaded) != 1:  # no split named, and the dataset has several
        splits = ", ".join(loaded)
        raise ValueError(f"{where} has the splits {splits}; name one, as in 'hf:NAME/CONFIG:validation'")
    return next(iter(loaded.values()))


_SOURCE_READERS: dict[str, Callable[[str, DataSource], _Rows]] = {
    "probe": _probe_rows,
    "hf": _hf_rows,
    "file": _file_rows,
    "study": _study_rows,
}
