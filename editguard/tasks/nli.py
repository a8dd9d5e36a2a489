"""Natural-language inference (RTE): does the premise entail the hypothesis?

default: two fixed demonstrations, then the premise and the hypothesis as a yes/no question; the
         log-likelihood of " Yes" / " No".  (Zero-shot with True/False, SmolLM2-135M scored 0.46 on 80
         probes; this prompt 0.63.)
study:   the study's prompt, one greedy token parsed as true or false.
records: GLUE RTE's (idx, sentence1, sentence2, label 0/1, or its name); the study's file is a TSV
         whose ``index`` column is the idx.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from editguard.tasks.base import Ability, Example, Task
from editguard.tasks.common import label_scorer, labelled_example, text
from editguard.tasks.readers import Rows, read_tsv, renamed
from editguard.tasks.schema import INT, LABEL, TEXT, fill, name_label

DEMONSTRATIONS = (
    "The museum opened in 1990 and has welcomed over two million visitors.\n"
    "Question: The museum has had visitors. Yes or No?\nAnswer: Yes\n\n"
    "Anna sold her bicycle last week because she moved to a city with good trains.\n"
    "Question: Anna bought a new bicycle last week. Yes or No?\nAnswer: No\n\n"
)
TEMPLATE = DEMONSTRATIONS + "{sentence1}\nQuestion: {sentence2} Yes or No?\nAnswer:"
CHOICES = (" Yes", " No")  # index = RTE label: 0 entailment, 1 not_entailment
STUDY_TEMPLATE = "{sentence1} entails the {sentence2}. True or False? answer:"


def to_example(index: int, record: Mapping[str, Any]) -> Example:
    prompt = TEMPLATE.format(sentence1=text(record, "sentence1"), sentence2=text(record, "sentence2"))
    return labelled_example(str(record.get("idx", index)), prompt, int(record["label"]), CHOICES)


def to_study_example(index: int, record: Mapping[str, Any]) -> Example:
    prompt = STUDY_TEMPLATE.format(sentence1=record["sentence1"], sentence2=record["sentence2"])
    return labelled_example(str(record.get("idx", index)), prompt, int(record["label"]))


LABEL_NAMES = {"entailment": 0, "not_entailment": 1, "0": 0, "1": 1}  # GLUE RTE's label ids


def normalise(record: dict[str, Any], position: int) -> dict[str, Any]:
    """``idx`` defaults to the position; a label may be given by its GLUE name."""
    fill(record, "idx", position)
    name_label(record, LABEL_NAMES)
    return record


def read_study(path: Path) -> Rows:
    """The study's TSV: header index sentence1 sentence2 label (label as text)."""
    return renamed(read_tsv(path), {"index": "idx"})


COMMON: dict[str, Any] = dict(name="nli", dataset="RTE", description="does a premise entail a hypothesis", metric="accuracy", chance=0.5)
ABILITY = Ability(
    name="nli",
    tasks=(
        Task(**COMMON, version=1, protocol="default", kind="choice", template=TEMPLATE, to_example=to_example),
        Task(
            **COMMON, version=1, protocol="study", kind="generate", template=STUDY_TEMPLATE, to_example=to_study_example,
            score=label_scorer({"true": 0, "false": 1}), max_new_tokens=1,
        ),
    ),
    schema={"idx": INT, "sentence1": TEXT, "sentence2": TEXT, "label": LABEL},
    normalise=normalise,
    read_study=read_study,
)  # fmt: skip
