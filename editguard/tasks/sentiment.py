"""Sentiment (SST-2): is a short review positive or negative?

default: the log-likelihood of " negative" / " positive" after ``Review: ...\\nSentiment:``.
study:   the study's instruction prompt, one greedy token, the label word parsed from it.
records: SST-2's (idx, sentence, label 0/1); the study's file is a TSV of sentence and label.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from editguard.tasks.base import Ability, Example, Task
from editguard.tasks.common import label_scorer, labelled_example, text
from editguard.tasks.readers import read_tsv
from editguard.tasks.schema import INT, LABEL, TEXT, fill, name_label

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


def normalise(record: dict[str, Any], position: int) -> dict[str, Any]:
    """``idx`` defaults to the position; a label may be given as text."""
    fill(record, "idx", position)
    name_label(record, {"0": 0, "1": 1})
    return record


COMMON: dict[str, Any] = dict(name="sentiment", dataset="SST-2", description="binary sentiment of a short review", metric="accuracy", chance=0.5)
ABILITY = Ability(
    name="sentiment",
    tasks=(
        Task(**COMMON, version=1, protocol="default", kind="choice", template=TEMPLATE, to_example=to_example),
        Task(
            **COMMON, version=1, protocol="study", kind="generate", template=STUDY_TEMPLATE, to_example=to_study_example,
            score=label_scorer({"negative": 0, "positive": 1}), max_new_tokens=1,
        ),
    ),
    schema={"idx": INT, "sentence": TEXT, "label": LABEL},
    normalise=normalise,
    read_study=read_tsv,  # header: sentence label
)  # fmt: skip
