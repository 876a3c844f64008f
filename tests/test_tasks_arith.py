"""Tests of the arith task: disjoint seeded splits, exact reference solutions, step-level labels."""

import pytest

from roadmap.core.tasks import ArithConfig, ArithTask, get_task
from roadmap.core.tasks.arith import check_step, parse_step


@pytest.fixture(scope="module")
def task() -> ArithTask:
    return ArithTask(ArithConfig(min_operands=3, max_operands=5, digits=2, test_fraction=0.2))


def test_splits_are_disjoint(task):
    train = task.problems("train", n=500, seed=0)
    test = task.problems("test", n=200, seed=0)
    assert len({p.question for p in train}) == 500
    assert not {p.question for p in train} & {p.question for p in test}
    assert not {p.id for p in train} & {p.id for p in test}


def test_problems_are_deterministic_in_seed(task):
    a = task.problems("train", n=50, seed=3)
    assert a == task.problems("train", n=50, seed=3)
    assert a != task.problems("train", n=50, seed=4)


def test_bad_split_and_config_raise():
    with pytest.raises(ValueError, match="split='dev'"):
        ArithTask().problems("dev", n=1)
    with pytest.raises(ValueError, match="max_operands=2"):
        ArithConfig(min_operands=3, max_operands=2)


def test_reference_solutions_are_correct_and_fully_labelled(task):
    for p in task.problems("test", n=100, seed=1):
        text = task.reference_solution(p)
        assert task.is_correct(p, text)
        assert task.extract_answer(text) == p.answer
        labels = task.step_labels(p, text)
        assert len(labels) == len(p.steps) + 1 and all(labels)


def test_known_problem():
    task = ArithTask()
    p = task.make_problem("37+48-91+12")
    assert p.steps == ("37+48=85", "85-91=-6", "-6+12=6") and p.answer == "6"
    assert task.reference_solution(p) == "37+48=85\n85-91=-6\n-6+12=6\nAnswer: 6"
    assert task.prompt(p) == "37+48-91+12\n"


def test_check_step_catches_wrong_arithmetic_and_inconsistency():
    assert parse_step("85-91=-6") == (85, "-", 91, -6)
    assert parse_step("the answer is 6") is None
    assert check_step("37+48=85", None, "37+48-91", index=0)
    assert not check_step("37+48=84", None, "37+48-91", index=0)  # wrong sum
    assert check_step("85-91=-6", "37+48=85", "37+48-91", index=1)
    assert not check_step("84-91=-7", "37+48=85", "37+48-91", index=1)  # right sum, wrong carried value
    assert not check_step("85+91=176", "37+48=85", "37+48-91", index=1)  # wrong operation for the question
    assert not check_step("38+48=86", None, "37+48-91", index=0)  # does not start from the first operand


def test_step_labels_go_false_after_first_wrong_step():
    task = ArithTask()
    p = task.make_problem("37+48-91+12")
    text = "37+48=84\n84-91=-7\n-7+12=5\nAnswer: 5"  # first step wrong, later steps self-consistent
    assert task.step_labels(p, text) == [False, False, False, False]
    text = "37+48=85\n85-91=-6\n-6+12=7\nAnswer: 7"
    assert task.step_labels(p, text) == [True, True, False, False]
    assert not task.is_correct(p, text)


@pytest.mark.parametrize("garbage", ["", "no answer here", "Answer:", "Answer: six", "\x00\x01", "Answer: 6 apples"])
def test_garbage_gives_no_answer_and_never_raises(garbage):
    task = ArithTask()
    p = task.make_problem("1+2+3")
    assert task.extract_answer(garbage) is None
    assert task.is_correct(p, garbage) is False


def test_registry_builds_arith():
    assert isinstance(get_task("arith", digits=1), ArithTask)
    with pytest.raises(ValueError, match="known tasks"):
        get_task("nope")
