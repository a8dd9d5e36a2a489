"""Data files of every ability, in every file kind and the study's own layouts, through the gate's examples stage.

Records start from the ability's probe set and are mutated (a field dropped, set to an odd value or to another
spelling the normaliser knows, an unknown column added, ids shared), then written as JSON lines, JSON, CSV,
TSV, CoNLL text (ner) or the study's layout (``study:PATH``), sometimes with damaged bytes.  The examples stage
(``stages/examples.py``: ``load_records``, then ``Task.examples``, then distinct ids) gives examples, whose
records fit the ability's schema exactly, or one ``GateProblem`` sentence naming the file.
"""

from __future__ import annotations

import csv
import io
import json
from importlib import resources
from pathlib import Path
from typing import Any

from fuzz_support import FUZZ, assert_one_sentence, byte_damage, count, fine_text, fresh_folder, odd_bytes, odd_text, odd_value, record_paths, text_of
from hypothesis import given, settings
from hypothesis import strategies as st

from editguard.errors import GateProblem
from editguard.settings import Settings
from editguard.stages.examples import Examples
from editguard.tasks import all_names, canary_names, get_ability, get_task, task_names
from editguard.tasks.base import Example
from editguard.tasks.ner import NER_TAGS
from editguard.tasks.sources import load_records, parse_data_source

ABILITIES = all_names()  # the eight abilities and the canary
SEEDS = {
    name: [json.loads(line) for line in (resources.files("editguard.tasks") / "data" / f"{name}.jsonl").read_text("utf-8").splitlines()[:4]]
    for name in ABILITIES
}
# Values a normaliser or a cell parser reads as something else: label and tag names, letters, numbers as text.
SPELLINGS = st.sampled_from(
    [
        "0", "1", "-1", "2", " 1 ", "true", "false", "True", "entailment", "not_entailment", "A", "D", "E", "a",
        "B-PER", "I-LOC", "I-", "O", "#### 12", "#### 1,234.5", "####", "no final number", "two words", "word",
        "a\tb", "a\nb", "x" * 300, [], [""], ["Mars"], ["A", "B", "C", "D"], ["B-PER", "I-PER"], ["I-ORG", "O"], [0, 9],
        [0, 1], 13817023, 1.0, True, None, {"str": "x"},
    ]
)  # fmt: skip



@st.composite
def record_of(draw: Any, seed: dict[str, Any], kind: str) -> Any:
    """A probe record of the ability, kept, or with one field dropped or set to an odd value, or an extra column."""
    record = json.loads(json.dumps(seed))
    if kind == "replace":
        return draw(odd_value)
    if kind == "spaces":  # the spaces of the texts as another white space: a tab, a newline, a no-break space
        space = draw(st.sampled_from(["\t", "\n", "\r\n", "\u00a0", "\u3000", "  ", ""]))
        return {key: value.replace(" ", space) if isinstance(value, str) else value for key, value in record.items()}
    if kind == "add":
        record[draw(st.sampled_from(["extra", "label", "id", "idx", "answer", "output"]))] = draw(st.one_of(SPELLINGS, odd_value))
        return record
    paths = record_paths(record)
    if kind != "keep" and paths:
        *parent_path, key = draw(st.sampled_from(paths))
        parent = record
        for step in parent_path:
            parent = parent[step]
        if kind == "drop":
            del parent[key]
        else:
            parent[key] = draw(SPELLINGS if kind == "spell" else st.one_of(odd_value, odd_text))
    return record


@st.composite
def records_of(draw: Any, ability: str) -> list[Any]:
    size = draw(st.integers(1, 4))
    changed = draw(st.integers(0, size + size // 2))  # one record changed, or (a third of the time) none
    kind = draw(st.sampled_from(["drop", "set", "set", "spell", "spell", "spaces", "spaces", "add", "replace"]))
    seeds = draw(st.permutations(SEEDS[ability]))[:size]  # distinct probe records: distinct ids
    records = [draw(record_of(seed, kind if number == changed else "keep")) for number, seed in enumerate(seeds)]
    objects = [record for record in records if isinstance(record, dict)]
    if len(objects) >= 2 and draw(st.integers(0, 3)) == 0:  # two records that share an id (or one the other's position)
        key = draw(st.sampled_from(["id", "idx"]))
        objects[0][key] = objects[1].get(key, draw(st.sampled_from([0, 1, "1"])))
    return records


# --- writers: records -> the bytes of one file kind --------------------------------------------------------------


def _jsonl(records: list[Any], draw: Any) -> str:
    return "".join(json.dumps(record, ensure_ascii=draw(st.booleans())) + "\n" for record in records)


def _json(records: list[Any], draw: Any) -> str:
    shape = draw(st.sampled_from(["list", "list", "data", "object"]))
    value = records if shape == "list" else {"data": records} if shape == "data" else (records[0] if records else {})
    return json.dumps(value, indent=draw(st.sampled_from([None, 2])))


def _header(records: list[Any]) -> list[str]:
    header: list[str] = []
    for record in records:
        header += [key for key in (record if isinstance(record, dict) else {}) if key not in header]
    return header


def _delimited(records: list[Any], draw: Any, delimiter: str) -> str:
    header = _header(records)
    rows = [[text_of(record.get(key, "")) if isinstance(record, dict) else text_of(record) for key in header] for record in records]
    if rows and draw(st.integers(0, 5)) == 0:  # a row with a cell too few or too many
        rows[0] = rows[0][:-1] if draw(st.booleans()) else rows[0] + ["surplus"]
    if delimiter == ",":
        out = io.StringIO()
        csv.writer(out, lineterminator=draw(st.sampled_from(["\n", "\r\n"]))).writerows([header, *rows])
        return out.getvalue()
    return "".join("\t".join(row) + "\n" for row in [header, *rows])  # TSV is read unquoted, as GLUE writes it


def _conll(records: list[Any], draw: Any) -> str:
    """CoNLL text: 'token TAG' lines, a blank line between sentences, sometimes a -DOCSTART- or a one-column line."""
    lines = ["-DOCSTART- -X- -X- O", ""] if draw(st.booleans()) else []
    for record in records:
        tokens = record.get("tokens") if isinstance(record, dict) else None
        tags = record.get("ner_tags") if isinstance(record, dict) else None
        tokens = tokens if isinstance(tokens, list) else [str(tokens)]
        tags = tags if isinstance(tags, list) else [tags]
        for token, tag in zip(tokens, tags + [None] * len(tokens)):
            name = NER_TAGS[tag] if isinstance(tag, int) and not isinstance(tag, bool) and 0 <= tag < len(NER_TAGS) else str(tag)
            lines.append(f"{token} NNP I-NP {name}" if draw(st.booleans()) else f"{token} {name}")
        lines.append("")
    if lines and draw(st.integers(0, 5)) == 0:
        lines.insert(draw(st.integers(0, len(lines))), draw(st.sampled_from(["Lonely", "   ", "a b c d e", "\x00 O"])))
    return "\n".join(lines)


FILE_KINDS = {".jsonl": _jsonl, ".json": _json, ".csv": lambda r, d: _delimited(r, d, ","), ".tsv": lambda r, d: _delimited(r, d, "\t")}
STUDY_FILES = {  # the study's own layout of each ability: the file's suffix and writer (dialogue: a folder)
    "closed_qa": (".jsonl", _jsonl), "open_qa": (".jsonl", _jsonl), "reasoning": (".jsonl", _jsonl),
    "summarization": (".json", _json), "ner": (".txt", _conll),
    "sentiment": (".tsv", FILE_KINDS[".tsv"]), "nli": (".tsv", FILE_KINDS[".tsv"]),
}  # fmt: skip


def _study_records(ability: str, records: list[Any]) -> list[Any]:
    """The study's spelling of the records: open_qa's passage as the first retrieved one, nli's idx as 'index'."""
    if ability == "open_qa":
        return [{**{k: v for k, v in r.items() if k != "passage"}, "output": ["\n\n" + str(r.get("passage"))]} if isinstance(r, dict) else r for r in records]
    if ability == "nli":
        return [{("index" if k == "idx" else k): v for k, v in r.items()} if isinstance(r, dict) else r for r in records]
    return records


@st.composite
def data_source(draw: Any) -> tuple[str, str, Any]:
    """(ability, how the file is written, what to write) for a source of one file kind or the study's layout."""
    ability = draw(st.sampled_from(ABILITIES))
    records = draw(records_of(ability))
    kinds = [*FILE_KINDS, *([".txt", ".conll"] if ability == "ner" else []), "study"]
    kind = draw(st.sampled_from(kinds))
    if kind == "study" and ability == "dialogue":
        files = {f"dev_{n}.txt": json.dumps(record) for n, record in enumerate(records, 1)}
        return ability, kind, files
    if kind == "study" and ability in STUDY_FILES:
        suffix, writer = STUDY_FILES[ability]
        content = writer(_study_records(ability, records), draw)
    elif kind == "study":  # the canary has no study files
        suffix, content = ".jsonl", _jsonl(records, draw)
    else:
        suffix, content = kind, (FILE_KINDS[kind] if kind in FILE_KINDS else _conll)(records, draw)
    data = content.encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 7)) == 7:
        data = byte_damage(data, draw)
    return ability, f"{'study' if kind == 'study' else 'file'}{suffix}", data


@st.composite
def odd_source(draw: Any) -> tuple[str, str, Any]:
    """A file of any kind (and any ability's study file) that holds an odd document: no records, other bytes."""
    ability = draw(st.sampled_from(ABILITIES))
    suffixes = [*FILE_KINDS, ".txt", ".conll"]
    if ability == "dialogue":  # the study's folder, one file of which is odd
        return ability, "study", {"dev_1.txt": json.dumps(SEEDS[ability][0]), "dev_2.txt": draw(odd_bytes)}
    how = draw(st.sampled_from([f"file{suffix}" for suffix in suffixes] + [f"study{STUDY_FILES.get(ability, ('.jsonl',))[0]}"]))
    return ability, how, draw(odd_bytes)


def _write(folder: Path, how: str, data: Any) -> tuple[str, Path]:
    kind, _, suffix = how.partition(".")
    if isinstance(data, dict):  # the study's dialogue folder
        path = folder / "test-dialogue"
        path.mkdir()
        for name, content in data.items():
            (path / name).write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
        return f"{kind}:{path}", path
    path = folder / f"data.{suffix}"
    path.write_bytes(data)
    return f"{kind}:{path}", path


def _check_example(task_kind: str, example: Example) -> None:
    assert isinstance(example.id, str)
    assert example.prompts and all(isinstance(prompt, str) for prompt in example.prompts)
    if task_kind == "choice":
        assert example.choices and example.gold is not None and 0 <= example.gold < len(example.pairs)
    elif task_kind == "perplexity":
        assert isinstance(example.target, str) and example.target.strip(), example  # a continuation to score
    else:
        assert example.target is not None


@settings(FUZZ, max_examples=1200)
@given(source=data_source(), protocol=st.sampled_from(["default", "study"]))
def test_a_data_file_gives_examples_in_the_schema_or_one_sentence(tmp_path: Path, source: tuple[str, str, Any], protocol: str) -> None:
    count("data")
    _check_source(tmp_path, source, protocol)


@settings(FUZZ, max_examples=250)
@given(source=odd_source(), protocol=st.sampled_from(["default", "study"]))
def test_an_odd_document_in_a_data_file_is_one_sentence(tmp_path: Path, source: tuple[str, str, Any], protocol: str) -> None:
    count("data-odd")
    _check_source(tmp_path, source, protocol)


def _check_source(tmp_path: Path, source: tuple[str, str, Any], protocol: str) -> None:
    ability, how, data = source
    text, path = _write(fresh_folder(tmp_path), how, data)
    stage = Examples(Settings(data={ability: text}, protocol=protocol))
    task = stage.task(ability)
    try:
        examples = stage.all(task)
    except Exception as error:  # noqa: BLE001 -- the property: editguard's own error, or none
        assert isinstance(error, GateProblem), f"{type(error).__name__} escaped: {error!r}"
        assert_one_sentence(error, str(path))
        return
    ids = [example.id for example in examples]
    assert len(set(ids)) == len(ids)
    for example in examples:
        _check_example(task.kind, example)
    records = load_records(ability, parse_data_source(text))
    schema, record_check = get_ability(ability).schema, get_ability(ability).check_record
    for record in records:
        assert list(record) == list(schema)  # exactly the schema's fields, in its order
        for field, kind in schema.items():
            assert kind.check(record[field]) is None, (field, record[field])
        record_check(record)
    other = "study" if protocol == "default" else "default"
    assert len(get_task(ability, other).examples(records)) == len(records)


def test_every_ability_and_canary_is_fuzzed() -> None:
    assert set(ABILITIES) == set(task_names()) | set(canary_names())
    assert len(task_names()) == 8


# Fields whose text may be anything not blank (the rest keep the probe record's values).
FREE_TEXT = {
    "sentiment": ("sentence",), "closed_qa": ("question", "title", "passage"), "nli": ("sentence1", "sentence2"),
    "open_qa": ("question", "passage"), "reasoning": ("question",), "dialogue": ("article",),
    "summarization": ("dialogue", "summary"), "canary": ("text",), "ner": (),
}  # fmt: skip
UNQUOTED = "\t\n\r"  # TSV is read without quoting: a cell cannot hold these


@st.composite
def well_formed_records(draw: Any) -> tuple[str, str, list[dict[str, Any]]]:
    ability = draw(st.sampled_from(ABILITIES))
    suffix = draw(st.sampled_from(list(FILE_KINDS)))
    records = [json.loads(json.dumps(seed)) for seed in draw(st.permutations(SEEDS[ability]))[: draw(st.integers(1, 4))]]
    texts = fine_text.filter(lambda text: not any(ch in text for ch in UNQUOTED)) if suffix == ".tsv" else fine_text
    for record in records:
        for field in FREE_TEXT[ability]:
            record[field] = draw(texts) + (" " + draw(texts) if ability == "canary" else "")  # the canary needs two words
    if suffix == ".tsv" and any(ch in json.dumps(records) for ch in ("\\t", "\\n", "\\r")):
        suffix = ".csv"  # a probe text with a line break (a GSM8K rationale) is no TSV cell
    return ability, suffix, records


def _clean(records: list[dict[str, Any]], suffix: str, ascii_only: bool) -> str:
    """The records in a file of the kind, written as the format's own writer would (no damage)."""
    if suffix == ".jsonl":
        return "".join(json.dumps(record, ensure_ascii=ascii_only) + "\n" for record in records)
    if suffix == ".json":
        return json.dumps(records, ensure_ascii=ascii_only)
    rows = [list(records[0]), *[[text_of(value) for value in record.values()] for record in records]]
    if suffix == ".tsv":
        return "".join("\t".join(row) + "\n" for row in rows)
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue()


@settings(FUZZ, max_examples=600)
@given(content=well_formed_records(), ascii_only=st.booleans())
def test_well_formed_records_are_read_as_written(tmp_path: Path, content: tuple[str, str, list[dict[str, Any]]], ascii_only: bool) -> None:
    """No false refusal: records in the schema, their texts odd but valid, load as they were written, in every file kind."""
    count("data-well-formed")
    ability, suffix, records = content
    path = fresh_folder(tmp_path) / f"data{suffix}"
    path.write_text(_clean(records, suffix, ascii_only), encoding="utf-8")
    assert load_records(ability, parse_data_source(f"file:{path}")) == records
