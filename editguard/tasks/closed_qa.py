"""Closed-domain QA (BoolQ): a yes/no question about a passage.

default: the log-likelihood of " No" / " Yes" after the passage and the question.  Capitalised:
         SmolLM2 puts far more mass on " Yes"/" No" after "Answer:", and lower case left it answering
         " no" to every probe.
study:   the study's instruction prompt, one greedy token, which must be exactly yes or no.
records: BoolQ's (question, title, answer true/false, passage), or super_glue's with label 0/1;
         the study's file is JSONL.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from editguard.tasks.base import Ability, Example, Task
from editguard.tasks.common import label_scorer, labelled_example, text
from editguard.tasks.readers import read_jsonl
from editguard.tasks.schema import BOOL, STR, FieldProblem, fill, show

TEMPLATE = "{passage}\nQuestion: {question}?\nAnswer:"
CHOICES = (" No", " Yes")  # index = int(answer)
STUDY_TEMPLATE = (
    "Please answer the given question based on the passage. The answer should be exact 'yes' or 'no'. "
    "passage: {passage} question: {question}. answer:"
)


def _id(index: int, record: Mapping[str, Any]) -> str:
    return str(record.get("idx", index))


def to_example(index: int, record: Mapping[str, Any]) -> Example:
    prompt = TEMPLATE.format(passage=text(record, "passage"), question=text(record, "question").rstrip("?"))
    return labelled_example(_id(index, record), prompt, int(bool(record["answer"])), CHOICES)


def to_study_example(index: int, record: Mapping[str, Any]) -> Example:
    prompt = STUDY_TEMPLATE.format(passage=record["passage"], question=record["question"])
    return labelled_example(_id(index, record), prompt, int(bool(record["answer"])))


def normalise(record: dict[str, Any], position: int) -> dict[str, Any]:
    """``title`` defaults to empty; super_glue's boolq gives ``label`` 0/1 instead of ``answer``."""
    fill(record, "title", "")
    if "answer" not in record and "label" in record:
        record["answer"] = _boolean_label(record["label"])
    return record


def _boolean_label(label: Any) -> bool:
    if isinstance(label, str) and label.strip() in ("0", "1"):
        return label.strip() == "1"
    if isinstance(label, int) and label in (0, 1):
        return bool(label)
    raise FieldProblem("label", f"is {show(label)}", "0 or 1 (or give 'answer' as true or false)")


COMMON: dict[str, Any] = dict(name="closed_qa", dataset="BoolQ", description="yes/no questions answered from a passage", metric="accuracy", chance=0.5)
ABILITY = Ability(
    name="closed_qa",
    tasks=(
        Task(**COMMON, version=1, protocol="default", kind="choice", template=TEMPLATE, to_example=to_example),
        Task(
            **COMMON, version=1, protocol="study", kind="generate", template=STUDY_TEMPLATE, to_example=to_study_example,
            score=label_scorer({"no": 0, "yes": 1}), max_new_tokens=1,
        ),
    ),
    schema={"question": STR, "title": STR, "answer": BOOL, "passage": STR},
    normalise=normalise,
    read_study=read_jsonl,
)  # fmt: skip
