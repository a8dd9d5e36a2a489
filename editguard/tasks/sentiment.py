"""Sentiment (SST-2): is a short review positive or negative?

default: the log-likelihood of " negative" / " positive" after ``Review: ...\\nSentiment:``.
study:   the study's instruction prompt, one greedy token, the label word parsed from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from editguard.tasks.common import label_scorer, labelled_example, text
from editguard.tasks.registry import Example, Task, register

TEMPLATE = "Review: {sentence}\nSentiment:"
CHOICES = (" negative", " positive")  # index = SST-2 label
STUDY_TEMPLATE = (
    "For each snippet of text,label the sentiment of the text as positive or negative."
    "The answer should be exact 'positive' or 'negative'. text: {sentence} answer:"
)


def to_example(index: int, record: Mapping[str, Any]) -> Example:
    prompt = TEMPLATE.format(sentence=text(record, "sentence"))
    return labelled_example(str(record.get("idx", index)), prompt, int(record["label"]), CHOICES)


def to_study_example(index: int, record: Mapping[str, Any]) -> Example:
    prompt = STUDY_TEMPLATE.format(sentence=record["sentence"])
    return labelled_example(str(record.get("idx", index)), prompt, int(record["label"]))


COMMON: dict[str, Any] = dict(name="sentiment", dataset="SST-2", description="binary sentiment of a short review", metric="accuracy", chance=0.5)
register(
    Task(**COMMON, version=1, protocol="default", kind="choice", template=TEMPLATE, to_example=to_example),
    Task(
        **COMMON, version=1, protocol="study", kind="generate", template=STUDY_TEMPLATE, to_example=to_study_example,
        score=label_scorer({"negative": 0, "positive": 1}), max_new_tokens=1,
    ),
)  # fmt: skip
