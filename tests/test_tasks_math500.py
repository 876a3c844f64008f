"""Tests of the math500 task: local sources in the Hub layout, boxed-answer extraction, math-verify checking."""

import json
import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from roadmap.core.tasks import BadRowError, Math500Task, SourceUnavailableError, get_task  # noqa: E402
from roadmap.core.tasks._verify import as_latex, verify_math  # noqa: E402
from roadmap.core.tasks.math500 import last_boxed  # noqa: E402

POLAR = {
    "problem": "Convert the point $(0,3)$ in rectangular coordinates to polar coordinates.  Enter your answer in the "
    "form $(r,\\theta),$ where $r > 0$ and $0 \\le \\theta < 2 \\pi.$",
    "solution": "We have that $r = \\sqrt{0^2 + 3^2} = 3.$  Also, if we draw the line connecting the origin and "
    "$(0,3),$ this line makes an angle of $\\frac{\\pi}{2}$ with the positive $x$-axis.\n\n"
    "Therefore, the polar coordinates are $\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}.$",
    "answer": "\\left( 3, \\frac{\\pi}{2} \\right)",
    "subject": "Precalculus",
    "level": 2,
    "unique_id": "test/precalculus/807.json",
}
FRACTION = {
    "problem": "If $f(x) = \\frac{3x-2}{x-2}$, what is the value of $f(-2) +f(-1)+f(0)$? Express your answer as a "
    "common fraction.",
    "solution": "$f(-2)+f(-1)+f(0)=\\frac{3(-2)-2}{-2-2}+\\frac{3(-1)-2}{-1-2}+\\frac{3(0)-2}{0-2}=\\frac{-8}{-4}"
    "+\\frac{-5}{-3}+\\frac{-2}{-2}=2+\\frac{5}{3}+1=\\boxed{\\frac{14}{3}}$",
    "answer": "\\frac{14}{3}",
    "subject": "Algebra",
    "level": 3,
    "unique_id": "test/algebra/2584.json",
}
HALF = {
    "problem": "A fair coin is flipped once. What is the probability that it lands heads?",
    "solution": "There are two equally likely outcomes.\n\nOne of them is heads, so the probability is "
    "$\\boxed{\\frac{1}{2}}$.",
    "answer": "\\frac{1}{2}",
    "subject": "Counting & Probability",
    "level": 1,
    "unique_id": "test/counting_and_probability/1.json",
}
INTERVAL = {
    "problem": "What is the domain of the function $f(x) = \\sqrt{3-x}+\\frac{1}{x-3}$? Express your answer in "
    "interval notation.",
    "solution": "We need $3-x \\ge 0$, so $x \\le 3$.\n\nWe also need $x \\neq 3$.\n\n"
    "So the domain is $\\boxed{(-\\infty, 3)}$.",
    "answer": "(-\\infty, 3)",
    "subject": "Algebra",
    "level": 4,
}
SQRT = {
    "problem": "Simplify $\\sqrt{242}$.",
    "solution": "Factor 242 as $11^2 \\cdot 2$. Then $\\sqrt{242} = \\sqrt{11^2} \\cdot \\sqrt2 = \\boxed{11\\sqrt2}$.",
    "answer": "11\\sqrt2",
    "subject": "Prealgebra",
    "level": 3,
}
TEXT = {
    "problem": "Evelyn ran 4.5 miles in 1.25 hours, Briana ran 2 miles in 1 hour. Which student has the greatest "
    "average speed?",
    "solution": "Evelyn's speed is $4.5/1.25 = 3.6$ mph.\n\nBriana's speed is 2 mph.\n\nSo $\\boxed{\\text{Evelyn}}$ "
    "is faster.",
    "answer": "\\text{Evelyn}",
    "subject": "Algebra",
    "level": 2,
}
ROWS = [POLAR, FRACTION, HALF, INTERVAL, SQRT, TEXT]
NO_ANSWER = {"problem": "A problem whose answer was lost.", "solution": "It is $\\boxed{5}$.", "answer": ""}


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def filler(k: int) -> list[dict]:
    return [
        {"problem": f"What is ${i}+1$?", "solution": f"${i}+1=\\boxed{{{i + 1}}}$.", "answer": str(i + 1)}
        for i in range(k)
    ]


@pytest.fixture
def task(tmp_path) -> Math500Task:
    return Math500Task(source=write_jsonl(tmp_path / "math500.jsonl", ROWS + filler(30)))


def test_problems_steps_prompt_and_meta(task):
    train, test = task.problems("train"), task.problems("test")
    assert len(train) + len(test) == 36 and train and test
    assert not {p.question for p in train} & {p.question for p in test}
    polar = next(p for p in train + test if p.meta.get("unique_id") == POLAR["unique_id"])
    assert polar.answer == POLAR["answer"]
    assert polar.meta["subject"] == "Precalculus" and polar.meta["level"] == 2
    assert len(polar.steps) == 2 and polar.steps[1].startswith("Therefore")
    assert task.prompt(polar) == f"Problem: {POLAR['problem']}\nSolution:\n"
    ref = task.reference_solution(polar)
    assert ref.endswith("\n\nThe final answer is $\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}$.")
    assert task.split_steps(ref)[:2] == list(polar.steps)


def test_reference_solutions_are_correct(task):
    for p in task.problems("train") + task.problems("test"):
        assert task.is_correct(p, task.reference_solution(p)), p


def test_equivalent_and_wrong_answers(task):
    by_q = {p.question: p for p in task.problems("train") + task.problems("test")}
    half, polar = by_q[HALF["problem"]], by_q[POLAR["problem"]]
    assert task.is_correct(half, "So the answer is $\\boxed{0.5}$.")
    assert task.is_correct(half, "$\\boxed{\\dfrac12}$")
    assert not task.is_correct(half, "$\\boxed{\\frac{1}{3}}$")
    assert task.is_correct(polar, "The final answer is $\\boxed{(3,\\frac{\\pi}{2})}$.")
    assert not task.is_correct(polar, "The final answer is $\\boxed{(3,\\pi)}$.")
    assert task.is_correct(by_q[SQRT["problem"]], "$\\boxed{11\\sqrt{2}}$")
    assert task.is_correct(by_q[INTERVAL["problem"]], "$\\boxed{(-\\infty,3)}$")
    assert not task.is_correct(by_q[INTERVAL["problem"]], "$\\boxed{(-\\infty,3]}$")
    assert task.is_correct(by_q[TEXT["problem"]], "$\\boxed{\\text{Evelyn}}$")
    assert not task.is_correct(by_q[TEXT["problem"]], "$\\boxed{\\text{Briana}}$")
    assert not task.is_correct(half, "the probability is one half")  # no box, no answer


@pytest.mark.parametrize(
    "predicted, reference",
    [("0.5", "\\frac{1}{2}"), ("\\frac12", "\\dfrac{1}{2}"), ("10.0", "10"), ("(3,\\frac{\\pi}{2})", "\\left( 3, \\frac{\\pi}{2} \\right)"),
     ("\\sqrt{12}", "2\\sqrt{3}"), ("[-2, 7]", "[-2,7]"), ("\\$18.90", "18.90")],
)  # fmt: skip
def test_answers_match(predicted, reference):
    assert Math500Task().answers_match(predicted, reference)


@pytest.mark.parametrize("predicted, reference", [("5", "6"), ("3\\sqrt{2}", "4"), ("", "1"), ("(1,2]", "(1,2)")])
def test_answers_differ(predicted, reference):
    assert not Math500Task().answers_match(predicted, reference)


def test_as_latex_wraps_only_bare_answers():
    assert as_latex("\\frac{1}{2}") == "$\\frac{1}{2}$"
    assert as_latex("$x$") == "$x$"
    assert as_latex("\\boxed{3}") == "\\boxed{3}"
    assert as_latex("\\$18.90") == "$\\$18.90$"


@pytest.mark.parametrize(
    "text, expected",
    [("$\\boxed{\\frac{1}{2}}$", "\\frac{1}{2}"), ("\\boxed{1} then \\boxed{\\sqrt{\\frac{a}{b}}}.", "\\sqrt{\\frac{a}{b}}"),
     ("\\boxed{\\{1,2\\}}", "\\{1,2\\}"), ("so $\\boxed 5$.", "5"), ("\\boxed{}", None), ("\\boxed{\\frac{1}{2}", None),
     ("\\boxed{1} and \\boxed{", None), ("no box", None), ("", None)],
)  # fmt: skip
def test_last_boxed(text, expected):
    assert last_boxed(text) == expected


@pytest.mark.parametrize("garbage", ["", "\\boxed{", "\\boxed{}}}{{", "$$$", "\\boxed{\\frac{1}{0}}", "\x00" * 5])
def test_garbage_never_raises(task, garbage):
    p = task.problems("test")[0]
    assert task.is_correct(p, garbage) is False


def test_checking_works_off_the_main_thread(task):
    problems = task.problems("train") + task.problems("test")
    solutions = [(p, task.reference_solution(p)) for p in problems]

    def check(item):
        assert threading.current_thread() is not threading.main_thread()
        p, text = item
        return task.is_correct(p, text), verify_math("0.5", "\\frac{1}{2}")

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(check, solutions))
    assert all(ok and same for ok, same in results)


def test_hub_layout_folder_and_parquet_file_match_jsonl(tmp_path, task):
    folder = tmp_path / "MATH-500"
    folder.mkdir()
    write_jsonl(folder / "test.jsonl", ROWS + filler(30))
    pd.DataFrame(ROWS + filler(30)).to_parquet(tmp_path / "math500.parquet")
    for other in (Math500Task(source=folder), Math500Task(source=tmp_path / "math500.parquet")):
        assert [p.id for p in other.problems("test")] == [p.id for p in task.problems("test")]
        assert other.problems("train") == task.problems("train")


def test_test_fraction_moves_problems_between_splits(tmp_path):
    path = write_jsonl(tmp_path / "m.jsonl", filler(200))
    few = len(Math500Task(source=path, test_fraction=0.1).problems("test"))
    many = len(Math500Task(source=path, test_fraction=0.9).problems("test"))
    assert 5 <= few < 50 < many <= 195
    with pytest.raises(ValueError, match="test_fraction=1.5"):
        Math500Task(test_fraction=1.5)


def test_missing_answer_is_a_bad_row(tmp_path, caplog):
    path = write_jsonl(tmp_path / "m.jsonl", [HALF, NO_ANSWER, {"problem": "No answer column.", "solution": "x"}])
    with pytest.raises(BadRowError, match="row 1 is unusable: column 'answer' is missing or empty"):
        Math500Task(source=path).problems("test")
    caplog.set_level(logging.WARNING)
    task = Math500Task(source=path, on_bad_row="skip")
    assert len(task.problems("train")) + len(task.problems("test")) == 1
    assert "skipped 2 unusable row(s) of 3" in caplog.text


def test_hub_path_and_unreachable_hub(monkeypatch):
    import datasets

    calls = []

    def fake_load_dataset(path, name=None, split=None, **kwargs):
        calls.append((path, name, split))
        return datasets.Dataset.from_list(ROWS)

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    task = get_task("math500")
    assert len(task.problems("train")) + len(task.problems("test")) == len(ROWS)
    assert calls == [("HuggingFaceH4/MATH-500", None, "test")]

    def offline(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'HuggingFaceH4/MATH-500' on the Hub (OfflineModeIsEnabled)")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(SourceUnavailableError, match="MATH-500.*test.jsonl"):
        Math500Task().problems("test")
