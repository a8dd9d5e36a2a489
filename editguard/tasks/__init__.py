"""General abilities: one module per ability (its tasks and how its records are read), found by the registry."""

from editguard.tasks.base import PROTOCOLS, Ability, Example, Scored, Task, UnknownTaskError
from editguard.tasks.registry import all_names, canary_names, get_ability, get_task, task_names

__all__ = ["PROTOCOLS", "Ability", "Example", "Scored", "Task", "UnknownTaskError", "get_ability", "all_names", "canary_names", "get_task", "task_names"]
