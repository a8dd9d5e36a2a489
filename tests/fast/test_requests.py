from __future__ import annotations

import copy
import os
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from editguard.editing.requests import EditRequest, EditRequestError, load_requests

# Project-written ZsRE edits in the layout EasyEdit ships (the reference study's edited-data file).
ZSRE_SAMPLE = Path(__file__).resolve().parents[1] / "data" / "study-layout" / "edited-data" / "zsre_mend_eval_portability_gpt4.json"
COUNTERFACT_SAMPLE = Path(__file__).resolve().parents[1] / "data" / "counterfact_sample.json"

ZSRE_RECORD: dict[str, Any] = {
    "subject": "Eiffel Tower",
    "src": "Which city is the Eiffel Tower in?",
    "pred": "Paris",
    "rephrase": "In which city does the Eiffel Tower stand?",
    "alt": "Rome",
    "answers": ["Paris"],
    "loc": "nq question: who wrote pride and prejudice",
    "loc_ans": "Jane Austen",
    "cond": "Paris >> Rome || Which city is the Eiffel Tower in?",
    "portability": {"New Question": "Which country is the Eiffel Tower in?", "New Answer": "Italy"},
}
COUNTERFACT_RECORD: dict[str, Any] = {
    "case_id": 7,
    "requested_rewrite": {
        "prompt": "The mother tongue of {} is",
        "relation_id": "P103",
        "target_new": {"str": "English", "id": "Q1860"},
        "target_true": {"str": "French", "id": "Q150"},
        "subject": "Danielle Darrieux",
    },
    "paraphrase_prompts": ["Danielle Darrieux spoke the language"],
    "neighborhood_prompts": ["The mother tongue of Léon Blum is"],
    "attribute_prompts": ["The mother tongue of Douglas Adams is"],
    "generation_prompts": ["Danielle Darrieux's mother tongue is"],
}
EDITGUARD_RECORD: dict[str, Any] = {"prompt": "Paris is the capital of", "subject": "Paris", "target_new": "Italy"}


def _write(path: Path, content: Any) -> Path:
    path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    return path


def _changed(record: dict[str, Any], change: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
    changed = copy.deepcopy(record)
    change(changed)
    return changed


# editguard JSON Lines


def test_demo_edits_are_well_formed() -> None:
    requests = load_requests("demo")
    assert len(requests) >= 3
    assert all(request.subject in request.prompt for request in requests)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", r"line 2: not valid JSON"),
        ('["a list"]', r"line 2: expected a JSON object"),
        ('{"prompt": "Paris is in", "subject": "Paris"}', r"line 2: field 'target_new' is missing"),
        ('{"prompt": "Paris is in", "subject": "Rome", "target_new": "Italy"}', r"line 2: field 'subject' \('Rome'\) does not occur"),
        ('{"prompt": "Paris is in", "subject": "Paris", "target_new": "Italy", "colour": 1}', r"line 2: unknown field 'colour'"),
        ('{"prompt": "Paris is in", "subject": "Paris", "target_new": 3}', r"line 2: field 'target_new' is missing or not"),
        ('{"prompt": "Paris is in", "subject": "Paris", "target_new": "Italy", "rephrase": 3}', r"line 2: field 'rephrase' must be a string"),
        (
            '{"prompt": "Paris is in", "subject": "Paris", "target_new": "Italy", "locality_prompt": "Rome is in"}',
            r"line 2: field 'locality_answer' is missing; 'locality_prompt' needs it",
        ),
        (
            '{"prompt": "Paris is in", "subject": "Paris", "target_new": "Italy", "portability_answer": "Europe"}',
            r"line 2: field 'portability_prompt' is missing; 'portability_answer' needs it",
        ),
    ],
)
def test_a_malformed_request_names_file_line_and_field(tmp_path: Path, line: str, message: str) -> None:
    path = _write(tmp_path / "edits.jsonl", json.dumps(EDITGUARD_RECORD) + "\n" + line + "\n")
    with pytest.raises(EditRequestError, match=message) as caught:
        load_requests(path)
    assert str(path) in str(caught.value)


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(EditRequestError, match="does not exist"):
        load_requests(tmp_path / "nope.jsonl")
    for name, content in [("empty.jsonl", ""), ("blank.jsonl", "\n  \n"), ("empty.json", "[]"), ("blank.json", " [ ]\n")]:
        with pytest.raises(EditRequestError, match="holds no requests"):
            load_requests(_write(tmp_path / name, content))


def test_a_request_without_quality_fields_keeps_its_cache_dict(tmp_path: Path) -> None:
    record = {**EDITGUARD_RECORD, "ground_truth": "France", "rephrase": "Paris lies in"}
    (request,) = load_requests(_write(tmp_path / "edits.jsonl", json.dumps(record) + "\n"))
    assert request.as_dict() == record


def test_jsonl_carries_the_quality_fields(tmp_path: Path) -> None:
    record = {
        **EDITGUARD_RECORD,
        "locality_prompt": "Berlin is the capital of",
        "locality_answer": "Germany",
        "portability_prompt": "The Louvre is in the country of",
        "portability_answer": "Italy",
    }
    (request,) = load_requests(_write(tmp_path / "edits.jsonl", json.dumps(record) + "\n"))
    assert request.as_dict() == record


# ZsRE


def test_zsre_maps_as_easyedit_does(tmp_path: Path) -> None:
    (request,) = load_requests(_write(tmp_path / "zsre.json", [ZSRE_RECORD]))
    assert request == EditRequest(
        prompt="Which city is the Eiffel Tower in?",
        subject="Eiffel Tower",
        target_new="Rome",
        ground_truth="Paris",
        rephrase="In which city does the Eiffel Tower stand?",
        locality_prompt="nq question: who wrote pride and prejudice",
        locality_answer="Jane Austen",
        portability_prompt="Which country is the Eiffel Tower in?",
        portability_answer="Italy",
    )


def test_zsre_portability_is_optional(tmp_path: Path) -> None:
    record = _changed(ZSRE_RECORD, lambda r: r.pop("portability"))
    (request,) = load_requests(_write(tmp_path / "zsre.json", [record]))
    assert request.portability_prompt is None and "portability_prompt" not in request.as_dict()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r.pop("alt"), r"record \[1\]: field 'alt' is missing or not a non-empty string"),
        (lambda r: r.pop("loc_ans"), r"record \[1\]: field 'loc_ans' is missing"),
        (lambda r: r.update(answers="Paris"), r"record \[1\]: field 'answers' must be a non-empty list of strings"),
        (lambda r: r.update(answers=[]), r"record \[1\]: field 'answers' must be a non-empty list"),
        (lambda r: r.update(src=42), r"record \[1\]: field 'src' is missing or not a non-empty string"),
        (lambda r: r.update(subject="Louvre"), r"record \[1\]: field 'subject' \('Louvre'\) does not occur in 'src'; ROME"),
        (lambda r: r.update(portability="Italy"), r"record \[1\]: field 'portability' must be an object"),
        (lambda r: r["portability"].pop("New Answer"), r"record \[1\]: field 'portability.New Answer' is missing"),
    ],
)
def test_a_malformed_zsre_record_names_file_index_and_field(tmp_path: Path, change: Callable[[dict[str, Any]], object], message: str) -> None:
    path = _write(tmp_path / "zsre.json", [ZSRE_RECORD, _changed(ZSRE_RECORD, change)])
    with pytest.raises(EditRequestError, match=message) as caught:
        load_requests(path)
    assert str(caught.value).startswith(str(path))


def test_the_study_layout_zsre_sample_loads() -> None:
    raw = json.loads(ZSRE_SAMPLE.read_text(encoding="utf-8"))
    assert all(list(record) == [*ZSRE_RECORD] for record in raw)  # the keys of EasyEdit's file, in its order
    assert all(list(record["portability"]) == ["Recalled Relation", "New Question", "New Answer"] for record in raw)
    requests = load_requests(ZSRE_SAMPLE)
    assert len(requests) == len(raw) == 12
    assert [request.prompt for request in requests] == [record["src"] for record in raw]
    assert [request.target_new for request in requests] == [record["alt"] for record in raw]
    assert all(request.portability_answer for request in requests)
    assert [request.portability_prompt for request in requests] == [record["portability"]["New Question"] for record in raw]
    # ground truth is answers[0], as in EasyEdit, even where the recorded prediction 'pred' differs
    assert [request.ground_truth for request in requests] == [record["answers"][0] for record in raw]
    assert sum(record["pred"] != record["answers"][0] for record in raw) == 2
    assert [(r.locality_prompt, r.locality_answer) for r in requests] == [(record["loc"], record["loc_ans"]) for record in raw]
    assert requests[2].target_new == "Charlotte Bront\u00eb"  # escaped as \u00eb in the file


def test_the_shipped_twenty_zsre_edits_load() -> None:
    requests = load_requests("zsre-20")
    assert len(requests) == 20
    assert len({request.subject for request in requests}) == 20
    assert all(request.rephrase and request.locality_prompt and request.locality_answer for request in requests)
    assert all(request.target_new != request.ground_truth for request in requests)
    # no edit rewrites a fact another edit's locality check relies on
    subjects = {request.subject.lower() for request in requests}
    assert not any(subject in (request.locality_prompt or "").lower() for request in requests for subject in subjects)


# CounterFact


def test_counterfact_maps_as_rome_does(tmp_path: Path) -> None:
    (request,) = load_requests(_write(tmp_path / "cf.json", [COUNTERFACT_RECORD]))
    assert request == EditRequest(
        prompt="The mother tongue of Danielle Darrieux is",
        subject="Danielle Darrieux",
        target_new="English",
        ground_truth="French",
        rephrase="Danielle Darrieux spoke the language",
        locality_prompt="The mother tongue of Léon Blum is",
        locality_answer="French",
    )


def test_the_counterfact_fixture_loads() -> None:
    requests = load_requests(COUNTERFACT_SAMPLE)
    assert [request.subject for request in requests] == [
        "Danielle Darrieux",
        "Edwin of Northumbria",
        "Toko Yasuda",
        "Autonomous University of Madrid",
    ]
    assert requests[2].prompt == "Toko Yasuda, the"
    assert all(request.locality_answer == request.ground_truth for request in requests)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r["requested_rewrite"]["target_new"].pop("str"), r"field 'requested_rewrite.target_new.str' is missing"),
        (lambda r: r["requested_rewrite"].pop("subject"), r"field 'requested_rewrite.subject' is missing"),
        (lambda r: r.update(requested_rewrite="x"), r"field 'requested_rewrite.prompt' is missing"),
        (lambda r: r.update(paraphrase_prompts="Danielle spoke"), r"field 'paraphrase_prompts' must be a non-empty list of strings"),
        (lambda r: r.pop("neighborhood_prompts"), r"field 'neighborhood_prompts' must be a non-empty list"),
        (
            lambda r: r["requested_rewrite"].update(prompt="The mother tongue of Danielle Darrieux is"),
            r"field 'requested_rewrite.prompt' \('The mother tongue of Danielle Darrieux is'\) has no '\{\}' where the subject goes",
        ),
    ],
)
def test_a_malformed_counterfact_record_names_file_index_case_and_field(
    tmp_path: Path, change: Callable[[dict[str, Any]], object], message: str
) -> None:
    path = _write(tmp_path / "cf.json", [COUNTERFACT_RECORD, _changed(COUNTERFACT_RECORD, change)])
    with pytest.raises(EditRequestError, match=r"record \[1\] \(case_id 7\): " + message) as caught:
        load_requests(path)
    assert str(caught.value).startswith(str(path))


def test_a_counterfact_record_without_case_id_is_named_by_index(tmp_path: Path) -> None:
    record = _changed(COUNTERFACT_RECORD, lambda r: (r.pop("case_id"), r["requested_rewrite"].pop("subject")))
    with pytest.raises(EditRequestError, match=r"record \[0\]: field 'requested_rewrite.subject' is missing"):
        load_requests(_write(tmp_path / "cf.json", [record]))


# Detection


@pytest.mark.parametrize(
    ("name", "content", "subject"),
    [
        ("cf.jsonl", [COUNTERFACT_RECORD], "Danielle Darrieux"),  # a JSON list whatever the extension
        ("editguard.json", [EDITGUARD_RECORD], "Paris"),  # the editguard layout as a JSON list
        ("edits.txt", json.dumps(EDITGUARD_RECORD) + "\n", "Paris"),
        ("zsre.jsonl", json.dumps(ZSRE_RECORD) + "\n", "Eiffel Tower"),  # ZsRE records one per line
        ("zsre.data", "\n  " + json.dumps([ZSRE_RECORD], indent=2), "Eiffel Tower"),
    ],
)
def test_the_layout_is_detected_from_content(tmp_path: Path, name: str, content: Any, subject: str) -> None:
    (request,) = load_requests(_write(tmp_path / name, content))
    assert request.subject == subject


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('[{"src": "a"}, ', r"not valid JSON \(Expecting value at line 1, column 16\); a file that starts with '\[' must be one JSON list"),
        ([{"question": "Who?", "answer": "Me"}], r"the first record's keys \(answer, question\) match no known edit-request layout \(CounterFact: requested_rewrite; ZsRE: src, alt; editguard: prompt, subject, target_new\)"),
        ([{}], r"the first record's keys \(none\) match no known"),
        (["a string"], r"record \[0\]: expected a JSON object holding one edit request, got str"),
        ([ZSRE_RECORD, [1, 2]], r"record \[1\]: expected a JSON object"),
        ([ZSRE_RECORD, COUNTERFACT_RECORD], r"record \[1\]: field 'src' is missing"),  # one layout per file
    ],
)
def test_a_file_of_no_known_layout_is_one_clear_error(tmp_path: Path, content: Any, message: str) -> None:
    path = _write(tmp_path / "edits.json", content)
    with pytest.raises(EditRequestError, match=message) as caught:
        load_requests(path)
    assert str(caught.value).startswith(str(path))


def test_a_file_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    path = tmp_path / "edits.jsonl"
    path.write_bytes(b'{"prompt": "\xff"}\n')
    with pytest.raises(EditRequestError, match="not UTF-8 text"):
        load_requests(path)


# Found by the fuzz tier (tests/fuzz/test_fuzz_requests.py)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('[{"prompt": ' + "1" * 5000 + "}]", r"not valid JSON \(Exceeds the limit \(4300 digits\) for integer string conversion"),
        ("[" * 100_000 + "]" * 100_000, r"not valid JSON \(nested too deeply\)"),
        ('{"prompt": ' + "1" * 5000 + "}\n", r"line 1: not valid JSON \(Exceeds the limit"),
        ('{"a":' * 50_000 + "1" + "}" * 50_000 + "\n", r"line 1: not valid JSON \(nested too deeply\)"),
    ],
)
def test_a_number_too_long_or_nesting_too_deep_for_python_is_not_valid_json(tmp_path: Path, content: str, message: str) -> None:
    path = _write(tmp_path / "edits.json", content)
    with pytest.raises(EditRequestError, match=message) as caught:
        load_requests(path)
    assert str(caught.value).startswith(str(path)) and "\n" not in str(caught.value)


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x85", "\x1c", "\x0b"])
def test_a_line_separator_inside_a_json_string_does_not_end_the_line(tmp_path: Path, separator: str) -> None:
    record = {**EDITGUARD_RECORD, "prompt": f"Paris{separator} is the capital of"}
    path = _write(tmp_path / "edits.jsonl", json.dumps(record, ensure_ascii=False) + "\n" + json.dumps(EDITGUARD_RECORD) + "\n")
    assert [request.prompt for request in load_requests(path)] == [record["prompt"], EDITGUARD_RECORD["prompt"]]


@pytest.mark.parametrize("field", ["ground_truth", "rephrase", "locality_prompt", "portability_answer"])
def test_an_empty_optional_field_is_refused_as_in_the_zsre_layout(tmp_path: Path, field: str) -> None:
    record = {**EDITGUARD_RECORD, "locality_prompt": "Rome is in", "locality_answer": "Italy", "portability_prompt": "x", "portability_answer": "y"}
    path = _write(tmp_path / "edits.jsonl", json.dumps({**record, field: " "}) + "\n")
    with pytest.raises(EditRequestError, match=rf"line 1: field '{field}' is empty; give it the text or leave the field out"):
        load_requests(path)


# Unclear inputs made clear


@pytest.mark.parametrize(("subject", "prompt"), [("Caf\u00e9 M\u00fcller", "Cafe\u0301 Mu\u0308ller is in"), ("Cafe\u0301", "Caf\u00e9 is in")])
def test_a_subject_in_another_unicode_normal_form_than_the_prompt_is_told_so(tmp_path: Path, subject: str, prompt: str) -> None:
    for record in ({"prompt": prompt, "subject": subject, "target_new": "Rome"}, {**ZSRE_RECORD, "src": prompt, "subject": subject}):
        path = _write(tmp_path / "edits.json", [record])
        with pytest.raises(EditRequestError, match=r"occurs in '(prompt|src)' only in another Unicode normal form .*write both in the same normal form \(NFC\)"):
            load_requests(path)


def test_a_subject_that_is_not_in_the_prompt_in_any_form_keeps_its_message(tmp_path: Path) -> None:
    path = _write(tmp_path / "edits.json", [{"prompt": "Caf\u00e9 is in", "subject": "Bar", "target_new": "Rome"}])
    with pytest.raises(EditRequestError, match=r"field 'subject' \('Bar'\) does not occur in 'prompt'; ROME edits"):
        load_requests(path)


def test_an_edits_path_that_is_a_folder_or_a_device_says_so(tmp_path: Path) -> None:
    (tmp_path / "edits").mkdir()
    (tmp_path / "null.jsonl").symlink_to(os.devnull)
    cases = {
        tmp_path / "edits": "is a folder, not an edits file",
        Path(os.devnull): "is a device, not an edits file",
        tmp_path / "null.jsonl": f"is a link to {os.devnull} \\(a device\\), not an edits file",
    }
    for path, says in cases.items():
        with pytest.raises(EditRequestError, match=rf"edits file '{path}' {says}; give --editguard-edits an edit-requests file"):
            load_requests(path)
