"""Edit requests: the facts an editor is asked to rewrite, read from the files people keep them in.

An ``EditRequest`` carries what an editor needs (prompt, subject, new target) and what EasyEdit
measures edit quality with: ``rephrase`` (generalisation), ``locality_prompt``/``locality_answer``
(a neighbouring fact that must not change) and ``portability_prompt``/``portability_answer``.

The container is told from the content: a file whose first non-blank character is ``[`` is one JSON
list of records, anything else is JSON Lines (one record a line).  The layout is told from the keys of
the first record, tried in this order (the first layout with any of its marker keys wins):

- CounterFact (ROME's dataset), marker ``requested_rewrite``::

    {"case_id": 0, "requested_rewrite": {"prompt": "The mother tongue of {} is", "subject": "Danielle Darrieux",
     "target_new": {"str": "English"}, "target_true": {"str": "French"}},
     "paraphrase_prompts": [...], "neighborhood_prompts": [...]}

  prompt = ``prompt`` with ``{}`` replaced by the subject, ground truth = ``target_true.str``, rephrase =
  the first paraphrase prompt, locality = the first neighbourhood prompt answered by ``target_true.str``
  (CounterFact's neighbours are other subjects that share the true attribute).
- ZsRE as EasyEdit and MEND ship it, markers ``src``, ``alt``::

    {"subject": ..., "src": ..., "alt": ..., "answers": [...], "rephrase": ..., "loc": ..., "loc_ans": ...,
     "portability": {"New Question": ..., "New Answer": ...}}

  mapped as EasyEdit's ``ZsreDataset`` does (prompt = ``src``, ground truth = ``answers[0]``); ``pred`` and
  ``cond`` are ignored and ``portability`` is optional.
- editguard, markers ``prompt``, ``subject``, ``target_new``, one object with the ``EditRequest`` field names::

    {"prompt": "The Eiffel Tower is located in the city of", "subject": "The Eiffel Tower",
     "target_new": "Rome", "ground_truth": "Paris"}

Targets are written without a leading space in every layout: EasyEdit's ROME adds the space itself.
The subject must occur verbatim in the prompt, because ROME edits at the subject's last token (EasyEdit
asserts it mid-edit); a ZsRE question that does not name its subject is therefore refused here, before
any model is loaded.  A malformed record is one ``EditRequestError`` naming the file, the record (line
for JSON Lines, index for a JSON list, plus ``case_id`` for CounterFact) and the field.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from editguard.errors import shown
from editguard.errors import not_a_file

REQUIRED_FIELDS = ("prompt", "subject", "target_new")
OPTIONAL_FIELDS = (
    "ground_truth",
    "rephrase",
    "locality_prompt",
    "locality_answer",
    "portability_prompt",
    "portability_answer",
)
PAIRED_FIELDS = (("locality_prompt", "locality_answer"), ("portability_prompt", "portability_answer"))
DEMO_EDITS = "demo"  # the name that selects the project's own demo edit set
ZSRE_20_EDITS = "zsre-20"  # twenty counterfactual ZsRE-style edits, as many as the study applied
# sixty counterfactual edits in CounterFact's layout, 52 of whose subjects open the prompt: the positive control
COUNTERFACT_DAMAGE_EDITS = "counterfact-damage"
SHIPPED_EDITS = {DEMO_EDITS: "demo_edits.jsonl", ZSRE_20_EDITS: "zsre_20.json", COUNTERFACT_DAMAGE_EDITS: "counterfact_damage.json"}


EDITS_FILE = "an edit-requests file (editguard JSONL, ZsRE or CounterFact JSON)"


class EditRequestError(ValueError):
    """A malformed edit-requests file; the message names the file, the record and the field."""


@dataclass(frozen=True)
class EditRequest:
    prompt: str
    subject: str
    target_new: str
    ground_truth: str | None = None
    rephrase: str | None = None
    locality_prompt: str | None = None
    locality_answer: str | None = None
    portability_prompt: str | None = None
    portability_answer: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The fields that are set; a request without quality fields gives the same dict as before they existed."""
        return {key: value for key, value in asdict(self).items() if value is not None}


def shipped_edits_path(name: str) -> Path:
    return Path(str(resources.files("editguard.editing") / "data" / SHIPPED_EDITS[name]))


def load_requests(path: str | Path) -> tuple[EditRequest, ...]:
    """Read an edit-requests file in any known layout (a name in ``SHIPPED_EDITS`` picks a shipped set)."""
    return tuple(request for _, request in located_requests(path))


def located_requests(path: str | Path) -> tuple[tuple[str, EditRequest], ...]:
    """The requests of ``path`` (as ``load_requests``), each with where it is (file and line or index), for messages."""
    file = shipped_edits_path(str(path)) if str(path) in SHIPPED_EDITS else Path(path)
    what = not_a_file(file)
    if what:
        raise EditRequestError(f"edits file {str(file)!r} is {what}, not an edits file; give --editguard-edits {EDITS_FILE}")
    if not file.is_file():
        raise EditRequestError(f"edits file {str(file)!r} does not exist; check --editguard-edits")
    records = _records(file)
    if not records:
        raise EditRequestError(f"edits file {str(file)!r} holds no requests; add one JSON object per line or a JSON list")
    layout = _layout(file, *records[0])
    return tuple((where, _parse(layout, where, record)) for where, record in records)


# Containers: (where, record) pairs, where naming the file and the record for messages.


def _records(file: Path) -> list[tuple[str, Any]]:
    try:
        text = file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise EditRequestError(f"{file}: not UTF-8 text ({error.reason}); save the edits file as UTF-8") from None
    reader = _json_list if text.lstrip().startswith("[") else _json_lines
    return reader(file, text)


def _json_list(file: Path, text: str) -> list[tuple[str, Any]]:
    try:
        records = json.loads(text)
    except (ValueError, RecursionError) as error:
        at = f" at line {error.lineno}, column {error.colno}" if isinstance(error, json.JSONDecodeError) else ""
        raise EditRequestError(
            f"{file}: not valid JSON ({_json_problem(error)}{at}); "
            "a file that starts with '[' must be one JSON list of edit requests"
        ) from None
    return [(f"{file}, record [{index}]", record) for index, record in enumerate(records)]


def _json_lines(file: Path, text: str) -> list[tuple[str, Any]]:
    _check_not_one_object(file, text)
    return [
        (f"{file}, line {number}", _json_line(f"{file}, line {number}", line))
        for number, line in enumerate(_lines(text), start=1)
        if line.strip()
    ]


def _lines(text: str) -> list[str]:
    # Split at "\n" only: str.splitlines would also split at U+2028 or U+0085 inside a JSON string.
    return text.split("\n")


def _check_not_one_object(file: Path, text: str) -> None:
    """A file that is one JSON object spread over lines is valid JSON of the wrong shape: say so, not "line 1"."""
    lines = [line for line in _lines(text) if line.strip()]
    if len(lines) < 2 or _parses(lines[0]) or not _parses(text):
        return
    raise EditRequestError(
        f"{file}: the file is one JSON object spread over several lines, not one edit request per line; write each "
        "request as a JSON object on its own line (JSON Lines), or put them in a JSON list [{...}, {...}]"
    )


def _parses(text: str) -> bool:
    try:
        json.loads(text)
    except (ValueError, RecursionError):
        return False
    return True


def _json_line(where: str, line: str) -> Any:
    try:
        return json.loads(line)
    except (ValueError, RecursionError) as error:
        raise EditRequestError(f"{where}: not valid JSON ({_json_problem(error)}); write one JSON object per line") from None


def _json_problem(error: ValueError | RecursionError) -> str:
    """Why ``json.loads`` refused a text: a syntax error, a number of more digits than Python reads, or too deep nesting."""
    if isinstance(error, json.JSONDecodeError):
        return error.msg
    return "nested too deeply" if isinstance(error, RecursionError) else str(error).partition(";")[0]


# Field readers, each naming the field (a dotted path into nested objects) when it is wrong.


def _text(record: dict[str, Any], path: str, where: str) -> str:
    value: Any = record
    for key in path.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    if not isinstance(value, str) or not value.strip():
        raise EditRequestError(f"{where}: field {path!r} is missing or not a non-empty string; give it the text")
    return value


def _optional_text(record: dict[str, Any], field: str, where: str) -> str | None:
    if field in record and not isinstance(record[field], str):
        raise EditRequestError(f"{where}: field {field!r} must be a string; quote it or leave the field out")
    if field in record and not record[field].strip():
        raise EditRequestError(f"{where}: field {field!r} is empty; give it the text or leave the field out")
    return record.get(field)


def _first_text(record: dict[str, Any], field: str, where: str) -> str:
    values = record.get(field)
    if not isinstance(values, list) or not values or not all(isinstance(value, str) for value in values):
        raise EditRequestError(f"{where}: field {field!r} must be a non-empty list of strings; the first one is used")
    if not values[0].strip():
        raise EditRequestError(f"{where}: field {field!r} starts with an empty string; put the text first")
    return values[0]


def _check_subject_in_prompt(request: EditRequest, where: str, subject_field: str, prompt_field: str) -> EditRequest:
    if request.subject not in request.prompt and _nfc(request.subject) in _nfc(request.prompt):
        raise EditRequestError(
            f"{where}: field {subject_field!r} ({shown(request.subject)}) occurs in {prompt_field!r} only in another Unicode "
            "normal form (an accent precomposed in one, decomposed in the other); write both in the same normal form (NFC)"
        )
    if request.subject not in request.prompt:
        raise EditRequestError(
            f"{where}: field {subject_field!r} ({shown(request.subject)}) does not occur in {prompt_field!r}; "
            "ROME edits at the subject's last token, so write the subject verbatim in the prompt"
        )
    return request


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


# Layouts: one parser each, picked from LAYOUTS by the first record's keys.


def _from_editguard(record: dict[str, Any], where: str) -> EditRequest:
    values: dict[str, Any] = {field: _text(record, field, where) for field in REQUIRED_FIELDS}
    values.update({field: _optional_text(record, field, where) for field in OPTIONAL_FIELDS})
    unknown = sorted(set(record) - set(REQUIRED_FIELDS) - set(OPTIONAL_FIELDS))
    if unknown:
        allowed = ", ".join(REQUIRED_FIELDS + OPTIONAL_FIELDS)
        raise EditRequestError(f"{where}: unknown field {shown(unknown[0])}; allowed: {allowed}")
    for question, answer in PAIRED_FIELDS:
        if (values[question] is None) != (values[answer] is None):
            given, missing = (question, answer) if values[answer] is None else (answer, question)
            raise EditRequestError(f"{where}: field {missing!r} is missing; {given!r} needs it, add it or drop {given!r}")
    return _check_subject_in_prompt(EditRequest(**values), where, "subject", "prompt")


def _from_zsre(record: dict[str, Any], where: str) -> EditRequest:
    question, answer = _zsre_portability(record, where)
    request = EditRequest(
        prompt=_text(record, "src", where),
        subject=_text(record, "subject", where),
        target_new=_text(record, "alt", where),
        ground_truth=_first_text(record, "answers", where),
        rephrase=_text(record, "rephrase", where),
        locality_prompt=_text(record, "loc", where),
        locality_answer=_text(record, "loc_ans", where),
        portability_prompt=question,
        portability_answer=answer,
    )
    return _check_subject_in_prompt(request, where, "subject", "src")


def _zsre_portability(record: dict[str, Any], where: str) -> tuple[str | None, str | None]:
    if "portability" not in record:
        return None, None
    if not isinstance(record["portability"], dict):
        raise EditRequestError(f"{where}: field 'portability' must be an object with 'New Question' and 'New Answer'")
    return _text(record, "portability.New Question", where), _text(record, "portability.New Answer", where)


def _from_counterfact(record: dict[str, Any], where: str) -> EditRequest:
    if isinstance(record.get("case_id"), (int, str)) and not isinstance(record["case_id"], bool):
        where = f"{where} (case_id {record['case_id']})"
    template = _text(record, "requested_rewrite.prompt", where)
    if "{}" not in template:
        raise EditRequestError(
            f"{where}: field 'requested_rewrite.prompt' ({shown(template)}) has no '{{}}' where the subject goes; "
            "write it as CounterFact does, e.g. 'The mother tongue of {} is'"
        )
    subject = _text(record, "requested_rewrite.subject", where)
    true_answer = _text(record, "requested_rewrite.target_true.str", where)
    return EditRequest(
        prompt=template.replace("{}", subject),
        subject=subject,
        target_new=_text(record, "requested_rewrite.target_new.str", where),
        ground_truth=true_answer,
        rephrase=_first_text(record, "paraphrase_prompts", where),
        locality_prompt=_first_text(record, "neighborhood_prompts", where),
        locality_answer=true_answer,  # neighbours share the subject's true attribute
    )


@dataclass(frozen=True)
class Layout:
    name: str
    markers: tuple[str, ...]  # keys of the first record that identify the layout
    parse: Callable[[dict[str, Any], str], EditRequest]


LAYOUTS = (
    Layout("CounterFact", ("requested_rewrite",), _from_counterfact),
    Layout("ZsRE", ("src", "alt"), _from_zsre),
    Layout("editguard", REQUIRED_FIELDS, _from_editguard),
)


def _layout(file: Path, where: str, record: Any) -> Layout:
    _check_object(where, record)
    for layout in LAYOUTS:
        if any(key in record for key in layout.markers):
            return layout
    expected = "; ".join(f"{layout.name}: {', '.join(layout.markers)}" for layout in LAYOUTS)
    keys = shown(", ".join(sorted(record)))[1:-1] or "none"
    raise EditRequestError(
        f"{file}: the first record's keys ({keys}) match no known edit-request layout ({expected}); "
        "rename the fields to one of these layouts"
    )


def _parse(layout: Layout, where: str, record: Any) -> EditRequest:
    _check_object(where, record)
    return layout.parse(record, where)


def _check_object(where: str, record: Any) -> None:
    if not isinstance(record, dict):
        raise EditRequestError(f"{where}: expected a JSON object holding one edit request, got {type(record).__name__}")


# Lengths: a request longer than the model's context cannot be edited or measured; refused per record.

# (prompt field, answer field): each pair is read by the model as one text, "prompt answer"
READ_TOGETHER = (
    ("prompt", "target_new"),
    ("prompt", "ground_truth"),
    ("rephrase", "target_new"),
    ("locality_prompt", "locality_answer"),
    ("portability_prompt", "portability_answer"),
)
CHARACTERS_PER_TOKEN_BOUND = 16  # a text this many times the context in characters is tokenised only in part


def context_problem(request: EditRequest, tokenizer: Any, limit: int) -> str | None:
    """Why ``request`` does not fit a context of ``limit`` tokens (the fields, their length, the limit), or None."""
    for prompt_field, answer_field in READ_TOGETHER:
        prompt, answer = getattr(request, prompt_field), getattr(request, answer_field)
        if prompt is None or answer is None:
            continue
        text = f"{prompt} {answer}"
        tokens, exact = _token_count(tokenizer, text, limit)
        if tokens > limit:
            length = f"{tokens:,} tokens" if exact else f"more than {limit:,} tokens"
            return (
                f"fields {prompt_field!r} and {answer_field!r} together are {length} long ({len(text):,} characters), "
                f"more than the model's context of {limit:,} tokens; shorten them"
            )
    return None


def _token_count(tokenizer: Any, text: str, limit: int) -> tuple[int, bool]:
    """Tokens of ``text``, and whether the count is exact: a huge text is tokenised only as far as it must be."""
    head = text[: CHARACTERS_PER_TOKEN_BOUND * limit]
    count = len(tokenizer(head, verbose=False)["input_ids"])
    if count > limit and len(head) < len(text):
        return count, False
    if len(head) < len(text):
        count = len(tokenizer(text, verbose=False)["input_ids"])
    return count, True
