"""The canary: how well the model still predicts plain, general text (a perplexity check, not an ability).

Knowledge editing that breaks a model shows first as text it no longer predicts: Yang et al. (2024, "The
Butterfly Effect of Model Editing") tracked model collapse with the perplexity of 50 sentences.  The
canary is 300 short sentences the project wrote, varied in topic and style (kitchen, weather, science,
instructions, dialogue, legal prose, code talk, children's stories), naming no famous person, place or
company, so that no knowledge edit should change them.

Each sentence's outcome is its log-perplexity: the mean negative log-likelihood per token of everything
after its first word, given that word.  Base and edited model read the same sentences, so the comparison
is paired; the gate reports ``exp(edited - base)``, the perplexity ratio, with its confidence interval, and
FAILs when the ratio is beyond ``exp(tolerance)`` (``test_canary``, its own tolerance: 0.05 by default, a
ratio of 1.05).  It costs one forward pass per sentence (about 8 s for 300 on two cores), a fraction of the
eight abilities, so with ``--editguard-edit-counts`` it can scan many counts cheaply.

Both protocols read it the same way (the study had no canary).
records: (idx, text); any JSONL/CSV/TSV with a ``text`` column works through ``--editguard-data canary=FILE``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from editguard.tasks.base import Ability, Example, Task
from editguard.tasks.common import text
from editguard.tasks.schema import INT, TEXT, FieldProblem, fill

TEMPLATE = "{text}"


def to_example(index: int, record: Mapping[str, Any]) -> Example:
    """Context: the first word; continuation (``target``): the rest, with its leading space."""
    first, rest = text(record, "text").split(maxsplit=1)  # words as check_record counts them: a tab parts them too
    return Example(str(record.get("idx", index)), (first,), target=" " + rest.strip())


def normalise(record: dict[str, Any], position: int) -> dict[str, Any]:
    fill(record, "idx", position)
    return record


def check_record(record: Mapping[str, Any]) -> None:
    if len(str(record["text"]).split()) < 2:
        raise FieldProblem("text", f"is {str(record['text'])!r}", "a sentence of at least two words (the first one is the context)")


COMMON: dict[str, Any] = dict(
    name="canary", dataset="canary sentences", description="log-perplexity of plain general text (lower is better)",
    metric="log_perplexity", chance=None, kind="perplexity", template=TEMPLATE, to_example=to_example, version=1,
)  # fmt: skip
ABILITY = Ability(
    name="canary",
    tasks=(Task(**COMMON, protocol="default"), Task(**COMMON, protocol="study")),
    schema={"idx": INT, "text": TEXT},
    normalise=normalise,
    check_record=check_record,
    role="canary",
)
