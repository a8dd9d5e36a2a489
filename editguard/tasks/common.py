"""Pieces several tasks share: scoring a generated label word, and record field access."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from editguard.tasks.base import Example, Scored


def label_scorer(labels: Mapping[str, int]) -> Callable[[Example, Sequence[str]], Scored]:
    """Score a one-word generated answer against ``example.target`` (a label index).

    An output whose first word is not one of ``labels`` counts as wrong and as unparseable; accuracy
    is over all examples (the study wrote both this and accuracy over parseable outputs, and did not
    say which it reported).
    """
    from editguard.tasks.scorers import parse_label

    def score(example: Example, outputs: Sequence[str]) -> Scored:
        predicted = parse_label(outputs[0], labels)
        return Scored(1.0 if predicted == example.target else 0.0, parsed=predicted is not None)

    return score


def labelled_example(record_id: str, prompt: str, label: int, choices: tuple[str, ...] = ()) -> Example:
    """A one-prompt example with a label: scored by ``choices`` when given, else by a generated label word."""
    if choices:
        return Example(record_id, (prompt,), choices, label, stratum=str(label))
    return Example(record_id, (prompt,), target=label, stratum=str(label))


def text(record: Mapping[str, Any], field: str) -> str:
    return str(record[field]).strip()
