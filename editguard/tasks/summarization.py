"""Summarization (SAMSum): a one-sentence summary of a chat.

default: the chat in the model's chat template with an instruction to summarise it in one sentence;
         greedy up to 48 tokens, cut at the first blank line; the outcome per example is the mean of
         ROUGE-1/2/L F (rouge-score, with stemming) against the reference summary.
study:   the study's ``{dialogue}\\nTL;DR:`` prompt, 25 greedy tokens, the same ROUGE mean.
records: SAMSum's (id, dialogue, summary); the study's file is one JSON list.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from editguard.tasks.base import Ability, Example, Scored, Task
from editguard.tasks.common import text
from editguard.tasks.readers import read_json
from editguard.tasks.schema import TEXT, with_id

TEMPLATE = "Summarize this chat in one sentence.\n\n{dialogue}"
STUDY_TEMPLATE = "{dialogue}\nTL;DR:"


def to_example(index: int, record: Mapping[str, Any]) -> Example:
    prompt = TEMPLATE.format(dialogue=text(record, "dialogue"))
    return Example(str(record.get("id", index)), (prompt,), target=text(record, "summary"))


def to_study_example(index: int, record: Mapping[str, Any]) -> Example:
    prompt = STUDY_TEMPLATE.format(dialogue=record["dialogue"])
    return Example(str(record.get("id", index)), (prompt,), target=text(record, "summary"))


def score(example: Example, outputs: Sequence[str]) -> Scored:
    from editguard.tasks.scorers import rouge_mean

    summary = outputs[0].strip()
    return Scored(rouge_mean(summary, example.target) if summary else 0.0, parsed=bool(summary))


COMMON: dict[str, Any] = dict(name="summarization", dataset="SAMSum", description="one-sentence summaries of chats", metric="rouge", chance=0.0)
ABILITY = Ability(
    name="summarization",
    tasks=(
        Task(
            **COMMON, version=1, protocol="default", kind="generate", template=TEMPLATE, to_example=to_example,
            score=score, chat=True, max_new_tokens=48, stop=("\n\n",),
        ),
        Task(
            **COMMON, version=1, protocol="study", kind="generate", template=STUDY_TEMPLATE, to_example=to_study_example,
            score=score, max_new_tokens=25,
        ),
    ),
    schema={"id": TEXT, "dialogue": TEXT, "summary": TEXT},
    normalise=with_id,
    read_study=read_json,
)  # fmt: skip
