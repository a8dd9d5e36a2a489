"""MEND's training set: templated counterfactual edits about invented subjects, generated deterministically.

MEND learns, from many edits, how to turn one fine-tuning gradient into a weight update that makes the
edit hold on paraphrases and leaves unrelated text alone.  ``training_records`` writes that material in
the editguard edit layout (``editing/requests.py``): ``prompt`` naming the ``subject``, ``target_new``, a
``rephrase`` of the prompt, and an unrelated ``locality_prompt``/``locality_answer``.

Everything is invented so that no training fact is an evaluation fact: subjects are made-up names
(syllables joined by a seeded ``random.Random``), targets come from fixed lists, and locality prompts are
everyday statements unlike the shipped edit sets' neighbours.  ``overlaps`` checks that none of the
training subjects or prompts occurs in a shipped evaluation set; the test suite runs it.

``python -m editguard.editing.mend_data`` rewrites ``editing/data/mend_train.jsonl``; the file is
committed, and a test checks that it is exactly what this module generates.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MEND_TRAIN_FILE = "mend_train.jsonl"
SEED = 0
SUBJECTS_PER_RELATION = 40


@dataclass(frozen=True)
class Relation:
    prompt: str  # "{}" is the subject
    rephrase: str
    kind: str  # which subject maker: "person", "company", "place"
    targets: tuple[str, ...]


CITIES = ("Lisbon", "Oslo", "Nairobi", "Lima", "Hanoi", "Dublin", "Seoul", "Quito", "Manila", "Tunis", "Riga", "Perth")
LANGUAGES = ("Finnish", "Portuguese", "Korean", "Swahili", "Dutch", "Greek", "Turkish", "Polish", "Hindi", "Czech")
COUNTRIES = ("Norway", "Chile", "Kenya", "Vietnam", "Ireland", "Portugal", "Peru", "Finland", "Morocco", "Nepal")
SPORTS = ("tennis", "cricket", "rugby", "hockey", "volleyball", "badminton", "golf", "baseball")
INSTRUMENTS = ("piano", "trumpet", "flute", "guitar", "harp", "drums", "clarinet", "saxophone")
OCCUPATIONS = ("architect", "nurse", "pilot", "chemist", "journalist", "carpenter", "lawyer", "farmer")
INDUSTRIES = ("shipping", "software", "textiles", "insurance", "mining", "publishing", "banking", "farming")

RELATIONS = (
    Relation("{} was born in the city of", "The birthplace of {} is the city of", "person", CITIES),
    Relation("The first language of {} is", "{} speaks natively the language", "person", LANGUAGES),
    Relation("{} holds the citizenship of", "{} is a citizen of the country", "person", COUNTRIES),
    Relation("{} competes professionally in", "The sport {} is known for is", "person", SPORTS),
    Relation("{} performs on the", "The instrument played by {} is the", "person", INSTRUMENTS),
    Relation("By profession, {} is a", "{} earns a living as a", "person", OCCUPATIONS),
    Relation("The company {} is headquartered in", "The head office of {} is in the city of", "company", CITIES),
    Relation("The firm {} is in the business of", "{} makes its money from", "company", INDUSTRIES),
    Relation("The village of {} lies in the country of", "{} is a village in", "place", COUNTRIES),
)

# Everyday statements for the locality loss: nothing about people, places or firms an edit set names.
LOCALITY = (
    ("Two plus three equals", "five"),
    ("The opposite of up is", "down"),
    ("The day after Monday is", "Tuesday"),
    ("Ice is frozen", "water"),
    ("The color of fresh grass is", "green"),
    ("A baby cat is called a", "kitten"),
    ("Bread is baked in an", "oven"),
    ("The opposite of night is", "day"),
    ("People sleep in a", "bed"),
    ("A year has twelve", "months"),
    ("Bees make", "honey"),
    ("The sun rises in the", "east"),
    ("You write on paper with a", "pen"),
    ("Ten minus four equals", "six"),
    ("Cows give us", "milk"),
    ("Fish live in", "water"),
    ("The season after winter is", "spring"),
    ("A triangle has three", "sides"),
    ("To open a locked door you need a", "key"),
    ("Rain falls from the", "clouds"),
    ("The opposite of cold is", "hot"),
    ("A spider has eight", "legs"),
    ("We hear with our", "ears"),
    ("Books are kept in a", "library"),
    ("Five times two equals", "ten"),
    ("The day before Friday is", "Thursday"),
    ("Snow is usually", "white"),
    ("A young dog is called a", "puppy"),
    ("Soup is eaten with a", "spoon"),
    ("The opposite of empty is", "full"),
)

_FIRST = ("Al", "Bren", "Cor", "Dav", "El", "Fen", "Gal", "Har", "Isk", "Jor", "Kel", "Lor", "Mar", "Nor", "Or", "Per")
_MIDDLE = ("a", "e", "i", "o", "u", "ae", "ei", "ou")
_LAST = ("dric", "lin", "mond", "wen", "ra", "thos", "vik", "zel", "bert", "nia", "rin", "sa")
_SURNAME = ("Vash", "Quell", "Brom", "Tarn", "Wyle", "Drest", "Holl", "Marr", "Penn", "Skar", "Threll", "Yorv")
_SURNAME_END = ("ington", "worth", "ard", "ley", "mont", "ovic", "sen", "ford", "well", "ani")
_FIRM_END = ("corp", "tek", "works", "dyne", "field", "line")
_PLACE_END = ("by", "thorpe", "stead", "wick", "holm", "dale")


def _name(rng: random.Random) -> str:
    return rng.choice(_FIRST) + rng.choice(_MIDDLE) + rng.choice(_LAST)


def _subject(kind: str, rng: random.Random) -> str:
    if kind == "person":
        return f"{_name(rng)} {rng.choice(_SURNAME)}{rng.choice(_SURNAME_END)}"
    if kind == "company":
        return f"{rng.choice(_SURNAME)}{rng.choice(_MIDDLE)}{rng.choice(_FIRM_END)}"
    return f"{rng.choice(_FIRST)}{rng.choice(_MIDDLE)}{rng.choice(_PLACE_END)}"


def _subjects(kind: str, count: int, rng: random.Random, taken: set[str]) -> list[str]:
    """``count`` new subjects of ``kind``, none already ``taken`` (they are added to it)."""
    found: list[str] = []
    for _ in range(100 * count):  # far more tries than needed; a bound instead of looping forever
        subject = _subject(kind, rng)
        if subject not in taken:
            taken.add(subject)
            found.append(subject)
        if len(found) == count:
            return found
    raise ValueError(f"too few distinct {kind} names for {count} subjects; add syllables to mend_data")


def training_records(per_relation: int = SUBJECTS_PER_RELATION, seed: int = SEED) -> list[dict[str, Any]]:
    """The training edits: ``per_relation`` invented subjects for each relation, in the editguard layout."""
    rng = random.Random(seed)
    taken: set[str] = set()
    records = []
    for relation in RELATIONS:
        for subject in _subjects(relation.kind, per_relation, rng, taken):
            locality_prompt, locality_answer = rng.choice(LOCALITY)
            records.append({
                "prompt": relation.prompt.format(subject),
                "subject": subject,
                "target_new": rng.choice(relation.targets),
                "rephrase": relation.rephrase.format(subject),
                "locality_prompt": locality_prompt,
                "locality_answer": locality_answer,
            })  # fmt: skip
    return records


def training_file() -> Path:
    """The shipped training set (``editing/data/mend_train.jsonl``)."""
    from importlib import resources

    return Path(str(resources.files("editguard.editing") / "data" / MEND_TRAIN_FILE))


def write_training_file(path: Path | None = None) -> Path:
    """Write ``training_records()`` as JSON Lines to ``path`` (default: the shipped file); returns the path."""
    from editguard.atomic import atomic_open

    target = path or training_file()
    text = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in training_records())
    with atomic_open(target, "w") as stream:
        stream.write(text)
    return target


def overlaps(records: Iterable[dict[str, Any]], evaluation_texts: Iterable[str]) -> list[str]:
    """Training subjects and prompts (prompt, rephrase, locality prompt) that occur in any evaluation text."""
    corpus = "\n".join(evaluation_texts)
    found = []
    for record in records:
        for field in ("subject", "prompt", "rephrase", "locality_prompt"):
            if record[field] in corpus:
                found.append(f"{field} {record[field]!r}")
    return found


if __name__ == "__main__":
    print(write_training_file())
