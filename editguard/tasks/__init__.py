"""General abilities: the task registry and the built-in tasks."""

from editguard.tasks.registry import Example, Task, UnknownTaskError, get_task, task_names

__all__ = ["Example", "Task", "UnknownTaskError", "get_task", "task_names"]
