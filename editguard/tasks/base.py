"""The core types of abilities: ``Example``, ``Scored``, ``Task`` (one per ability and protocol) and ``Ability``.

A task turns dataset records into ``Example``s and says how to score them: by the log-likelihood of
answer choices (``kind="choice"``) or by greedy generation and a scorer (``kind="generate"``).  Each
ability has two protocols: ``default`` (correct, documented in its module) and ``study`` (the reference
study's prompts byte for byte and its scoring, flaws included, for comparison with its numbers).

A task's fingerprint covers its version, protocol, prompt template and the exact examples, so a
baseline recorded under other data or another prompt is recognised as stale.

An ``Ability`` is the one record an ability module declares (``ABILITY = Ability(...)``): its tasks, and
how its records are read (schema, normaliser, the study's file layout).  The registry collects them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from editguard.fingerprint import fingerprint
from editguard.tasks.readers import FileFormat, Rows
from editguard.tasks.schema import Schema, keep, no_cross_check

PROTOCOLS = ("default", "study")
ROLES = ("ability", "canary")  # what an Ability record is gated as: a general ability, or the canary
Outcome = float | list[float]


class UnknownTaskError(KeyError, ValueError):
    """An ability or protocol that is not registered; the message suggests the closest name."""

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class Example:
    id: str
    prompts: tuple[str, ...]  # choice tasks: one context, or one per choice (the channel form); generation: one or more
    choices: tuple[str, ...] = ()  # choice tasks: the continuations compared (the channel form: the one text scored)
    gold: int | None = None  # choice tasks: index of the right choice
    target: Any = None  # generation tasks: what the scorer compares the outputs with (JSON-able)
    stratum: str = ""  # label used for stratified sampling

    @property
    def prompt(self) -> str:
        return self.prompts[0]

    @property
    def pairs(self) -> list[tuple[str, str]]:
        """Choice tasks: the (context, continuation) pairs compared, one per choice.  Each continuation after the
        one context; or, in the channel form (several contexts, one continuation), the same text after each
        choice's own context: the choice under which the text is most likely wins."""
        if len(self.prompts) > 1:
            return [(prompt, self.choices[0]) for prompt in self.prompts]
        return [(self.prompts[0], choice) for choice in self.choices]

    @property
    def answer(self) -> Any:
        """What a right answer is, for people: the gold continuation, or (the channel form) the gold context."""
        if self.choices and self.gold is not None:
            return self.prompts[self.gold] if len(self.prompts) > 1 else self.choices[self.gold]
        return self.target


@dataclass(frozen=True)
class Scored:
    """A scorer's verdict on one example: its outcome, and whether the output could be parsed at all."""

    outcome: Outcome
    parsed: bool = True


@dataclass(frozen=True)
class Task:
    name: str
    version: int
    dataset: str  # the real dataset this ability stands for
    description: str
    protocol: str
    kind: str  # "choice", "generate" or "perplexity" (the canary: log-likelihood of the target after the prompt)
    metric: str  # a name in editguard.statistics.metrics.METRICS
    template: str  # the prompt template(s) as documented, {field} filled from a record
    to_example: Callable[[int, Mapping[str, Any]], Example]
    chance: float | None  # the score of guessing (choice) or of an empty answer (generation); None: no such level
    score: Callable[[Example, Sequence[str]], Scored] | None = None  # generation tasks
    chat: bool = False  # wrap generation prompts in the model's chat template, when it has one
    max_new_tokens: int = 0
    stop: tuple[str, ...] = ()
    length_normalized: bool = False  # choice tasks: compare mean log-probability per token
    # generation tasks whose scorer carries state across a sample (only the study's flawed QA matcher)
    score_sample: Callable[[Sequence[Example], Sequence[Sequence[str]]], list[Scored]] | None = None

    @property
    def key(self) -> tuple[str, str]:
        return self.name, self.protocol

    def score_outputs(self, examples: Sequence[Example], outputs: Sequence[Sequence[str]]) -> list[Scored]:
        """Score generated outputs (one list of outputs per example, one output per prompt), in order."""
        if self.score_sample is not None:
            return self.score_sample(examples, outputs)
        assert self.score is not None, f"{self.key} is not a generation task"
        return [self.score(example, output) for example, output in zip(examples, outputs)]

    def examples(self, records: Sequence[Mapping[str, Any]]) -> list[Example]:
        return [self.to_example(index, record) for index, record in enumerate(records)]

    def fingerprint(self, examples: Sequence[Example]) -> str:
        """Digest of version, protocol, prompt and data: any change makes stored baselines stale."""
        return fingerprint(
            {
                "task": self.name,
                "version": self.version,
                "protocol": self.protocol,
                "template": self.template,
                "decoding": [self.kind, self.chat, self.max_new_tokens, list(self.stop), self.length_normalized],
                "examples": [[e.id, list(e.prompts), list(e.choices), e.gold, e.target] for e in examples],
            }
        )


@dataclass(frozen=True)
class Ability:
    """One ability: its tasks (one per protocol) and how its records are read, checked when it is made."""

    name: str
    tasks: tuple[Task, ...]
    schema: Schema  # field -> kind, in the order records carry them (the Hugging Face dataset's own)
    # another source's spelling of a record (label names, a missing optional field) -> the schema's
    normalise: Callable[[dict[str, Any], int], dict[str, Any]] = keep
    check_record: Callable[[Mapping[str, Any]], None] = no_cross_check  # checks across fields (FieldProblem)
    read_study: Callable[[Path], Rows] | None = None  # the reference study's own file (or folder) layout
    file_formats: tuple[FileFormat, ...] = ()  # formats read beside readers.COMMON_FORMATS
    role: str = "ability"  # "ability": a general ability, one test_ability each; "canary": test_canary

    def __post_init__(self) -> None:
        protocols = sorted(task.protocol for task in self.tasks)
        if protocols != sorted(PROTOCOLS):
            raise ValueError(f"ability {self.name!r} has tasks for {protocols}; give one task per protocol {list(PROTOCOLS)}")
        strangers = [task.name for task in self.tasks if task.name != self.name]
        if strangers:
            raise ValueError(f"ability {self.name!r} holds a task named {strangers[0]!r}; name its tasks {self.name!r}")
        if self.role not in ROLES:
            raise ValueError(f"ability {self.name!r} has role {self.role!r}; choose one of {', '.join(ROLES)}")
        if not self.schema:
            raise ValueError(f"ability {self.name!r} has an empty schema; declare its record fields")

    def task(self, protocol: str) -> Task:
        return next(task for task in self.tasks if task.protocol == protocol)
