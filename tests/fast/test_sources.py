from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from editguard.tasks.sources import (
    ABILITIES,
    DataSchemaError,
    DataSource,
    load_records,
    parse_data_source,
)

DATA = Path(str(resources.files("editguard.tasks") / "data"))
# Project-written records in the reference study's own file layouts (see its README.md).
STUDY_LAYOUT = Path(__file__).resolve().parents[1] / "data" / "study-layout"

# The schema of each ability: field -> the Python type(s) of its value.
SCHEMA_TYPES: dict[str, dict[str, type]] = {
    "sentiment": {"idx": int, "sentence": str, "label": int},
    "closed_qa": {"question": str, "title": str, "answer": bool, "passage": str},
    "nli": {"idx": int, "sentence1": str, "sentence2": str, "label": int},
    "open_qa": {"question": str, "answer": list, "passage": str},
    "reasoning": {"question": str, "answer": str},
    "dialogue": {"id": str, "article": str, "options": list, "answers": str},
    "summarization": {"id": str, "dialogue": str, "summary": str},
    "ner": {"id": str, "tokens": list, "ner_tags": list},
}

# (path under task-data, ability, records in the sample: counted by hand from the files)
STUDY_SAMPLES = [
    ("test-SentimentAnalysis.tsv", "sentiment", 20),
    ("test-NLI.tsv", "nli", 20),
    ("test-ClosedDomainQA.jsonl", "closed_qa", 16),
    ("test-OpenDomainQA.jsonl", "open_qa", 16),
    ("test-reasoning.jsonl", "reasoning", 12),
    ("test-dialogue", "dialogue", 12),
    ("test-summarization.json", "summarization", 10),
    ("test-NER.txt", "ner", 16),  # 16 sentences in 3 documents
]


def assert_in_schema(ability: str, records: list[dict[str, Any]]) -> None:
    for record in records:
        assert list(record) == list(SCHEMA_TYPES[ability])
        for field, kind in SCHEMA_TYPES[ability].items():
            assert isinstance(record[field], kind), (field, record[field])


def write(path: Path, text: str) -> DataSource:
    path.write_text(text, encoding="utf-8")
    return DataSource("file", path=str(path))


def jsonl(path: Path, rows: list[dict[str, Any]]) -> DataSource:
    return write(path, "".join(json.dumps(row) + "\n" for row in rows))


# --- the reference study's files ----------------------------------------------------------------------


@pytest.fixture
def seed() -> Path:
    return STUDY_LAYOUT / "task-data"


def study(seed: Path, name: str, ability: str) -> list[dict[str, Any]]:
    return load_records(ability, parse_data_source(f"study:{seed / name}"))


@pytest.mark.parametrize(("name", "ability", "count"), STUDY_SAMPLES)
def test_every_study_sample_loads_into_its_ability_schema(seed: Path, name: str, ability: str, count: int) -> None:
    records = study(seed, name, ability)
    assert len(records) == count
    assert_in_schema(ability, records)


def test_every_study_sample_is_covered(seed: Path) -> None:
    assert sorted(path.name for path in seed.iterdir()) == sorted(name for name, _, _ in STUDY_SAMPLES)
    assert sorted(ability for _, ability, _ in STUDY_SAMPLES) == list(ABILITIES)


def test_study_nli_labels_are_glue_ids_and_index_becomes_idx(seed: Path) -> None:
    records = study(seed, "test-NLI.tsv", "nli")
    assert [record["idx"] for record in records] == list(range(20))
    assert records[0]["label"] == 1  # not_entailment
    assert records[1]["label"] == 0  # entailment
    assert [record["label"] for record in records].count(0) == 10  # both names read, none dropped
    assert records[15]["sentence2"] == 'Arthur Penn wrote the "Harbour Lights" trilogy.'  # bare quotes kept
    # a field that starts with a bare quote is not read as a quoted field running into the next rows
    assert records[6]["sentence1"] == '"Quiet Harbour" is the third novel by the author, who wrote it while working as a ferry pilot.'
    assert records[7]["sentence1"].startswith("The museum will stay closed")


def test_study_sentiment_counts_positions_and_keeps_sentences_verbatim(seed: Path) -> None:
    records = study(seed, "test-SentimentAnalysis.tsv", "sentiment")
    assert [record["idx"] for record in records] == list(range(20))
    assert records[0] == {
        "idx": 0, "sentence": "a warm , funny and quietly moving film about two brothers who never learned to talk . ", "label": 1,
    }  # fmt: skip
    assert records[1] == {"idx": 1, "sentence": "the plot stalls long before the second act , and nothing can restart it ", "label": 0}
    assert all(record["sentence"].endswith(" ") for record in records)  # SST-2's trailing space, every one


def test_study_dialogue_files_come_in_natural_order(seed: Path) -> None:
    records = study(seed, "test-dialogue", "dialogue")
    assert [record["id"] for record in records] == [f"dev_{n}" for n in range(1, 13)]
    assert "".join(record["answers"] for record in records) == "BADCABCDABCD"  # each file's record, in that order


def test_study_open_qa_passage_is_the_first_output_without_its_leading_blank_lines(seed: Path) -> None:
    records = study(seed, "test-OpenDomainQA.jsonl", "open_qa")
    assert records[0]["passage"].startswith("Polonium was discovered in 1898")
    assert all(record["passage"] == record["passage"].strip() for record in records)
    assert records[0]["answer"] == ["Marie Skłodowska-Curie"]
    assert records[4]["answer"] == ["9 November 1989", "November 9 , 1989", "1989"]
    assert records[9]["passage"].startswith("Neil Armstrong") and "Aldrin" not in records[9]["passage"]  # the first only
    assert records[12]["passage"].endswith("published in 1725.")  # a trailing blank line goes too
    assert "South America.\n\nIt flows" in records[14]["passage"]  # blank lines inside stay


def test_study_ner_skips_docstart_and_maps_tags(seed: Path) -> None:
    records = study(seed, "test-NER.txt", "ner")
    assert [record["id"] for record in records] == [str(n) for n in range(16)]
    assert records[0]["tokens"][:4] == ["ROWING", "-", "KINGSBRIDGE", "CLUB"]
    assert records[0]["ner_tags"][:4] == [0, 0, 3, 4]  # O O B-ORG I-ORG
    assert records[1] == {"id": "1", "tokens": ["GENEVA", "2024-05-14"], "ner_tags": [5, 0]}
    assert records[7]["tokens"][:3] == ["MARKETS", "-", "HARBOUR"]  # the second document's first sentence
    assert not any("-DOCSTART-" in record["tokens"] for record in records)
    assert {tag for record in records for tag in record["ner_tags"]} == set(range(9))  # every tag, mapped


def test_study_summarization_keeps_string_ids(seed: Path) -> None:
    records = study(seed, "test-summarization.json", "summarization")
    assert records[0]["id"] == "13902145"
    assert [record["id"][:4] for record in records] == ["1390"] * 10
    assert records[0]["dialogue"].endswith("\r\nOscar: Great, see you there \U0001f642")  # CRLF turns and an emoji kept


# --- the embedded probes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("ability", ABILITIES)
def test_every_probe_loads_unchanged(ability: str) -> None:
    lines = (DATA / f"{ability}.jsonl").read_text(encoding="utf-8").splitlines()
    raw = [json.loads(line) for line in lines if line]
    records = load_records(ability, parse_data_source("probe"))
    assert records == raw
    assert_in_schema(ability, records)


def test_abilities_and_the_canary_are_the_probe_files_sorted() -> None:
    from editguard.tasks import all_names

    assert all_names() == sorted(path.stem for path in DATA.glob("*.jsonl"))
    assert len(ABILITIES) == 8 and "canary" not in ABILITIES


def test_unknown_ability_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown ability 'sentimnet'"):
        load_records("sentimnet", DataSource("probe"))


# --- local files in the Hugging Face schema ---------------------------------------------------------------


def test_jsonl_fills_idx_and_reads_string_labels(tmp_path: Path) -> None:
    source = write(tmp_path / "s.jsonl", '{"sentence": "good", "label": "1"}\n\n{"sentence": "bad", "label": 0}\n')
    assert load_records("sentiment", source) == [
        {"idx": 0, "sentence": "good", "label": 1},
        {"idx": 1, "sentence": "bad", "label": 0},
    ]


def test_jsonl_keeps_line_separator_characters_inside_strings(tmp_path: Path) -> None:
    text = json.dumps({"question": "q", "answer": ["a\u2028b"]}, ensure_ascii=False) + "\n"
    records = load_records("open_qa", write(tmp_path / "q.jsonl", text))
    assert records == [{"question": "q", "answer": ["a\u2028b"], "passage": ""}]


@pytest.mark.parametrize("wrap", [lambda rows: rows, lambda rows: {"version": 1, "data": rows}])
def test_json_list_or_data_object(tmp_path: Path, wrap: Any) -> None:
    rows = [{"dialogue": "A: hi", "summary": "A says hi."}, {"id": 13817023, "dialogue": "B: yo", "summary": "B."}]
    source = write(tmp_path / "s.json", json.dumps(wrap(rows)))
    records = load_records("summarization", source)
    assert [record["id"] for record in records] == ["0", "13817023"]  # filled, and an int id made text


def test_csv_super_glue_boolq_label_becomes_answer_and_title_is_filled(tmp_path: Path) -> None:
    text = 'question,passage,idx,label\nis it wet,"Water, as ever, is wet.",0,1\nis fire cold,Fire is hot.,1,0\n'
    records = load_records("closed_qa", write(tmp_path / "b.csv", text))
    assert records == [
        {"question": "is it wet", "title": "", "answer": True, "passage": "Water, as ever, is wet."},
        {"question": "is fire cold", "title": "", "answer": False, "passage": "Fire is hot."},
    ]


def test_csv_boolean_column(tmp_path: Path) -> None:
    text = "question,title,answer,passage\nq,T,True,p\nr,U,false,s\n"
    records = load_records("closed_qa", write(tmp_path / "b.csv", text))
    assert [record["answer"] for record in records] == [True, False]


def test_csv_list_column_as_json_and_missing_passage(tmp_path: Path) -> None:
    text = 'question,answer\nred planet,"[""Mars"", ""mars""]"\n'
    records = load_records("open_qa", write(tmp_path / "nq.csv", text))
    assert records == [{"question": "red planet", "answer": ["Mars", "mars"], "passage": ""}]


def test_tsv_nli_label_names_and_unquoted_fields(tmp_path: Path) -> None:
    text = (
        "sentence1\tsentence2\tlabel\n"
        '"Little Red Book" is by Lin Piao.\tLin Piao wrote it.\tentailment\n'
        "A\tB\tnot_entailment\n"
    )
    records = load_records("nli", write(tmp_path / "rte.tsv", text))
    assert records == [
        {"idx": 0, "sentence1": '"Little Red Book" is by Lin Piao.', "sentence2": "Lin Piao wrote it.", "label": 0},
        {"idx": 1, "sentence1": "A", "sentence2": "B", "label": 1},
    ]


def test_tsv_sentiment_numeric_columns(tmp_path: Path) -> None:
    text = "idx\tsentence\tlabel\n7\tfine . \t1\r\n8\tdull .\t0\r\n"
    records = load_records("sentiment", write(tmp_path / "sst.tsv", text))
    assert records == [{"idx": 7, "sentence": "fine . ", "label": 1}, {"idx": 8, "sentence": "dull .", "label": 0}]


@pytest.mark.parametrize("suffix", [".txt", ".conll"])
def test_conll_text_iob1_becomes_iob2(tmp_path: Path, suffix: str) -> None:
    text = (
        "-DOCSTART- -X- -X- O\n\n"
        "Peter NNP B-NP I-PER\nBlackburn NNP I-NP I-PER\nvisits VBZ B-VP O\nEU NNP B-NP I-ORG\n\n"
        "Bonn NNP B-NP I-LOC\nUN NNP B-NP I-ORG\nWHO NNP I-NP B-ORG\n\n"
        "-DOCSTART- -X- -X- O\n\nGerman B-MISC\nvisitors O\n"
    )
    records = load_records("ner", write(tmp_path / f"c{suffix}", text))
    assert records == [
        {"id": "0", "tokens": ["Peter", "Blackburn", "visits", "EU"], "ner_tags": [1, 2, 0, 3]},
        {"id": "1", "tokens": ["Bonn", "UN", "WHO"], "ner_tags": [5, 3, 3]},  # B- after I-ORG: a second entity
        {"id": "2", "tokens": ["German", "visitors"], "ner_tags": [7, 0]},
    ]


def test_jsonl_ner_with_tag_names(tmp_path: Path) -> None:
    source = jsonl(tmp_path / "n.jsonl", [{"id": "a", "tokens": ["Anna", "Berg"], "ner_tags": ["B-PER", "I-PER"]}])
    assert load_records("ner", source) == [{"id": "a", "tokens": ["Anna", "Berg"], "ner_tags": [1, 2]}]


def test_dialogue_and_reasoning_jsonl(tmp_path: Path) -> None:
    options = ["F: a", "F: b", "F: c", "F: d"]
    dialogue = jsonl(tmp_path / "d.jsonl", [{"article": "M: hi", "options": options, "answers": "C", "extra": 1}])
    expected = [{"id": "0", "article": "M: hi", "options": options, "answers": "C"}]
    assert load_records("dialogue", dialogue) == expected
    reasoning = jsonl(tmp_path / "r.jsonl", [{"question": "1+1?", "answer": "1 + 1 = 2.\n#### 2"}])
    assert load_records("reasoning", reasoning) == [{"question": "1+1?", "answer": "1 + 1 = 2.\n#### 2"}]


def test_csv_text_fields_of_every_kind(tmp_path: Path) -> None:
    # The answer letter and the rationale are text cells too (they once had no cell parser and crashed).
    text = 'article,options,answers\nM: hi,"[""a"", ""b"", ""c"", ""d""]",B\n'
    assert load_records("dialogue", write(tmp_path / "d.csv", text)) == [
        {"id": "0", "article": "M: hi", "options": ["a", "b", "c", "d"], "answers": "B"}
    ]
    text = 'question,answer\n1+1?,"1 + 1 = 2.\n#### 2"\n'
    assert load_records("reasoning", write(tmp_path / "r.csv", text)) == [{"question": "1+1?", "answer": "1 + 1 = 2.\n#### 2"}]


def test_unsupported_files_and_missing_paths(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unsupported file type"):
        load_records("sentiment", write(tmp_path / "s.parquet", ""))
    with pytest.raises(ValueError, match="CoNLL text holds ner records only"):
        load_records("sentiment", write(tmp_path / "s.txt", "good 1\n"))
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_records("sentiment", DataSource("file", path=str(tmp_path / "absent.jsonl")))
    with pytest.raises(ValueError, match="folder of dev_N.txt files"):
        load_records("dialogue", DataSource("study", path=str(write(tmp_path / "d.jsonl", "{}").path)))


# --- malformed records ------------------------------------------------------------------------------------


def schema_error(ability: str, source: DataSource) -> DataSchemaError:
    with pytest.raises(DataSchemaError) as caught:
        load_records(ability, source)
    message = str(caught.value)
    assert message.endswith(".") and message.count(". ") == 0  # one sentence
    return caught.value


def assert_names(error: DataSchemaError, path: Path, record: int | None, field: str | None) -> None:
    message = str(error)
    assert str(path) in message and (error.where, error.record, error.field) == (str(path), record, field)
    assert (f"record {record}" in message) == (record is not None)
    assert (f"field {field!r}" in message) == (field is not None)


SST = {"idx": 0, "sentence": "fine", "label": 1}
OPTIONS = ["a", "b", "c", "d"]


@pytest.mark.parametrize(
    ("ability", "bad", "field", "says"),
    [
        ("sentiment", {"idx": 1, "label": 1}, "sentence", "is missing"),
        ("sentiment", {"idx": 1, "sentence": "x", "label": "positive"}, "label", "'positive' (str)"),
        ("sentiment", {"idx": True, "sentence": "x", "label": 1}, "idx", "True (bool)"),
        ("sentiment", {"idx": 1, "sentence": "x", "label": -1}, "label", "validation split"),
        ("closed_qa", {"question": "q", "answer": "yes", "passage": "p"}, "answer", "'yes' (str)"),
        ("closed_qa", {"question": "q", "label": 2, "passage": "p"}, "label", "2 (int)"),
        ("nli", {"sentence1": "a", "sentence2": "b", "label": "neutral"}, "label", "'neutral'"),
        ("open_qa", {"question": "q", "answer": []}, "answer", "empty list"),
        ("open_qa", {"question": "q", "answer": ["a", 5]}, "answer", "element 2 = 5 (int)"),
        ("reasoning", {"question": "q", "answer": "It is 4."}, "answer", "'#### <number>'"),
        ("dialogue", {"id": "x", "article": "a", "options": OPTIONS[:3], "answers": "A"}, "options", "3 options"),
        ("dialogue", {"id": "x", "article": "a", "options": OPTIONS, "answers": "E"}, "answers", "'E'"),
        ("ner", {"id": "x", "tokens": ["a", "b"], "ner_tags": [0, 9]}, "ner_tags", "element 2 = 9"),
        ("ner", {"id": "x", "tokens": ["a", "b"], "ner_tags": ["O", "B-FOO"]}, "ner_tags", "unknown tag 'B-FOO'"),
        ("ner", {"id": "x", "tokens": ["a", "b"], "ner_tags": [0]}, "ner_tags", "1 tags for 2 tokens"),
        ("ner", {"id": "x", "tokens": "a b", "ner_tags": [0, 0]}, "tokens", "'a b' (str)"),
    ],
)
def test_a_bad_record_names_file_record_and_field(
    tmp_path: Path, ability: str, bad: dict[str, Any], field: str, says: str
) -> None:
    good = load_records(ability, DataSource("probe"))[0]
    path = tmp_path / "bad.jsonl"
    error = schema_error(ability, jsonl(path, [good, bad]))
    assert_names(error, path, 2, field)
    assert says in str(error) and f"editguard/tasks/data/{ability}.jsonl" in str(error)


def test_a_one_column_conll_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "c.conll"
    error = schema_error("ner", write(path, "A B-PER\n\nLonely\nB O\n"))
    assert_names(error, path, 2, "ner_tags")
    assert "line 3" in str(error)


def test_invalid_json_names_the_record(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    assert_names(schema_error("sentiment", write(path, json.dumps(SST) + "\n{oops\n")), path, 2, None)
    assert_names(schema_error("sentiment", write(path, json.dumps(SST) + "\n[1]\n")), path, 2, None)


def test_json_must_hold_a_list(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    assert "holds dict" in str(schema_error("sentiment", write(path, '{"rows": []}')))
    assert_names(schema_error("sentiment", write(path, "[1]")), path, 1, None)


def test_a_ragged_tsv_row_is_named(tmp_path: Path) -> None:
    path = tmp_path / "s.tsv"
    error = schema_error("sentiment", write(path, "sentence\tlabel\ngood\t1\nbad\t0\textra\n"))
    assert_names(error, path, 2, None)
    assert "3 cells" in str(error)


@pytest.mark.parametrize(
    ("name", "text"), [("e.jsonl", "\n\n"), ("e.json", "[]"), ("e.tsv", ""), ("e.txt", "-DOCSTART- O\n")]
)
def test_an_empty_source_is_an_error(tmp_path: Path, name: str, text: str) -> None:
    ability = "ner" if name.endswith(".txt") else "sentiment"
    error = schema_error(ability, write(tmp_path / name, text))
    assert "holds no records" in str(error)


def test_a_bad_dialogue_file_in_the_study_folder_is_named(tmp_path: Path) -> None:
    folder = tmp_path / "test-dialogue"
    folder.mkdir()
    record = {"answers": "A", "options": OPTIONS, "article": "m : hi", "id": "dev_1"}
    (folder / "dev_1.txt").write_text(json.dumps(record), encoding="utf-8")
    (folder / "dev_2.txt").write_text(json.dumps(record | {"options": OPTIONS[:3]}), encoding="utf-8")
    error = schema_error("dialogue", DataSource("study", path=str(folder)))
    assert_names(error, folder, 2, "options")


def test_study_open_qa_without_output_is_named(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    row = {"question": "q", "answer": ["a"], "output": ["p"]}
    jsonl(path, [row, row | {"output": []}])
    assert_names(schema_error("open_qa", DataSource("study", path=str(path))), path, 2, "output")


# --- data-source strings ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("probe", DataSource("probe")),
        ("hf:glue/sst2:validation", DataSource("hf", name="glue", config="sst2", split="validation")),
        ("hf:gsm8k/main:test", DataSource("hf", name="gsm8k", config="main", split="test")),
        ("hf:nq_open:validation", DataSource("hf", name="nq_open", split="validation")),
        ("hf:conll2003", DataSource("hf", name="conll2003")),
        (
            "hf:nyu-mll/glue/rte:train[:100]",
            DataSource("hf", name="nyu-mll/glue", config="rte", split="train[:100]"),
        ),
        ("file:data/sst.tsv", DataSource("file", path="data/sst.tsv")),
        ("study:../study-layout/test-dialogue", DataSource("study", path="../study-layout/test-dialogue")),
    ],
)
def test_data_sources_parse_and_print_back(text: str, expected: DataSource) -> None:
    assert parse_data_source(text) == expected
    assert str(expected) == text


@pytest.mark.parametrize(
    "text",
    [
        "",
        "probes",
        "Probe",
        "hf:",
        "hf:glue/sst2:",
        "hf:a/b/c/d:test",
        "hf:glue sst2",
        "file:",
        "study:  ",
        "s3:bucket/x",
        "/data/x.jsonl",
    ],
)
def test_bad_data_sources_are_refused_with_a_sentence(text: str) -> None:
    with pytest.raises(ValueError, match=r"unrecognised data source .*'probe', 'hf:NAME\[/CONFIG\]\[:SPLIT\]'"):
        parse_data_source(text)


def test_a_data_source_needs_its_parts() -> None:
    with pytest.raises(ValueError, match="unknown data source kind"):
        DataSource("s3")
    with pytest.raises(ValueError, match="needs a path"):
        DataSource("file")


# --- found by the fuzz tier (tests/fuzz/test_fuzz_data.py) ---------------------------------------------------


@pytest.mark.parametrize("name", ["s.jsonl", "s.json", "s.csv", "s.tsv"])
def test_a_data_file_that_is_not_utf8_is_one_schema_error(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"idx\tsentence\tlabel\n0\tcaf\xe9\t1\n" if name.endswith("sv") else b'{"sentence": "caf\xe9"}\n')
    error = schema_error("sentiment", DataSource("file", path=str(path)))
    assert_names(error, path, None, None)
    assert "is not UTF-8 text" in str(error) and str(error).endswith("save it as UTF-8.")


@pytest.mark.parametrize("name", ["s.csv", "s.tsv"])
def test_a_cell_longer_than_the_csv_limit_is_one_schema_error(tmp_path: Path, name: str) -> None:
    separator = "," if name.endswith(".csv") else "\t"
    path = tmp_path / name
    path.write_text(f"idx{separator}sentence{separator}label\n0{separator}{'x' * 200_000}{separator}1\n", encoding="utf-8")
    error = schema_error("sentiment", DataSource("file", path=str(path)))
    assert_names(error, path, None, None)
    assert "cannot be read (field larger than field limit" in str(error)


@pytest.mark.parametrize(
    ("name", "text", "says"),
    [
        ("s.jsonl", '{"idx": ' + "1" * 5000 + "}\n", "is not valid JSON (Exceeds the limit (4300 digits)"),
        ("s.json", "[" + "1" * 5000 + "]", "is not valid JSON (Exceeds the limit (4300 digits)"),
        ("s.jsonl", "[" * 100_000 + "]" * 100_000 + "\n", "is not valid JSON (nested too deeply)"),
        ("s.json", '{"a":' * 50_000 + "1" + "}" * 50_000, "is not valid JSON (nested too deeply)"),
    ],
)
def test_a_number_too_long_or_nesting_too_deep_for_python_is_not_valid_json(tmp_path: Path, name: str, text: str, says: str) -> None:
    error = schema_error("sentiment", write(tmp_path / name, text))
    assert str(tmp_path / name) in str(error) and says in str(error)


@pytest.mark.parametrize("how", ["file", "study"])
def test_a_data_path_that_is_a_folder_is_one_schema_error(tmp_path: Path, how: str) -> None:
    folder = tmp_path / "data.tsv"
    folder.mkdir()
    error = schema_error("sentiment", DataSource(how, path=str(folder)))
    assert_names(error, folder, None, None)
    assert "is a folder, not a file; give the path of the data file itself" in str(error)


def test_a_missing_data_path_says_where_to_look(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"no such file or folder \(data source 'file:.*'\); check the path in --editguard-data"):
        load_records("sentiment", DataSource("file", path=str(tmp_path / "absent.jsonl")))


@pytest.mark.parametrize("space", ["\t", "\n", "\u00a0", "\u3000"])
def test_a_canary_sentence_whose_words_another_white_space_parts_keeps_its_continuation(tmp_path: Path, space: str) -> None:
    from editguard.tasks import get_task

    records = load_records("canary", jsonl(tmp_path / "c.jsonl", [{"text": f"The{space}kettle clicked off."}]))
    (example,) = get_task("canary").examples(records)
    assert example.prompts == ("The",) and example.target == " kettle clicked off."
