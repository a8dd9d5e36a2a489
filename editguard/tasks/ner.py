"""Named-entity recognition (CoNLL-2003): people, organisations, locations and other names.

default: one prompt per entity type, two fixed demonstrations then the sentence, asking for a
         comma-separated list (greedy up to 24 tokens, cut at the newline); the listed strings are mapped back onto the sentence's tokens as IOB2
         tags and compared with the gold tags at entity level (seqeval's definition).  Per example the
         outcome is (true positives, predicted entities, gold entities); the score is micro F1 over the
         sample.
study:   the study's prompt per type, 10 greedy tokens, and its scorer: the fraction of gold entity
         strings found as substrings of the output (recall, though the study called it F1), averaged
         over the four types (its flaw 2, reproduced only under this protocol).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from editguard.tasks.registry import Example, Scored, Task, register
from editguard.tasks.sources import NER_TAGS

TYPES = ("PER", "ORG", "LOC", "MISC")
LABELS = {"PER": "People", "ORG": "Organizations", "LOC": "Locations", "MISC": "Other names"}
DEMO = "Maria Lopez flew from Madrid to Berlin to meet Siemens engineers at the German trade fair."
DEMO_ANSWERS = {"PER": "Maria Lopez", "ORG": "Siemens", "LOC": "Madrid, Berlin", "MISC": "German"}
EMPTY_DEMO = "The weather was cold on Monday morning."
TEMPLATE = (
    "Text: " + DEMO + "\n{label}: {demo_answer}\n\n"
    "Text: " + EMPTY_DEMO + "\n{label}: none\n\n"
    "Text: {sentence}\n{label}:"
)
STUDY_TYPES = {"PER": "Person", "LOC": "Location", "ORG": "Organization", "MISC": "Miscellaneous"}
STUDY_TEMPLATE = "Please identify {entity_type} Entity from the given text. Text: {sentence} Entity:"


def _tags(record: Mapping[str, Any]) -> list[str]:
    return [NER_TAGS[int(tag)] for tag in record["ner_tags"]]


def to_example(index: int, record: Mapping[str, Any]) -> Example:
    sentence = " ".join(record["tokens"])
    prompts = tuple(
        TEMPLATE.format(label=LABELS[kind], demo_answer=DEMO_ANSWERS[kind], sentence=sentence) for kind in TYPES
    )
    target = {"tokens": list(record["tokens"]), "tags": _tags(record)}
    return Example(str(record.get("id", index)), prompts, target=target)


def score(example: Example, outputs: Sequence[str]) -> Scored:
    from editguard.scorers import entity_counts, parse_entity_list, tags_from_entities

    mentions = [(mention, kind) for kind, output in zip(TYPES, outputs) for mention in parse_entity_list(output)]
    predicted = tags_from_entities(example.target["tokens"], mentions)
    return Scored([float(count) for count in entity_counts(example.target["tags"], predicted)], parsed=True)


def _gold_entities(record: Mapping[str, Any]) -> dict[str, list[str]]:
    from seqeval.metrics.sequence_labeling import get_entities

    tokens = list(record["tokens"])
    found: dict[str, list[str]] = {kind: [] for kind in TYPES}
    for kind, start, end in get_entities(_tags(record)):
        found[kind].append(" ".join(tokens[start : end + 1]))
    return found


def to_study_example(index: int, record: Mapping[str, Any]) -> Example:
    sentence = " ".join(record["tokens"])
    prompts = tuple(STUDY_TEMPLATE.format(entity_type=STUDY_TYPES[kind], sentence=sentence) for kind in TYPES)
    return Example(str(record.get("id", index)), prompts, target=_gold_entities(record))


def study_score(example: Example, outputs: Sequence[str]) -> Scored:
    """Per type: (gold strings found in the output, gold strings), flattened in TYPES order."""
    counts: list[float] = []
    for kind, output in zip(TYPES, outputs):
        golds = example.target[kind]
        counts += [float(sum(gold in output for gold in golds)), float(len(golds))]
    return Scored(counts, parsed=True)


COMMON: dict[str, Any] = dict(name="ner", dataset="CoNLL-2003", description="named entities of four types", chance=0.0)
register(
    Task(
        **COMMON, version=1, protocol="default", kind="generate", metric="entity_f1", template=TEMPLATE,
        to_example=to_example, score=score, max_new_tokens=24, stop=("\n",),
    ),
    Task(
        **COMMON, version=1, protocol="study", kind="generate", metric="study_entity_recall", template=STUDY_TEMPLATE,
        to_example=to_study_example, score=study_score, max_new_tokens=10,
    ),
)  # fmt: skip
