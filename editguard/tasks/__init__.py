"""General abilities: the task registry and the eight built-in tasks."""

from editguard.tasks.registry import (
    PROTOCOLS,
    Example,
    Scored,
    Task,
    UnknownTaskError,
    get_task,
    task_names,
)

__all__ = ["PROTOCOLS", "Example", "Scored", "Task", "UnknownTaskError", "get_task", "task_names"]
