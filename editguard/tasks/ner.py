"""Named-entity recognition (CoNLL-2003): people, organisations, locations and other names.

default: one prompt per entity type, two fixed demonstrations then the sentence, asking for a
         comma-separated list (greedy up to 24 tokens, cut at the newline); the listed strings are mapped back onto the sentence's tokens as IOB2
         tags and compared with the gold tags at entity level (seqeval's definition).  Per example the
         outcome is (true positives, predicted entities, gold entities); the score is micro F1 over the
         sample.
study:   the study's prompt per type, 10 greedy tokens, and its scorer: the fraction of gold entity
         strings found as substrings of the output (recall, though the study called it F1), averaged
         over the four types (its flaw 2, reproduced only under this protocol).
records: CoNLL-2003's (id, tokens, tag ids in IOB2), or tags by name in IOB1 or IOB2 (as CoNLL text
         gives them: .txt / .conll files are read too); the study's file is CoNLL text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from editguard.tasks.base import Ability, Example, Scored, Task
from editguard.tasks.readers import CONLL, read_conll
from editguard.tasks.schema import STRS, TEXT, Field, FieldProblem, fill_id, first_bad, is_int, json_cell, show

# CoNLL-2003's tag ids, as the Hugging Face dataset numbers them.
NER_TAGS: tuple[str, ...] = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC")
_TAG_IDS: dict[str, int] = {tag: index for index, tag in enumerate(NER_TAGS)}
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
    from editguard.tasks.scorers import entity_counts, parse_entity_list, tags_from_entities

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


# --- records ------------------------------------------------------------------------------------------------


def _check_tags(value: Any) -> str | None:
    if not isinstance(value, list):
        return f"is {show(value)}"
    return first_bad(value, lambda tag: is_int(tag) and 0 <= tag < len(NER_TAGS))


TAGS = Field(_check_tags, "a list of tag ids 0-8 (" + ", ".join(NER_TAGS) + "), one per token", json_cell)


def normalise(record: dict[str, Any], position: int) -> dict[str, Any]:
    """``id`` defaults to the position; tags given by name (IOB1 or IOB2, as in CoNLL text) become IOB2 ids."""
    fill_id(record, position)
    tags = record.get("ner_tags")
    if isinstance(tags, list) and tags and all(isinstance(tag, str) for tag in tags):
        record["ner_tags"] = _tag_ids(tags)
    return record


def _tag_ids(tags: list[str]) -> list[int]:
    unknown = next((tag for tag in tags if tag not in _TAG_IDS), None)
    if unknown is not None:
        raise FieldProblem("ner_tags", f"has the unknown tag {unknown!r}")
    return [_TAG_IDS[tag] for tag in _iob1_to_iob2(tags)]


def _iob1_to_iob2(tags: list[str]) -> list[str]:
    """IOB1 (CoNLL-2003's original) starts an entity with I- unless it follows one of its type; IOB2 with B-."""
    converted: list[str] = []
    for tag in tags:
        previous = converted[-1] if converted else "O"
        starts = tag.startswith("I-") and previous[2:] != tag[2:]
        converted.append("B-" + tag[2:] if starts else tag)
    return converted


def check_lengths(record: Mapping[str, Any]) -> None:
    tags, tokens = record["ner_tags"], record["tokens"]
    if len(tags) != len(tokens):
        raise FieldProblem("ner_tags", f"has {len(tags)} tags for {len(tokens)} tokens")


COMMON: dict[str, Any] = dict(name="ner", dataset="CoNLL-2003", description="named entities of four types", chance=0.0)
ABILITY = Ability(
    name="ner",
    tasks=(
        Task(
            **COMMON, version=1, protocol="default", kind="generate", metric="entity_f1", template=TEMPLATE,
            to_example=to_example, score=score, max_new_tokens=24, stop=("\n",),
        ),
        Task(
            **COMMON, version=1, protocol="study", kind="generate", metric="study_entity_recall", template=STUDY_TEMPLATE,
            to_example=to_study_example, score=study_score, max_new_tokens=10,
        ),
    ),
    schema={"id": TEXT, "tokens": STRS, "ner_tags": TAGS},
    normalise=normalise,
    check_record=check_lengths,
    read_study=read_conll,
    file_formats=(CONLL,),
)  # fmt: skip
