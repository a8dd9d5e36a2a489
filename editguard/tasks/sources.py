"""Where an ability's records come from: the data-source syntax, the loading, and the validation.

This module owns the data-source kinds ('probe', 'hf:NAME[/CONFIG][:SPLIT][#FIELD=COLUMN,...]', 'file:PATH',
'study:PATH'),
one ``SourceKind`` record each (its syntax, parser, printer and reader), and ``load_records``, which reads
rows, asks the ability (its ``Ability`` record) to normalise each, and validates it against the ability's
schema, naming the file, the record and the field when a record does not fit.  What is particular to an
ability (schema, normaliser, the study's layout, extra file formats) lives in the ability's module;
file formats live in ``readers``.

``hf:`` goes through the real ``datasets`` library (the ``editguard[datasets]`` extra): a dataset name (the
library's cache and its offline flags, ``HF_DATASETS_OFFLINE`` / ``HF_HUB_OFFLINE``, decide whether the
network is tried), a folder written by ``save_to_disk`` (``hf:./folder:validation``), or a local parquet,
JSON/JSONL or CSV file read by the library's own loaders (``hf:/data/rte.parquet``).  Columns named
otherwise than the ability's schema are mapped with ``#FIELD=COLUMN,...``; a column of ``ClassLabel``
sequences (CoNLL-2003's ``ner_tags``) is handed over as label names, which the ability maps to its own ids.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from editguard.tasks.base import Ability
from editguard.tasks.readers import COMMON_FORMATS, FileFormat, Rows, jsonl_rows
from editguard.tasks.registry import all_names, get_ability, task_names
from editguard.tasks.schema import DataSchemaError, FieldProblem

__all__ = ["ABILITIES", "DataSchemaError", "DataSource", "SourceKind", "load_records", "parse_data_source"]


def __getattr__(name: str) -> Any:
    if name == "ABILITIES":  # computed when asked: the registry finds the abilities on first use
        return tuple(task_names())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --- data sources -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DataSource:
    kind: str  # a key of SOURCE_KINDS: 'probe' | 'hf' | 'file' | 'study'
    path: str | None = None  # file and study
    name: str | None = None  # hf
    config: str | None = None  # hf
    split: str | None = None  # hf
    columns: tuple[tuple[str, str], ...] = ()  # hf: (schema field, dataset column) for columns named otherwise

    def __post_init__(self) -> None:
        if self.kind not in SOURCE_KINDS:
            raise ValueError(f"unknown data source kind {self.kind!r}; the kinds are {', '.join(SOURCE_KINDS)}")
        lacking = SOURCE_KINDS[self.kind].lacks(self)
        if lacking is not None:
            raise ValueError(f"a data source of kind {self.kind!r} needs {lacking}")

    def __str__(self) -> str:
        return SOURCE_KINDS[self.kind].show(self)


@dataclass(frozen=True)
class SourceKind:
    """One kind of data source: how it is written, parsed, printed back and read."""

    syntax: str  # as errors write it, e.g. 'file:PATH'; no colon: the bare word is the whole source
    parse: Callable[[str, str, str], DataSource]  # (kind, text after the colon, whole text) -> source
    show: Callable[[DataSource], str]
    read: Callable[[Ability, DataSource], Rows]
    lacks: Callable[[DataSource], str | None] = lambda source: None  # what a made source lacks, or None
    example: str = ""  # shown after the syntax in errors

    @property
    def bare(self) -> bool:
        return ":" not in self.syntax


def _bad_source(text: str) -> ValueError:
    forms = [f"{kind.syntax!r}" + (f" (as in {kind.example!r})" if kind.example else "") for kind in SOURCE_KINDS.values()]
    return ValueError(f"unrecognised data source {text!r}: write {', '.join(forms[:-1])} or {forms[-1]}")


def parse_data_source(text: str) -> DataSource:
    """'probe' | 'hf:NAME[/CONFIG][:SPLIT]' | 'file:PATH' | 'study:PATH' -> DataSource (ValueError otherwise)."""
    kind, colon, rest = text.strip().partition(":")
    record = SOURCE_KINDS.get(kind)
    if record is None or record.bare == bool(colon):
        raise _bad_source(text)
    return record.parse(kind, rest, text)


# NAME may carry an owner ('nyu-mll/glue/sst2' is owner/name/config); a split may be sliced ('train[:100]').
_HF_SOURCE = re.compile(r"(?P<path>[\w.\-]+(?:/[\w.\-]+){0,2})(?::(?P<split>[\w+]+(?:\[[^\]]*\])?))?")
_LOCAL_HF = re.compile(r"(?P<path>(?:/|\./|\.\./|~)[^:#]*)(?::(?P<split>[\w+]+(?:\[[^\]]*\])?))?")
_COLUMN = re.compile(r"(?P<field>\w+)=(?P<column>[\w.\-]+)")
# Local files the datasets library reads with its own packaged loaders.
HF_FILE_LOADERS = {".parquet": "parquet", ".json": "json", ".jsonl": "json", ".csv": "csv"}


def _parse_hf(kind: str, rest: str, text: str) -> DataSource:
    rest, _, mapping = rest.partition("#")
    columns = tuple(_column_pairs(mapping, text)) if mapping else ()
    local = _LOCAL_HF.fullmatch(rest)
    if local is not None:
        return DataSource("hf", path=local["path"], split=local["split"], columns=columns)
    match = _HF_SOURCE.fullmatch(rest)
    if match is None:
        raise _bad_source(text)
    *name, last = match["path"].split("/")
    if not name:  # a bare NAME has no config
        return DataSource("hf", name=last, split=match["split"], columns=columns)
    return DataSource("hf", name="/".join(name), config=last, split=match["split"], columns=columns)


def _column_pairs(mapping: str, text: str) -> Iterable[tuple[str, str]]:
    for part in mapping.split(","):
        match = _COLUMN.fullmatch(part.strip())
        if match is None:
            raise ValueError(f"data source {text!r}: {part.strip()!r} is not FIELD=COLUMN, as in '#sentence=text,label=stars'")
        yield match["field"], match["column"]


def _hf_text(source: DataSource) -> str:
    path = source.path or "/".join(part for part in (source.name, source.config) if part)
    mapping = ",".join(f"{field}={column}" for field, column in source.columns)
    return f"hf:{path}" + (f":{source.split}" if source.split else "") + (f"#{mapping}" if mapping else "")


def _parse_path(kind: str, rest: str, text: str) -> DataSource:
    if not rest.strip():
        raise _bad_source(text)
    return DataSource(kind, path=rest.strip())


def _lacks_path(source: DataSource) -> str | None:
    return None if source.path else "a path"


# --- loading --------------------------------------------------------------------------------------------


def load_records(ability: str, source: DataSource) -> list[dict[str, Any]]:
    """The ability's records from the source, each in the ability's schema, validated."""
    record = get_ability(ability)  # an unknown ability: UnknownTaskError, a ValueError naming the closest
    rows = SOURCE_KINDS[source.kind].read(record, source)
    if not rows.rows:
        fix = "point the data source at a non-empty one"
        raise DataSchemaError(rows.where, None, None, "holds no records", fix)
    return [_conform(record, rows, position, row) for position, row in enumerate(rows.rows)]


def _conform(ability: Ability, rows: Rows, position: int, row: dict[str, Any]) -> dict[str, Any]:
    try:
        record = _parse_cells(ability, row) if rows.textual else dict(row)
        return _validated(ability, ability.normalise(record, position))
    except FieldProblem as problem:
        wanted = problem.wanted or ability.schema[problem.field].wanted
        fix = f"write it as {wanted}, per the {ability.name} schema (see editguard/tasks/data/{ability.name}.jsonl)"
        raise DataSchemaError(rows.where, position + 1, problem.field, problem.problem, fix) from None


def _validated(ability: Ability, record: Mapping[str, Any]) -> dict[str, Any]:
    for field, kind in ability.schema.items():
        if field not in record:
            raise FieldProblem(field, "is missing")
        problem = kind.check(record[field])
        if problem is not None:
            raise FieldProblem(field, problem)
    ability.check_record(record)
    return {field: record[field] for field in ability.schema}  # exactly the schema: extra source columns go


def _parse_cells(ability: Ability, row: Mapping[str, str]) -> dict[str, Any]:
    """CSV / TSV cells are text: each is parsed per its field's kind (other columns stay text)."""
    record: dict[str, Any] = {}
    for field, cell in row.items():
        kind = ability.schema.get(field)
        if kind is None or kind.cell is None:
            record[field] = cell  # text stays verbatim (SST-2's sentences keep their trailing space)
        elif cell.strip():  # an empty non-text cell is an absent value: optional fields get filled
            record[field] = kind.cell(cell.strip())
    return record


# --- the readers of each kind ---------------------------------------------------------------------------


def _existing(source: DataSource) -> Path:
    path = Path(str(source.path)).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder (data source '{source}'); check the path in --editguard-data")
    return path


def _probe_rows(ability: Ability, source: DataSource) -> Rows:
    text = (resources.files("editguard.tasks") / "data" / f"{ability.name}.jsonl").read_text(encoding="utf-8")
    return jsonl_rows(f"editguard/tasks/data/{ability.name}.jsonl", text)


def _file_rows(ability: Ability, source: DataSource) -> Rows:
    path = _existing(source)
    fileformat = _format_for(path.suffix.lower(), COMMON_FORMATS + ability.file_formats)
    if fileformat is None:
        raise ValueError(_unreadable(path, ability))
    return fileformat.read(path)


def _format_for(suffix: str, formats: Iterable[FileFormat]) -> FileFormat | None:
    return next((fileformat for fileformat in formats if suffix in fileformat.suffixes), None)


def _unreadable(path: Path, ability: Ability) -> str:
    """Why the file cannot hold the ability's records: a format of other abilities only, or none known."""
    common = [suffix for fileformat in COMMON_FORMATS for suffix in fileformat.suffixes]
    formats = {name: _format_for(path.suffix.lower(), get_ability(name).file_formats) for name in all_names()}
    owners = {name: fileformat for name, fileformat in formats.items() if fileformat is not None}
    if owners:
        listed = ", ".join(common[:-1]) + " or " + common[-1]
        named = next(iter(owners.values())).name
        return f"{path}: {named} holds {', '.join(owners)} records only; give the {ability.name} records as {listed}"
    own = [f"{', '.join(_suffixes(name))} for {name}" for name in all_names() if _suffixes(name)]
    return f"{path}: unsupported file type; give {', '.join(common)}" + (f" (or {'; '.join(own)})" if own else "")


def _suffixes(ability: str) -> list[str]:
    return [suffix for fileformat in get_ability(ability).file_formats for suffix in fileformat.suffixes]


def _study_rows(ability: Ability, source: DataSource) -> Rows:
    if ability.read_study is None:
        raise ValueError(f"the study has no {ability.name} files; give the {ability.name} data as 'file:PATH' or 'hf:NAME'")
    return ability.read_study(_existing(source))


def _hf_rows(ability: Ability, source: DataSource) -> Rows:
    try:
        import datasets  # lazily: only this source needs the large Hugging Face package
    except ImportError as error:
        raise ImportError(
            f"data source '{source}' needs the Hugging Face 'datasets' package, which is not installed; "
            "install it with `pip install 'editguard[datasets]'`"
        ) from error
    where = f"Hugging Face dataset '{source}'"
    chosen = _one_split(where, _hf_load(datasets, source, where))
    named = _label_names(chosen)
    rows = [_mapped(where, named(dict(row)), source.columns) for row in chosen]
    return Rows(where, rows)


def _hf_load(datasets: Any, source: DataSource, where: str) -> Any:
    """The dataset (or its splits): by name, from a save_to_disk folder, or from a local file by its loader."""
    try:
        if source.path is None:
            return datasets.load_dataset(source.name, source.config, split=source.split)
        path = Path(source.path).expanduser()
        if path.is_dir():
            loaded = datasets.load_from_disk(str(path))
            return loaded[source.split] if source.split and isinstance(loaded, Mapping) and source.split in loaded else loaded
        loader = HF_FILE_LOADERS.get(path.suffix.lower())
        if not path.is_file() or loader is None:
            raise FileNotFoundError(
                f"{path}: neither a dataset folder (save_to_disk) nor a {'/'.join(HF_FILE_LOADERS)} file"
            )
        return datasets.load_dataset(loader, data_files=str(path), split=source.split or "train")
    except (ConnectionError, FileNotFoundError) as error:
        raise FileNotFoundError(f"{where} cannot be loaded: {_first_line(error)}{_offline_hint()}") from error


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def _offline_hint() -> str:
    import os

    flags = [flag for flag in ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE") if os.environ.get(flag, "").lower() in ("1", "true", "yes")]
    if not flags:
        return ""
    return f" ({' and '.join(flags)} set: only the local cache is read; give a local copy as 'hf:/path/to/folder' or 'file:PATH')"


def _label_names(dataset: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Columns of ClassLabel sequences (NER tags) -> their names, which the ability maps to its own ids.

    A single ClassLabel column stays an integer: GLUE-style 0/1 labels are what the abilities read.
    """
    features = getattr(dataset, "features", None) or {}
    names = {
        column: feature.feature.names
        for column, feature in features.items()
        if hasattr(getattr(feature, "feature", None), "names") and not hasattr(feature, "names")
    }

    def convert(row: dict[str, Any]) -> dict[str, Any]:
        for column, labels in names.items():
            if isinstance(row.get(column), list):
                row[column] = [labels[value] if isinstance(value, int) and 0 <= value < len(labels) else value for value in row[column]]
        return row

    return convert


def _mapped(where: str, row: dict[str, Any], columns: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    """The schema's field names for a dataset's columns (``#FIELD=COLUMN``); other columns stay as they are."""
    for field, column in columns:
        if column not in row:
            raise ValueError(f"{where} has no column {column!r} (its columns: {', '.join(row)}); fix '#{field}={column}'")
        row[field] = row.pop(column)
    return row


def _one_split(where: str, loaded: Any) -> Iterable[Mapping[str, Any]]:
    if not isinstance(loaded, Mapping):  # a split was named: load_dataset gave that split
        return loaded
    if len(loaded) != 1:  # no split named, and the dataset has several
        splits = ", ".join(loaded)
        raise ValueError(f"{where} has the splits {splits}; name one, as in 'hf:NAME/CONFIG:validation'")
    return next(iter(loaded.values()))


def _parse_probe(kind: str, rest: str, text: str) -> DataSource:
    return DataSource("probe")


SOURCE_KINDS: dict[str, SourceKind] = {
    "probe": SourceKind("probe", _parse_probe, lambda source: "probe", _probe_rows),
    "hf": SourceKind(
        "hf:NAME[/CONFIG][:SPLIT]", _parse_hf, _hf_text, _hf_rows,
        lacks=lambda source: None if source.name or source.path else "a dataset name or a local path",
        example="hf:glue/sst2:validation",
    ),
    "file": SourceKind("file:PATH", _parse_path, lambda source: f"file:{source.path}", _file_rows, _lacks_path),
    "study": SourceKind("study:PATH", _parse_path, lambda source: f"study:{source.path}", _study_rows, _lacks_path),
}  # fmt: skip
