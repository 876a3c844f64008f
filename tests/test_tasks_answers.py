"""Tests of final-answer reading as real models write it: \\boxed{} in every task, and the flexible reading."""

import pytest

from roadmap.core.tasks import ArithTask, GSM8KTask, GSMSymbolicTask, Math500Task
from roadmap.core.tasks._answers import flexible_answer, last_boxed
from roadmap.core.tasks._numeric import extract_numeric_answer

GSM_TASKS = [GSM8KTask(source="unused.jsonl"), GSMSymbolicTask()]


@pytest.mark.parametrize(("text", "expected"), [
    ("So she sold 72 clips.\n\nTherefore, the final answer is $\\boxed{72}$.", "72"),
    ("The total is $\\boxed{1,234}$.", "1234"),
    ("\\boxed{72.}", "72"),
    ("It costs $\\boxed{\\$18.90}$.", "18.9"),
    ("Negative: \\boxed{-5}", "-5"),
    ("first \\boxed{3} then \\boxed{4}", "4"),  # the last box
    ("#### 72", "72"),
    ("\\boxed{5}\n#### 6", "6"),  # whichever comes last
    ("#### 6\nso \\boxed{5}", "5"),
    ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),  # not a plain number: kept for math-verify
    ("\\boxed{}", None),
    ("cut off \\boxed{7", None),
    ("The answer is 72", None),  # strict: no mark, no box
    ("", None),
])
def test_gsm_strict_reading(text, expected):
    assert extract_numeric_answer(text) == expected
    for task in GSM_TASKS:
        assert task.extract_answer(text) == expected


def test_gsm_boxed_answers_are_judged_correct():
    task = GSM_TASKS[0]
    from roadmap.core.types import Problem

    p = Problem(id="x", question="q", answer="1234")
    assert task.is_correct(p, "Adding up gives 1234.\n\nTherefore, the final answer is $\\boxed{1,234}$.")
    assert not task.is_correct(p, "Therefore, the final answer is $\\boxed{1,235}$.")
    half = Problem(id="y", question="q", answer="0.5")
    assert task.is_correct(half, "\\boxed{\\frac{1}{2}}")


@pytest.mark.parametrize(("text", "expected"), [
    ("\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}", "\\left( 3, \\frac{\\pi}{2} \\right)"),
    ("$\\boxed{\\frac{14}{3}}$", "\\frac{14}{3}"),
    ("\\boxed 5$.", "5"),
    ("\\boxed{2} and \\boxed{}", None),
])
def test_last_boxed_nested_and_bare(text, expected):
    assert last_boxed(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("37+48=85\nAnswer: 85", "85"),
    ("37+48=85\n\nTherefore, the final answer is $\\boxed{85}$.", "85"),
    ("Answer: 3\n\\boxed{-4}", "-4"),
    ("\\boxed{4}\nAnswer: 3", "3"),
    ("\\boxed{four}", None),
    ("37+48=85", None),
])
def test_arith_reads_answer_lines_and_boxes(text, expected):
    assert ArithTask().extract_answer(text) == expected


def test_arith_step_labels_accept_a_boxed_final_step():
    task = ArithTask()
    p = task.make_problem("37+48-91")
    assert task.step_labels(p, "37+48=85\n85-91=-6\nTherefore, the final answer is $\\boxed{-6}$.") == [True] * 3
    assert task.step_labels(p, "37+48=85\n85-91=-6\n\\boxed{-7}") == [True, True, False]


@pytest.mark.parametrize("task", [*GSM_TASKS, ArithTask(), Math500Task(source="unused.jsonl")],
                         ids=lambda t: t.name)
def test_flexible_reads_what_strict_does_not(task):
    assert task.extract_answer("The answer is 72") is None
    assert task.extract_answer_flexible("The answer is 72") == "72"
    assert task.extract_answer_flexible("so 5 + 3 = 8 apples") == "8"  # the last number
    assert task.extract_answer_flexible("no number here") is None
    # where strict reads an answer, flexible agrees with it
    assert task.extract_answer_flexible("The answer is 9, but \\boxed{10}") == "10"


@pytest.mark.parametrize(("text", "expected"), [
    ("The answer is $1,200.", "1,200"),
    ("the final answer is: 7", "7"),
    ("The answer is 3. Then 99 more words 12", "3"),
    ("It is -4.5 degrees", "-4.5"),
    ("", None),
])
def test_flexible_answer(text, expected):
    assert flexible_answer(text) == expected


def test_flexible_is_normalised_for_gsm():
    assert GSM_TASKS[0].extract_answer_flexible("The answer is $1,200.") == "1200"


# ---------------------------------------------------------------------- exact numbers (issue 26)
@pytest.mark.parametrize("predicted, reference, same", [
    ("12345678901234567890123456789012", "12345678901234567890123456789013", False),  # beyond a 28-digit Decimal
    ("12345678901234567890123456789012", "12,345,678,901,234,567,890,123,456,789,012.000", True),
    ("9007199254740993", "9007199254740992", False),  # 2**53 + 1: a float would make them equal
    ("1234567.0000001", "1234567", False),  # math-verify rounds before comparing
    ("0.75", "3/4", True),
    ("-3/4", "\\frac{-3}{4}", True),
    ("1/3", "0.333333333333333333333", False),
])
def test_numeric_answers_compare_exactly_whatever_their_size(predicted, reference, same):
    from roadmap.core.tasks._numeric import numbers_match
    from roadmap.core.tasks._verify import verify_math

    assert numbers_match(predicted, reference) is same
    assert verify_math(predicted, reference) is same


def test_a_long_integer_answer_keeps_every_digit():
    from roadmap.core.tasks._numeric import extract_numeric_answer, normalize_number

    big = "98765432109876543210987654321098765"
    assert normalize_number(big + ".000") == big
    assert extract_numeric_answer(f"so the total is\n#### {big}") == big
    assert extract_numeric_answer(f"the answer is $\\boxed{{{big}1}}$") == big + "1"
