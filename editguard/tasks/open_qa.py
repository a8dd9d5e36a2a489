"""Open-domain QA (NQ-open, with one supporting passage as the study used): a short answer span.

default: two fixed demonstrations (written by the project) then the passage and question as plain
         text; greedy up to 16 tokens, cut at the first newline; exact match with SQuAD normalisation
         of the generated answer alone against any gold answer.  (SmolLM2-135M-Instruct answered in
         full sentences through its chat template, EM 0.03 on 40 probes; with plain demonstrations it
         answers with the span, EM 0.70.)
study:   the study's prompt, 20 greedy tokens, and its matcher: a normalised gold answer found anywhere
         in prompt + passage + output, with a flag that is never reset, so every example after the
         first hit counts as right (its flaw 3, reproduced on purpose and only under this protocol).
records: NQ-open's (question, answer list) with an optional passage; the study's JSONL gives the
         passage as the first of its retrieved passages (``output``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from editguard.tasks.base import Ability, Example, Scored, Task
from editguard.tasks.common import text
from editguard.tasks.readers import Rows, read_jsonl
from editguard.tasks.schema import ANSWERS, STR, TEXT, DataSchemaError, fill, show

DEMONSTRATIONS = (
    "Passage: The Danube flows through ten countries and empties into the Black Sea.\n"
    "Question: which sea does the danube empty into?\nAnswer: the Black Sea\n\n"
    "Passage: The novel was written by Mary Shelley and first published in 1818.\n"
    "Question: who wrote the novel?\nAnswer: Mary Shelley\n\n"
)
TEMPLATE = DEMONSTRATIONS + "Passage: {passage}\nQuestion: {question}?\nAnswer:"
CLOSED_BOOK_TEMPLATE = DEMONSTRATIONS + "Question: {question}?\nAnswer:"
STUDY_TEMPLATE = "Refer to the passage below and answer the following question. Passage: {passage} Question: {question}"


def _golds(record: Mapping[str, Any]) -> list[str]:
    answers = record["answer"]
    return [str(answer) for answer in (answers if isinstance(answers, list) else [answers])]


def to_example(index: int, record: Mapping[str, Any]) -> Example:
    question = text(record, "question").rstrip("?")
    passage = str(record.get("passage") or "").strip()
    prompt = TEMPLATE.format(passage=passage, question=question) if passage else CLOSED_BOOK_TEMPLATE.format(question=question)
    return Example(str(record.get("id", index)), (prompt,), target=_golds(record))


def to_study_example(index: int, record: Mapping[str, Any]) -> Example:
    prompt = STUDY_TEMPLATE.format(passage=record.get("passage", ""), question=record["question"])
    return Example(str(record.get("id", index)), (prompt,), target=_golds(record))


def score(example: Example, outputs: Sequence[str]) -> Scored:
    from editguard.tasks.scorers import exact_match

    answer = outputs[0].strip()
    return Scored(exact_match(answer, example.target), parsed=bool(answer))


class _StudyMatcher:
    """The study's scorer: it scans prompt and output together, and its hit flag is never reset."""

    def __init__(self) -> None:
        self.flag = False

    def __call__(self, example: Example, outputs: Sequence[str]) -> Scored:
        from editguard.tasks.scorers import study_span_match

        if study_span_match(example.prompt + " " + outputs[0], example.target):
            self.flag = True
        return Scored(1.0 if self.flag else 0.0, parsed=bool(outputs[0].strip()))


def study_score_sample(examples: Sequence[Example], outputs: Sequence[Sequence[str]]) -> list[Scored]:
    """One matcher for the whole sample, in order, as the study ran it."""
    matcher = _StudyMatcher()
    return [matcher(example, output) for example, output in zip(examples, outputs)]


def normalise(record: dict[str, Any], position: int) -> dict[str, Any]:
    fill(record, "passage", "")  # nq_open has no passage: the question is asked closed-book
    return record


def read_study(path: Path) -> Rows:
    """The study's JSONL: the passage is the first of the retrieved passages in ``output``."""
    rows = read_jsonl(path)
    return Rows(rows.where, [_study_passage(rows.where, number, row) for number, row in enumerate(rows.rows, 1)])


def _study_passage(where: str, number: int, row: dict[str, Any]) -> dict[str, Any]:
    output = row.get("output")
    if not (isinstance(output, list) and output and isinstance(output[0], str)):
        problem = f"is {show(output)}" if "output" in row else "is missing"
        fix = "give the retrieved passages as a non-empty list of strings"
        raise DataSchemaError(where, number, "output", problem, fix)
    # The study's retrieved passages start with blank lines ("\n\n"), left over from the generator that wrote them.
    return {key: value for key, value in row.items() if key != "output"} | {"passage": output[0].strip()}


COMMON: dict[str, Any] = dict(name="open_qa", dataset="NQ-open", description="short answers to factual questions, with a passage", metric="exact_match", chance=0.0)
ABILITY = Ability(
    name="open_qa",
    tasks=(
        Task(
            **COMMON, version=1, protocol="default", kind="generate", template=TEMPLATE, to_example=to_example,
            score=score, max_new_tokens=16, stop=("\n",),
        ),
        Task(
            **COMMON, version=1, protocol="study", kind="generate", template=STUDY_TEMPLATE, to_example=to_study_example,
            score_sample=study_score_sample, max_new_tokens=20,
        ),
    ),
    schema={"question": TEXT, "answer": ANSWERS, "passage": STR},
    normalise=normalise,
    read_study=read_study,
)  # fmt: skip
