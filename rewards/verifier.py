"""Outcome rewards from a task's own checker: rule-based verification, no model involved.

The roadmap (arXiv 2412.14135, Section 4) calls this the outcome reward from the environment:
1 when the final answer matches the reference, 0 otherwise. It is offered two ways:

- ``VerifierScorer``: a ``StepScorer`` for search (best-of-N, MCTS rollouts at train time);
- ``get_verifier_reward``: a TRL reward function ``(prompts, completions, **kwargs)`` for
  ``GRPOTrainer``, reading the reference answer from a dataset column.

Garbage model output never raises: a solution without a parsable answer scores 0.0. The TRL
reward returns None only for a row that has no reference answer, so that TRL leaves that row
out of this reward instead of training on a made-up label.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

from roadmap.core.errors import MissingColumnError, NoStepCheckerError
from roadmap.core.types import Problem, StepScorer

logger = logging.getLogger(__name__)

__all__ = ["VerifierScorer", "get_verifier_reward", "get_step_verifier_reward", "completion_text"]


class VerifierScorer(StepScorer):
    """``StepScorer`` that gives 1.0 to a solution whose final answer is right and 0.0 otherwise.

    A partial solution (no final answer yet), an empty text or unparsable garbage scores 0.0.
    """

    def __init__(self, task) -> None:
        self.task = task

    def score(self, problem: Problem, partial_solutions: Sequence[str]) -> list[float]:
        return [1.0 if self.task.is_correct(problem, text or "") else 0.0 for text in partial_solutions]

    def __repr__(self) -> str:
        return f"VerifierScorer(task={self.task.name!r})"


def completion_text(completion) -> str:
    """The text of a TRL completion: a string, or a conversation whose last message is the answer."""
    if completion is None:
        return ""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        return str(completion.get("content") or "")
    if isinstance(completion, Sequence) and completion:
        return completion_text(completion[-1])
    return ""


def _usable_answer(answer) -> bool:
    if answer is None:
        return False
    if isinstance(answer, float) and math.isnan(answer):
        return False
    return str(answer).strip() != ""


class _VerifierReward:
    """Picklable TRL reward: 1.0 right, 0.0 wrong or unparsable, None without a reference answer."""

    def __init__(self, task, answer_column: str) -> None:
        self.task = task
        self.answer_column = answer_column
        self.__name__ = f"verifier_{task.name}"

    def __call__(self, prompts, completions, **kwargs) -> list[float | None]:
        if self.answer_column not in kwargs:
            raise MissingColumnError(
                f"the reward needs the reference answers in the dataset column {self.answer_column!r}, but the "
                f"columns passed were {sorted(k for k in kwargs if not k.startswith(('trainer_', 'log_')))}; "
                "add that column or pass answer_column=... to get_verifier_reward"
            )
        answers = kwargs[self.answer_column]
        out: list[float | None] = []
        for i, completion in enumerate(completions):
            answer = answers[i]
            if not _usable_answer(answer):
                out.append(None)
                continue
            problem = Problem(id=str(i), question="", answer=str(answer))
            out.append(1.0 if self.task.is_correct(problem, completion_text(completion)) else 0.0)
        return out


def get_verifier_reward(task, answer_column: str = "answer"):
    """A TRL reward function that checks each completion's final answer with ``task``'s checker.

    Args:
        task: a ``Task`` (its ``extract_answer`` and ``answers_match`` do the checking).
        answer_column: the dataset column that holds each prompt's reference answer.

    Returns:
        ``reward(prompts, completions, **kwargs) -> list[float | None]``: 1.0 for a right final
        answer, 0.0 for a wrong, missing or unparsable one, None where the row's reference
        answer is missing (TRL then ignores this reward on that row).
    """
    return _VerifierReward(task, answer_column)


class _StepVerifierReward(_VerifierReward):
    """Picklable TRL reward: 1.0 when the final answer is right *and* the task's step checker accepts every step."""

    def __init__(self, task, answer_column: str) -> None:
        super().__init__(task, answer_column)
        self.__name__ = f"step_verifier_{task.name}"

    def __call__(self, prompts, completions, **kwargs) -> list[float | None]:
        answers = super().__call__(prompts, completions, **kwargs)
        questions = kwargs.get("question")
        if questions is None:
            raise MissingColumnError("the step verifier needs each row's question in the column 'question' (the steps are "
                           "checked against its operands); add that column")
        out: list[float | None] = []
        for i, (right, completion) in enumerate(zip(answers, completions)):
            if not right:  # None (no reference) or 0.0 (wrong answer) stay as they are
                out.append(right)
                continue
            problem = Problem(id=str(i), question=str(questions[i]), answer=str(kwargs[self.answer_column][i]))
            labels = self.task.step_labels(problem, completion_text(completion))
            out.append(1.0 if labels and all(labels) else 0.0)
        return out


def get_step_verifier_reward(task, answer_column: str = "answer"):
    """Like ``get_verifier_reward``, but a right answer reached through a wrong step earns 0.

    For tasks whose every step can be checked exactly (``task.step_labels``, e.g. arith): an
    outcome verifier there also rewards solutions whose errors cancel or whose answer line does
    not follow from the steps, and RL that reinforces them learns wrong steps.

    Raises:
        TypeError: ``task`` has no ``step_labels`` checker.
    """
    if not callable(getattr(task, "step_labels", None)):
        raise NoStepCheckerError(f"task {getattr(task, 'name', task)!r} has no step checker (step_labels); use the answer "
                             "verifier (verifier: answer) for it")
    return _StepVerifierReward(task, answer_column)
