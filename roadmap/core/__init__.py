"""Shared vocabulary of o1-roadmap: problem/tree/result types, tasks and the Policy seam.

Imports no torch: ``HFPolicy`` loads torch and transformers only when a model is loaded.
"""

from roadmap.core.lengths import Lengths
from roadmap.core.policy import HFPolicy, Policy
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
    "Lengths",
    "Policy",
    "HFPolicy",
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
