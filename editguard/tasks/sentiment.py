"""Sentiment (SST-2): is a short review positive or negative?  Scored by the answer word's likelihood."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from editguard.tasks.registry import Example, Task, register

TEMPLATE = "Review: {sentence}\nSentiment:"
CHOICES = (" negative", " positive")  # index = SST-2 label


def to_example(index: int, record: Mapping[str, Any]) -> Example:
    return Example(
        id=str(record.get("idx", index)),
        prompt=TEMPLATE.format(sentence=record["sentence"].strip()),
        choices=CHOICES,
        gold=int(record["label"]),
    )


TASK = register(
    Task(
        name="sentiment",
        version=1,
        dataset="SST-2",
        description="binary sentiment of a short review",
        metric="accuracy",
        template=TEMPLATE,
        choices=CHOICES,
        to_example=to_example,
        probe_file="sentiment.jsonl",
    )
)
