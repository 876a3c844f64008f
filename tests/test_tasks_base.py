"""roadmap.core.tasks.base: the Task defaults, and is_correct's line between garbage and a broken task."""

from __future__ import annotations

import logging

import pytest

from roadmap.core import Problem
from roadmap.core.tasks import ArithTask


class _Raising(ArithTask):
    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    def answers_match(self, predicted, reference):
        raise self.error


def test_is_correct_counts_a_failed_parse_as_wrong_and_says_so(caplog):
    problem = Problem("arith-1", "1+1", "2")
    for err in (ValueError("bad number"), ZeroDivisionError("x/0"), RecursionError("deep")):
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            assert _Raising(err).is_correct(problem, "1+1=2\nAnswer: 2") is False
        assert "arith-1" in caplog.text and type(err).__name__ in caplog.text and "Answer: 2" in caplog.text


def test_is_correct_lets_a_bug_in_the_task_raise():
    with pytest.raises(AttributeError, match="oops"):
        _Raising(AttributeError("oops")).is_correct(Problem("a", "1+1", "2"), "Answer: 2")


def test_is_correct_on_right_wrong_and_answerless_text():
    task = ArithTask()
    problem = task.make_problem("1+1")
    assert task.is_correct(problem, task.reference_solution(problem))
    assert not task.is_correct(problem, "1+1=3\nAnswer: 3")
    assert not task.is_correct(problem, "no answer here")
