"""Reasoning (GSM8K): grade-school arithmetic word problems.

default: two fixed worked demonstrations (written by the project, not from the data) then the
         question alone, no rationale; greedy up to 96 tokens, cut at the first blank line; the final
         number is extracted from the generated answer (``#### N``, else "the answer is N", else the
         last number) and compared with the gold number.  An output with no number is wrong and counted
         as unparseable.
study:   the study's prompt, which embeds the gold rationale as a "hint" (its flaw 1, so it measures
         copying, not reasoning), 5 greedy tokens, right when the gold number is a substring of them.
records: GSM8K's (question, answer rationale ending in ``#### N``); the study's file is JSONL.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from editguard.tasks.base import Ability, Example, Scored, Task
from editguard.tasks.common import text
from editguard.tasks.readers import read_jsonl
from editguard.tasks.schema import TEXT, Field, show

DEMONSTRATIONS = (
    "Question: Sam has 4 boxes with 6 pencils in each box. He gives away 5 pencils. How many pencils does he have left?\n"
    "Answer: Sam has 4 * 6 = 24 pencils. After giving away 5 he has 24 - 5 = 19 pencils.\n#### 19\n\n"
    "Question: A bus ticket costs 3 dollars. How much do 7 tickets cost?\n"
    "Answer: 7 tickets cost 7 * 3 = 21 dollars.\n#### 21\n\n"
)
TEMPLATE = DEMONSTRATIONS + "Question: {question}\nAnswer:"
STUDY_TEMPLATE = "Q: {question} A:Let's think step by step. {hint} Therefore, the answer (arabic numerals) is:"


def _gold(record: Mapping[str, Any]) -> str:
    from editguard.tasks.scorers import gsm8k_gold_number

    return gsm8k_gold_number(str(record["answer"]))


def to_example(index: int, record: Mapping[str, Any]) -> Example:
    prompt = TEMPLATE.format(question=text(record, "question"))
    return Example(str(record.get("id", index)), (prompt,), target=_gold(record))


def to_study_example(index: int, record: Mapping[str, Any]) -> Example:
    hint = str(record["answer"]).split("####")[0].strip()
    prompt = STUDY_TEMPLATE.format(question=record["question"], hint=hint)
    return Example(str(record.get("id", index)), (prompt,), target=_gold(record))


def score(example: Example, outputs: Sequence[str]) -> Scored:
    from editguard.tasks.scorers import final_number

    answer = final_number(outputs[0])
    return Scored(1.0 if answer == example.target else 0.0, parsed=answer is not None)


def study_score(example: Example, outputs: Sequence[str]) -> Scored:
    from editguard.tasks.scorers import study_number_in_output

    return Scored(study_number_in_output(outputs[0], example.target), parsed=any(ch.isdigit() for ch in outputs[0]))


# GSM8K's answer is a rationale whose last line is '#### <number>'; scoring reads that number.
_FINAL_ANSWER = re.compile(r"####\s*-?[\d,.]*\d\s*$")


def _check_rationale(value: Any) -> str | None:
    if not isinstance(value, str):
        return f"is {show(value)}"
    return None if _FINAL_ANSWER.search(value) else "does not end in '#### <number>'"


RATIONALE = Field(_check_rationale, "a string ending in '#### <number>'")

COMMON: dict[str, Any] = dict(name="reasoning", dataset="GSM8K", description="arithmetic word problems", metric="accuracy", chance=0.0)
ABILITY = Ability(
    name="reasoning",
    tasks=(
        Task(
            **COMMON, version=1, protocol="default", kind="generate", template=TEMPLATE, to_example=to_example,
            score=score, max_new_tokens=96, stop=("\n\n", "Question:"),
        ),
        Task(
            **COMMON, version=1, protocol="study", kind="generate", template=STUDY_TEMPLATE, to_example=to_study_example,
            score=study_score, max_new_tokens=5,
        ),
    ),
    schema={"question": TEXT, "answer": RATIONALE},
    read_study=read_jsonl,
)  # fmt: skip
