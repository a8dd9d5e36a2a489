"""Closed-domain QA (BoolQ): a yes/no question about a passage.  Scored by the answer word's likelihood."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from editguard.tasks.registry import Example, Task, register

TEMPLATE = "{passage}\nQuestion: {question}?\nAnswer:"
# Capitalised: SmolLM2 puts far more mass on " Yes"/" No" after "Answer:", and lower case left it
# answering " no" to every probe.
CHOICES = (" No", " Yes")  # index = int(answer)


def to_example(index: int, record: Mapping[str, Any]) -> Example:
    return Example(
        id=str(record.get("idx", index)),
        prompt=TEMPLATE.format(passage=record["passage"].strip(), question=record["question"].strip().rstrip("?")),
        choices=CHOICES,
        gold=int(bool(record["answer"])),
    )


TASK = register(
    Task(
        name="closed_qa",
        version=1,
        dataset="BoolQ",
        description="yes/no questions answered from a passage",
        metric="accuracy",
        template=TEMPLATE,
        choices=CHOICES,
        to_example=to_example,
        probe_file="closed_qa.jsonl",
    )
)
