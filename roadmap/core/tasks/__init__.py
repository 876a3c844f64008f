"""Tasks: sources of math problems, each with its prompt format and answer checker.

Built-ins: ``arith`` (procedural +/- chains), ``countdown`` (reach a target from 2-6 numbers, with
an exact solver and search traces), ``gsm_symbolic`` (reasoning-gym word problems),
``gsm8k`` and ``math500`` (Hub or local files); a user's own Task subclass loads by import path
("mypkg.tasks:MyTask"). Prompt formats (plain, chat template, few-shot) are ``PromptFormat``s
bound with ``Task.set_prompt_format``. Heavy dependencies (datasets, math-verify,
reasoning-gym) are imported only when a task loads data or checks an answer, so importing this
package is cheap.

    >>> task = get_task("arith", digits=1)
    >>> p = task.problems("test", n=1)[0]
    >>> task.is_correct(p, task.reference_solution(p))
    True
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Callable
from typing import TypeVar

from roadmap.core.errors import ConfigError
from roadmap.core.tasks._source import SourceUnavailableError
from roadmap.core.tasks.arith import ArithConfig, ArithTask
from roadmap.core.tasks.base import (
    SPLITS,
    BadRowError,
    Task,
    check_split,
    collect_rows,
    hash_split,
    selection_correct,
    stable_hash,
)
from roadmap.core.tasks.countdown import CountdownConfig, CountdownTask
from roadmap.core.tasks.gsm8k import GSM8KTask
from roadmap.core.tasks.gsm_symbolic import GSMSymbolicTask
from roadmap.core.tasks.math500 import Math500Task
from roadmap.core.tasks.prompts import DEFAULT_SYSTEM_PROMPT, PROMPT_KINDS, PromptFormat

__all__ = [
    "Task",
    "TASK_FILE",
    "saved_task_options",
    "SPLITS",
    "BadRowError",
    "SourceUnavailableError",
    "check_split",
    "collect_rows",
    "hash_split",
    "selection_correct",
    "stable_hash",
    "ArithConfig",
    "ArithTask",
    "CountdownConfig",
    "CountdownTask",
    "GSMSymbolicTask",
    "GSM8KTask",
    "Math500Task",
    "PromptFormat",
    "PROMPT_KINDS",
    "DEFAULT_SYSTEM_PROMPT",
    "TASKS",
    "get_task",
    "load_task_class",
    "register_task",
]

T = TypeVar("T", bound=type)

#: task name -> task class; ``get_task`` builds from it and ``register_task`` adds to it
TASKS: dict[str, type[Task]] = {
    ArithTask.name: ArithTask,
    CountdownTask.name: CountdownTask,
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


def task_options(cls: type[Task]) -> dict[str, object]:
    """The keyword options a task class takes, with their defaults (a config dataclass's fields
    count as options when ``__init__`` forwards ``**kwargs`` to it, as ``ArithTask`` does)."""
    params = inspect.signature(cls.__init__).parameters
    options = {k: p.default for k, p in params.items() if k != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        hints = typing.get_type_hints(cls.__init__)
        for key in list(options):
            for t in typing.get_args(hints.get(key)) or (hints.get(key),):
                if dataclasses.is_dataclass(t):
                    options.update({f.name: f.default for f in dataclasses.fields(t)})
    return options


def _check_options(name: str, cls: type[Task], kwargs: dict) -> None:
    options = task_options(cls)
    unknown = sorted(set(kwargs) - set(options))
    if unknown:
        raise ConfigError(f"task {name!r} has no option(s) {unknown}; its options: {sorted(options)}")
    for key, value in kwargs.items():
        default = options[key]
        numeric = isinstance(default, (int, float)) and not isinstance(default, bool)
        if numeric and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ConfigError(f"task {name!r} option {key}={value!r} must be a number like its default {default!r}")
        if numeric and isinstance(default, int) and not isinstance(value, int):
            raise ConfigError(f"task {name!r} option {key}={value!r} must be a whole number (default {default!r})")


def load_task_class(path: str) -> type[Task]:
    """The Task subclass named by an import path "package.module:ClassName".

    Errors (ConfigError) name the path and say whether the module cannot be imported, has no such
    attribute, or the attribute is not a Task subclass.
    """
    import importlib

    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"task {path!r} is not an import path; write it as package.module:ClassName")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        missing = "it" if err.name == module_name or module_name.startswith(f"{err.name}.") else repr(err.name)
        raise ConfigError(f"task {path!r}: module {module_name!r} cannot be imported ({missing} is not found); put "
                          "its folder on PYTHONPATH or install its package") from err
    cls = getattr(module, attr, None)
    if cls is None:
        raise ConfigError(f"task {path!r}: module {module_name!r} has no attribute {attr!r}; check the class name")
    if not (isinstance(cls, type) and issubclass(cls, Task)):
        raise ConfigError(f"task {path!r}: {attr} is {cls!r}, not a Task subclass; subclass roadmap.core.tasks.Task")
    return cls


def get_task(name: str, **kwargs) -> Task:
    """A new instance of the task registered as ``name`` (or at import path "module:Class"), built
    with ``kwargs``.

    Unknown options and non-numbers for numeric options raise ``ConfigError`` naming them.
    """
    if ":" in name:
        cls = load_task_class(name)
    elif name not in TASKS:
        raise ConfigError(f"unknown task {name!r}; known tasks: {sorted(TASKS)} (add one with @register_task, or "
                          "pass an import path package.module:ClassName)")
    else:
        cls = TASKS[name]
    _check_options(name, cls, kwargs)
    return cls(**kwargs)


#: a policy folder's record of the task it was trained on: {"task": name, "task_args": {...}}
TASK_FILE = "task.json"


def saved_task_options(folder, name: str) -> dict:
    """The task options a policy folder was trained with (its ``task.json``, written by the ladder), when it was
    trained on task ``name``; else ``{}``. Commands merge them under the user's own ``--task-arg`` flags, so an
    option the training changed (arith's ``solution_format``) travels with the policy."""
    import json
    from pathlib import Path

    if folder is None:
        return {}
    path = Path(folder) / TASK_FILE
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(saved, dict) or saved.get("task") != name or not isinstance(saved.get("task_args"), dict):
        return {}
    return dict(saved["task_args"])
