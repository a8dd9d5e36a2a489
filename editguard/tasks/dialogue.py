"""Dialogue (MuTual): which of four candidate utterances continues the conversation?

default: each option's mean log-probability per token after the conversation (options differ in
         length); recall@1 is gated, mean reciprocal rank is reported beside it.
study:   the study's multiple-choice prompt (its typo "Chioces" included), one greedy token, right
         when the gold letter occurs in it.
records: MuTual's (id, article, four options, answer letter); the study's data is a folder of
         dev_N.txt files, one JSON record each.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from editguard.tasks.base import Ability, Example, Scored, Task
from editguard.tasks.readers import Rows, read_json_files
from editguard.tasks.schema import TEXT, Field, check_strs, json_cell, show, with_id

LETTERS = "ABCD"
TEMPLATE = "{article}"
STUDY_TEMPLATE = (
    "Q: {article} Which choice is correct? Answer Chioces: (A){o0}(B){o1}(C){o2}(D){o3} "
    "A: Among A through D, the answer is"
)


def to_example(index: int, record: Mapping[str, Any]) -> Example:
    gold = LETTERS.index(record["answers"])
    options = tuple(" " + str(option).strip() for option in record["options"])
    return Example(str(record.get("id", index)), (str(record["article"]).strip(),), options, gold, stratum=record["answers"])


def to_study_example(index: int, record: Mapping[str, Any]) -> Example:
    o0, o1, o2, o3 = record["options"]
    prompt = STUDY_TEMPLATE.format(article=record["article"], o0=o0, o1=o1, o2=o2, o3=o3)
    return Example(str(record.get("id", index)), (prompt,), target=record["answers"], stratum=record["answers"])


def study_score(example: Example, outputs: Sequence[str]) -> Scored:
    from editguard.tasks.scorers import study_letter_in_output

    return Scored(study_letter_in_output(outputs[0], example.target), parsed=any(ch in outputs[0] for ch in LETTERS))


def _check_options(value: Any) -> str | None:
    problem = check_strs(value)
    return f"has {len(value)} options" if problem is None and len(value) != 4 else problem


def _check_letter(value: Any) -> str | None:
    return None if isinstance(value, str) and value in tuple(LETTERS) else f"is {show(value)}"


def read_study(folder: Path) -> Rows:
    """The study's folder of dev_N.txt files, one JSON record each, in natural order."""
    if not folder.is_dir():
        raise ValueError(f"{folder}: the study's dialogue data is a folder of dev_N.txt files; give that folder")
    return read_json_files(folder, "*.txt")


COMMON: dict[str, Any] = dict(name="dialogue", dataset="MuTual", description="choose the coherent next utterance", metric="recall@1", chance=0.25)
ABILITY = Ability(
    name="dialogue",
    tasks=(
        Task(**COMMON, version=1, protocol="default", kind="choice", template=TEMPLATE, to_example=to_example, length_normalized=True),
        Task(
            **COMMON, version=1, protocol="study", kind="generate", template=STUDY_TEMPLATE, to_example=to_study_example,
            score=study_score, max_new_tokens=1,
        ),
    ),
    schema={
        "id": TEXT,
        "article": TEXT,
        "options": Field(_check_options, "a list of exactly 4 strings", json_cell),
        "answers": Field(_check_letter, 'one of "A", "B", "C", "D"'),
    },
    normalise=with_id,
    read_study=read_study,
)  # fmt: skip
