"""``hf:`` data sources through the real ``datasets`` library (the ``editguard[datasets]`` extra), on data the
tests write: folders from ``save_to_disk``, local parquet and JSON Lines files read by the library's loaders,
ClassLabel columns, column mappings, and the offline flags."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from editguard.tasks.sources import DataSource, load_records, parse_data_source

datasets: Any = pytest.importorskip("datasets")  # installed by `make setup` (and so in CI); the fast tier says so when not

CONLL = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]  # conll2003's ClassLabel
WIKIANN = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"]  # another dataset, another order


def _sst2(tmp_path: Path) -> Path:
    features = datasets.Features(
        {"idx": datasets.Value("int32"), "sentence": datasets.Value("string"), "label": datasets.ClassLabel(names=["negative", "positive"])}
    )
    split = {"idx": [0, 1], "sentence": ["a dull film ", "a joy "], "label": [0, 1]}
    folder = tmp_path / "sst2"
    datasets.DatasetDict({"train": datasets.Dataset.from_dict(split, features), "validation": datasets.Dataset.from_dict(split, features)}).save_to_disk(str(folder))
    return folder


def test_a_save_to_disk_folder_loads_by_split(tmp_path: Path) -> None:
    folder = _sst2(tmp_path)
    records = load_records("sentiment", parse_data_source(f"hf:{folder}:validation"))
    assert records == [{"idx": 0, "sentence": "a dull film ", "label": 0}, {"idx": 1, "sentence": "a joy ", "label": 1}]
    with pytest.raises(ValueError, match=r"has the splits train, validation; name one"):
        load_records("sentiment", parse_data_source(f"hf:{folder}"))


@pytest.mark.parametrize("names", [CONLL, WIKIANN], ids=["conll2003", "wikiann"])
def test_ner_tags_as_classlabel_ids_of_any_order_become_editguards(tmp_path: Path, names: list[str]) -> None:
    """``ner=hf:conll2003:validation`` gives tokens and ClassLabel ids: mapped by their names, not their positions."""
    features = datasets.Features(
        {"id": datasets.Value("string"), "tokens": datasets.Sequence(datasets.Value("string")), "ner_tags": datasets.Sequence(datasets.ClassLabel(names=names))}
    )
    tags = ["B-PER", "I-PER", "O", "B-LOC"]
    data = {"id": ["0"], "tokens": [["Ada", "Lovelace", "visited", "Paris"]], "ner_tags": [[names.index(tag) for tag in tags]]}
    folder = tmp_path / "ner"
    datasets.Dataset.from_dict(data, features).save_to_disk(str(folder))
    records = load_records("ner", parse_data_source(f"hf:{folder}"))
    assert records == [{"id": "0", "tokens": ["Ada", "Lovelace", "visited", "Paris"], "ner_tags": [CONLL.index(tag) for tag in tags]}]


def test_boolq_with_a_bool_answer_from_a_local_parquet_file(tmp_path: Path) -> None:
    """google/boolq's schema (answer is a bool) through the library's parquet loader."""
    path = tmp_path / "boolq.parquet"
    rows = {"question": ["is water wet", "is fire cold"], "answer": [True, False], "passage": ["Water is wet.", "Fire is hot."]}
    datasets.Dataset.from_dict(rows).to_parquet(str(path))
    records = load_records("closed_qa", parse_data_source(f"hf:{path}"))
    assert [record["answer"] for record in records] == [True, False] and records[0]["title"] == ""


def test_super_glue_boolq_label_ids_map_to_the_answer(tmp_path: Path) -> None:
    features = datasets.Features(
        {"question": datasets.Value("string"), "passage": datasets.Value("string"), "idx": datasets.Value("int32"), "label": datasets.ClassLabel(names=["False", "True"])}
    )
    folder = tmp_path / "boolq"
    datasets.Dataset.from_dict({"question": ["q"], "passage": ["p"], "idx": [0], "label": [1]}, features).save_to_disk(str(folder))
    assert load_records("closed_qa", parse_data_source(f"hf:{folder}"))[0]["answer"] is True


def test_columns_named_otherwise_are_mapped(tmp_path: Path) -> None:
    path = tmp_path / "reviews.jsonl"
    datasets.Dataset.from_dict({"text": ["great ", "awful "], "stars": [1, 0]}).to_json(str(path))
    source = parse_data_source(f"hf:{path}#sentence=text,label=stars")
    assert source == DataSource("hf", path=str(path), columns=(("sentence", "text"), ("label", "stars")))
    assert str(source) == f"hf:{path}#sentence=text,label=stars"
    records = load_records("sentiment", source)
    assert records == [{"idx": 0, "sentence": "great ", "label": 1}, {"idx": 1, "sentence": "awful ", "label": 0}]
    with pytest.raises(ValueError, match=r"has no column 'review' \(its columns: text, stars\); fix '#sentence=review'"):
        load_records("sentiment", parse_data_source(f"hf:{path}#sentence=review"))
    with pytest.raises(ValueError, match="'sentence' is not FIELD=COLUMN"):
        parse_data_source(f"hf:{path}#sentence")


def test_a_record_that_does_not_fit_names_the_dataset_record_and_field(tmp_path: Path) -> None:
    path = tmp_path / "sst2-test.parquet"
    datasets.Dataset.from_dict({"idx": [0], "sentence": ["x"], "label": [-1]}).to_parquet(str(path))  # GLUE's unlabelled test split
    with pytest.raises(ValueError, match=rf"Hugging Face dataset 'hf:{path}', record 1, field 'label'"):
        load_records("sentiment", parse_data_source(f"hf:{path}"))


def test_offline_a_dataset_name_fails_at_once_and_says_how_to_give_a_local_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)  # what the flag sets when datasets is imported
    with pytest.raises(FileNotFoundError, match=r"'hf:glue/sst2:validation' cannot be loaded: .*HF_DATASETS_OFFLINE.* set: only the local cache is read; give a local copy as 'hf:/path/to/folder'"):
        load_records("sentiment", parse_data_source("hf:glue/sst2:validation"))


def test_a_missing_local_path_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="neither a dataset folder"):
        load_records("sentiment", parse_data_source(f"hf:{tmp_path / 'nothing.txt'}"))


def test_hf_without_the_datasets_package_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)  # makes `import datasets` fail
    with pytest.raises(ImportError, match=r"'datasets' package.*pip install"):
        load_records("sentiment", parse_data_source("hf:glue/sst2:validation"))
