"""Tasks: sources of math problems, each with its prompt format and answer checker.

Built-ins: ``arith`` (procedural +/- chains), ``gsm_symbolic`` (reasoning-gym word problems),
``gsm8k`` and ``math500`` (Hub or local files). Heavy dependencies (datasets, math-verify,
reasoning-gym) are imported only when a task loads data or checks an answer, so importing this
package is cheap.

    >>> task = get_task("arith", digits=1)
    >>> p = task.problems("test", n=1)[0]
    >>> task.is_correct(p, task.reference_solution(p))
    True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from roadmap.core.tasks._source import SourceUnavailableError
from roadmap.core.tasks.arith import ArithConfig, ArithTask
from roadmap.core.tasks.base import (
    SPLITS,
    BadRowError,
    Task,
    check_split,
    collect_rows,
    hash_split,
    stable_hash,
)
from roadmap.core.tasks.gsm8k import GSM8KTask
from roadmap.core.tasks.gsm_symbolic import GSMSymbolicTask
from roadmap.core.tasks.math500 import Math500Task

__all__ = [
    "Task",
    "SPLITS",
    "BadRowError",
    "SourceUnavailableError",
    "check_split",
    "collect_rows",
    "hash_split",
    "stable_hash",
    "ArithConfig",
    "ArithTask",
    "GSMSymbolicTask",
    "GSM8KTask",
    "Math500Task",
    "TASKS",
    "get_task",
    "register_task",
]

T = TypeVar("T", bound=type)

#: task name -> task class; ``get_task`` builds from it and ``register_task`` adds to it
TASKS: dict[str, type[Task]] = {
    ArithTask.name: ArithTask,
    GSMSymbolicTask.name: GSMSymbolicTask,
    GSM8KTask.name: GSM8KTask,
    Math500Task.name: Math500Task,
}


def register_task(name: str) -> Callable[[T], T]:
    """Class decorator that adds a Task subclass to ``TASKS`` under ``name``.

    Registering a different class under a name already taken raises ValueError.
    """

    def decorator(cls: T) -> T:
        if not (isinstance(cls, type) and issubclass(cls, Task)):
            raise TypeError(f"register_task({name!r}) decorates {cls!r}, which is not a Task subclass")
        if TASKS.get(name, cls) is not cls:
            raise ValueError(
                f"task name {name!r} is already registered to {TASKS[name].__qualname__}; pick another name"
            )
        TASKS[name] = cls
        return cls

    return decorator


def get_task(name: str, **kwargs) -> Task:
    """A new instance of the task registered as ``name``, built with ``kwargs``."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; known tasks: {sorted(TASKS)} (add one with @register_task)")
    return TASKS[name](**kwargs)
