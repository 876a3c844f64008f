"""Shared vocabulary of o1-roadmap: problem/tree/result types and tasks. Imports no torch."""

from roadmap.core.tasks import (
    TASKS,
    ArithConfig,
    ArithTask,
    BadRowError,
    GSM8KTask,
    GSMSymbolicTask,
    Math500Task,
    SourceUnavailableError,
    Task,
    get_task,
    register_task,
)
from roadmap.core.types import Completion, Node, Problem, SearchResult, StepScorer, Tree, Usage

__all__ = [
    "Problem",
    "Completion",
    "Usage",
    "Node",
    "Tree",
    "SearchResult",
    "StepScorer",
    "Task",
    "TASKS",
    "get_task",
    "register_task",
    "BadRowError",
    "SourceUnavailableError",
    "ArithConfig",
    "ArithTask",
    "GSMSymbolicTask",
    "GSM8KTask",
    "Math500Task",
]
