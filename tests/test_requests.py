from __future__ import annotations

from pathlib import Path

import pytest

from editguard.editing.requests import EditRequestError, load_requests


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
    ],
)
def test_a_malformed_request_names_file_line_and_field(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "edits.jsonl"
    good = '{"prompt": "Paris is the capital of", "subject": "Paris", "target_new": "Italy"}'
    path.write_text(good + "\n" + line + "\n", encoding="utf-8")
    with pytest.raises(EditRequestError, match=message) as caught:
        load_requests(path)
    assert str(path) in str(caught.value)


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(EditRequestError, match="does not exist"):
        load_requests(tmp_path / "nope.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n", encoding="utf-8")
    with pytest.raises(EditRequestError, match="holds no requests"):
        load_requests(tmp_path / "empty.jsonl")
