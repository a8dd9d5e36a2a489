"""Closed-domain QA (BoolQ): a yes/no question about a passage.

default: the channel form (Min et al. 2022, "Noisy Channel Language Model Prompting"): the passage's
         log-likelihood after 'The answer to the question "{question}?" is no, as this text explains:' and
         after the same with "yes"; the answer under which the passage is more likely wins.  It measures
         whether the model reads the passage as evidence for one answer rather than the other.  Asked directly
         (the likelihood of " Yes" / " No" after passage and question), SmolLM2-135M answers from the
         question's wording, not the passage: 0.500 on the probe set, a near-constant "No"; the channel form
         gives 0.650 there (version 1 was the direct form).
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
from editguard.tasks.schema import BOOL, STR, TEXT, FieldProblem, fill, show

CONTEXT = 'The answer to the question "{question}?" is {answer}, as this text explains:\n'
TEMPLATE = CONTEXT + "{passage}"  # the passage scored after each answer's context
ANSWERS = ("no", "yes")  # index = int(answer)
STUDY_TEMPLATE = (
    "Please answer the given question based on the passage. The answer should be exact 'yes' or 'no'. "
    "passage: {passage} question: {question}. answer:"
)


def _id(index: int, record: Mapping[str, Any]) -> str:
    return str(record.get("idx", index))


def to_example(index: int, record: Mapping[str, Any]) -> Example:
    question = text(record, "question").rstrip("?")
    contexts = tuple(CONTEXT.format(question=question, answer=answer) for answer in ANSWERS)
    label = int(bool(record["answer"]))
    return Example(_id(index, record), contexts, (text(record, "passage"),), label, stratum=str(label))


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
        Task(**COMMON, version=2, protocol="default", kind="choice", template=TEMPLATE, to_example=to_example),
        Task(
            **COMMON, version=1, protocol="study", kind="generate", template=STUDY_TEMPLATE, to_example=to_study_example,
            score=label_scorer({"no": 0, "yes": 1}), max_new_tokens=1,
        ),
    ),
    schema={"question": TEXT, "title": STR, "answer": BOOL, "passage": TEXT},
    normalise=normalise,
    read_study=read_jsonl,
)  # fmt: skip
