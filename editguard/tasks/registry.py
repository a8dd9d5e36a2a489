"""The task registry: one record per general ability, carrying everything about it.

A task turns dataset records into ``Example``s (a prompt, its answer choices, the gold index) and
names its metric.  Its fingerprint covers its version, its prompt template and the exact examples,
so a baseline recorded under other data or another prompt is recognised as stale.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from editguard.fingerprint import fingerprint


class UnknownTaskError(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class Example:
    id: str
    prompt: str
    choices: tuple[str, ...]
    gold: int


@dataclass(frozen=True)
class Task:
    name: str
    version: int
    dataset: str  # the real dataset this ability stands for
    description: str
    metric: str
    template: str  # the prompt, with {field} placeholders filled from a record
    choices: tuple[str, ...]
    to_example: Callable[[int, Mapping[str, Any]], Example]
    probe_file: str  # the embedded probe set, in the real dataset's schema

    @property
    def chance(self) -> float:
        return 1.0 / len(self.choices)

    def probe_records(self) -> list[dict[str, Any]]:
        text = (resources.files("editguard.tasks") / "data" / self.probe_file).read_text(encoding="utf-8")
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def examples(self) -> list[Example]:
        return [self.to_example(index, record) for index, record in enumerate(self.probe_records())]

    def fingerprint(self, examples: Sequence[Example]) -> str:
        """Digest of version, prompt and data: any change makes stored baselines stale."""
        return fingerprint(
            {
                "task": self.name,
                "version": self.version,
                "template": self.template,
                "choices": self.choices,
                "examples": [[e.id, e.prompt, e.choices, e.gold] for e in examples],
            }
        )


_REGISTRY: dict[str, Task] = {}


def register(task: Task) -> Task:
    if task.name in _REGISTRY:
        raise ValueError(f"task {task.name!r} is registered twice")
    _REGISTRY[task.name] = task
    return task


def get_task(name: str) -> Task:
    _load_builtin_tasks()
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, _REGISTRY, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; known abilities: {', '.join(task_names())}"
        raise UnknownTaskError(f"unknown ability {name!r}{hint}")
    return _REGISTRY[name]


def task_names() -> list[str]:
    """Registered abilities, sorted (xdist workers must collect the same order)."""
    _load_builtin_tasks()
    return sorted(_REGISTRY)


def _load_builtin_tasks() -> None:
    from editguard.tasks import closed_qa, sentiment  # noqa: F401  (each registers itself)
