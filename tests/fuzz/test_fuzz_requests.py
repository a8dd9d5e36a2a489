"""Edit-request files (``editing/requests.py``) in every layout and container, well formed and not.

Layouts: editguard, ZsRE and CounterFact records; containers: a JSON list, JSON Lines, one object spread over
lines, and damaged bytes.  ``located_requests`` gives requests that satisfy ``EditRequest``'s rules or one
``EditRequestError`` sentence naming the file.
"""

from __future__ import annotations

import copy
import json
import unicodedata
from pathlib import Path
from typing import Any

from fuzz_support import FUZZ, ODD_DOCUMENTS, assert_one_sentence, byte_damage, count, fine_text, fresh_folder, odd_bytes, odd_text, odd_value, record_paths
from hypothesis import given, settings
from hypothesis import strategies as st

from editguard.editing.requests import OPTIONAL_FIELDS, PAIRED_FIELDS, REQUIRED_FIELDS, EditRequest, load_requests, located_requests
from editguard.settings import parse_edits

SUBJECTS = ["Paris", "The Eiffel Tower", "Danielle Darrieux", "Caf\u00e9 M\u00fcller", "Cafe\u0301", "\u00c5ngstr\u00f6m", "x"]
words = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=10).filter(str.strip)  # blanks: mutations


@st.composite
def subject_and_prompt(draw: Any) -> tuple[str, str]:
    subject = draw(st.one_of(st.sampled_from(SUBJECTS), words))
    prompt = draw(words) + " " + subject + draw(st.sampled_from([" is located in", " speaks", "'s capital is", ""]))
    if draw(st.integers(0, 9)) == 9:  # the subject in another normal form than the prompt, or not in it at all
        form = draw(st.sampled_from(["NFC", "NFD", "other"]))
        subject = unicodedata.normalize(form, subject) if form != "other" else subject + "!"
    return subject, prompt


@st.composite
def editguard_record(draw: Any) -> dict[str, Any]:
    subject, prompt = draw(subject_and_prompt())
    record: dict[str, Any] = {"prompt": prompt, "subject": subject, "target_new": draw(words)}
    for field in ("ground_truth", "rephrase"):
        if draw(st.booleans()):
            record[field] = draw(words)
    for pair in PAIRED_FIELDS:
        if draw(st.booleans()):
            record.update({field: draw(words) for field in pair})
    return record


@st.composite
def zsre_record(draw: Any) -> dict[str, Any]:
    subject, prompt = draw(subject_and_prompt())
    record = {
        "subject": subject, "src": prompt, "alt": draw(words), "answers": [draw(words)], "rephrase": draw(words),
        "loc": draw(words), "loc_ans": draw(words), "pred": "ignored", "cond": "ignored",
    }  # fmt: skip
    if draw(st.booleans()):
        record["portability"] = {"New Question": draw(words), "New Answer": draw(words)}
    return record


@st.composite
def counterfact_record(draw: Any) -> dict[str, Any]:
    subject = draw(st.one_of(st.sampled_from(SUBJECTS), words))
    return {
        "case_id": draw(st.one_of(st.integers(0, 10**6), st.text(max_size=4), st.booleans(), st.none())),
        "requested_rewrite": {
            "prompt": draw(st.sampled_from(["The mother tongue of {} is", "{} works for", "{}", "no slot here", "{} and {}"])),
            "subject": subject,
            "target_new": {"str": draw(words), "id": "Q1"},
            "target_true": {"str": draw(words), "id": "Q2"},
        },
        "paraphrase_prompts": draw(st.lists(words, max_size=2)),
        "neighborhood_prompts": draw(st.lists(words, max_size=2)),
    }



@st.composite
def mutated(draw: Any, record: dict[str, Any]) -> Any:
    """``record`` as drawn, or with one field dropped, set to an odd value, or an unknown field added; or no object."""
    record = copy.deepcopy(record)
    kind = draw(st.sampled_from(["keep", "keep", "drop", "set", "set", "add", "replace"]))
    paths = record_paths(record)
    if kind == "replace":
        return draw(odd_value)
    if kind == "add":
        record[draw(st.text(max_size=8))] = draw(odd_value)
    if kind in ("drop", "set") and paths:
        *parent_path, key = draw(st.sampled_from(paths))
        parent = record
        for step in parent_path:
            parent = parent[step]
        if kind == "drop":
            del parent[key]
        else:
            parent[key] = draw(st.one_of(odd_value, odd_text))
    return record


LAYOUTS = {"editguard": editguard_record(), "ZsRE": zsre_record(), "CounterFact": counterfact_record()}


@st.composite
def requests_file(draw: Any) -> tuple[bytes, int | None]:
    """The bytes of an edits file and how many records it holds (None when it is damaged, or no container)."""
    layout = LAYOUTS[draw(st.sampled_from(sorted(LAYOUTS)))]
    records = [draw(mutated(draw(layout))) for _ in range(draw(st.integers(1, 4)))]
    container = draw(st.sampled_from(["lines", "lines", "list", "spread"]))
    ascii_only = draw(st.booleans())
    if container == "list":
        text = json.dumps(records, ensure_ascii=ascii_only, indent=draw(st.sampled_from([None, 2])))
    elif container == "spread":  # one object over several lines: valid JSON, not JSON Lines
        text = json.dumps(records[0], ensure_ascii=ascii_only, indent=2)
    else:
        text = "".join(json.dumps(record, ensure_ascii=ascii_only) + draw(st.sampled_from(["\n", "\r\n", "\n\n"])) for record in records)
    data = text.encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 5)) == 5:
        return byte_damage(data, draw), None
    return data, (len(records) if container != "spread" else None)


def _check_request(request: EditRequest) -> None:
    """The rules every request that is read keeps: texts where they are needed, the subject in the prompt, pairs."""
    assert isinstance(request, EditRequest)
    for field in REQUIRED_FIELDS:
        value = getattr(request, field)
        assert isinstance(value, str) and value.strip(), (field, value)
    assert request.subject in request.prompt
    for field in OPTIONAL_FIELDS:
        value = getattr(request, field)
        assert value is None or (isinstance(value, str) and value.strip()), (field, value)
    for question, answer in PAIRED_FIELDS:
        assert (getattr(request, question) is None) == (getattr(request, answer) is None), (question, answer)


@settings(FUZZ, max_examples=1200)
@given(content=requests_file(), suffix=st.sampled_from([".jsonl", ".json", ".txt", ".csv", ""]))
def test_an_edits_file_gives_requests_or_one_sentence(tmp_path: Path, content: tuple[bytes, int | None], suffix: str) -> None:
    count("requests")
    _check_file(tmp_path, content, suffix)


@settings(FUZZ, max_examples=60)
@given(data=st.one_of(ODD_DOCUMENTS, odd_bytes), suffix=st.sampled_from([".jsonl", ".json"]))
def test_an_odd_edits_document_is_one_sentence(tmp_path: Path, data: bytes, suffix: str) -> None:
    count("requests-odd")
    _check_file(tmp_path, (data, None), suffix)


def _check_file(tmp_path: Path, content: tuple[bytes, int | None], suffix: str) -> None:
    data, records = content
    path = fresh_folder(tmp_path) / f"edits{suffix}"
    path.write_bytes(data)
    assert parse_edits(str(path)) == str(path)  # the option accepts any file: its content is read at start-up
    try:
        located = located_requests(path)
    except Exception as error:  # noqa: BLE001 -- the property: editguard's own error, or none
        assert_one_sentence(error, str(path))
        return
    assert located and all(where.startswith(str(path)) for where, _ in located)
    for _, request in located:
        _check_request(request)
    if records is not None:
        assert len(located) == records
    assert load_requests(path) == tuple(request for _, request in located)


@st.composite
def well_formed(draw: Any) -> tuple[str, list[dict[str, Any]], list[EditRequest]]:
    """Requests in one layout whose every field is well formed (odd characters included), and what they must read as."""
    layout = draw(st.sampled_from(["editguard", "ZsRE", "CounterFact"]))
    requests = []
    for _ in range(draw(st.integers(1, 3))):
        subject = draw(fine_text)
        prompt, answer, new, truth = draw(fine_text) + " " + subject + " " + draw(fine_text), draw(fine_text), draw(fine_text), draw(fine_text)
        rephrase, locality = draw(fine_text), draw(fine_text)
        if layout == "CounterFact":
            prompt = draw(fine_text).replace("{}", "") + " " + subject
        requests.append(EditRequest(prompt, subject, new, truth, rephrase, locality, answer if layout != "CounterFact" else truth))
    records = [_written(layout, request) for request in requests]
    return layout, records, requests


def _written(layout: str, request: EditRequest) -> dict[str, Any]:
    if layout == "editguard":
        return request.as_dict()
    if layout == "ZsRE":
        return {
            "subject": request.subject, "src": request.prompt, "alt": request.target_new, "answers": [request.ground_truth],
            "rephrase": request.rephrase, "loc": request.locality_prompt, "loc_ans": request.locality_answer,
        }  # fmt: skip
    return {
        "case_id": 1,
        "requested_rewrite": {
            "prompt": request.prompt[: -len(request.subject)] + "{}", "subject": request.subject,
            "target_new": {"str": request.target_new}, "target_true": {"str": request.ground_truth},
        },
        "paraphrase_prompts": [request.rephrase], "neighborhood_prompts": [request.locality_prompt],
    }  # fmt: skip


@settings(FUZZ, max_examples=500)
@given(content=well_formed(), container=st.sampled_from(["lines", "list"]), ascii_only=st.booleans())
def test_well_formed_requests_are_read_as_written(
    tmp_path: Path, content: tuple[str, list[dict[str, Any]], list[EditRequest]], container: str, ascii_only: bool
) -> None:
    """No false refusal: requests with odd but valid characters (U+2028, NEL, quotes, emoji) load as they were written."""
    count("requests-well-formed")
    _, records, requests = content
    path = fresh_folder(tmp_path) / "edits.json"
    if container == "list":
        path.write_text(json.dumps(records, ensure_ascii=ascii_only), encoding="utf-8")
    else:
        path.write_text("".join(json.dumps(record, ensure_ascii=ascii_only) + "\n" for record in records), encoding="utf-8")
    assert load_requests(path) == tuple(requests)
