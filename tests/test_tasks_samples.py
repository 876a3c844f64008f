"""The sample files behind benchmarks/tasks_check.py stay valid: each row loads and its reference is correct."""

import os
import re
from fractions import Fraction
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from roadmap.core.tasks import GSM8KTask, Math500Task  # noqa: E402
from roadmap.core.tasks._source import read_file  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "benchmarks" / "data"
GSM8K = DATA / "gsm8k_sample.jsonl"
MATH500 = DATA / "math500_sample.jsonl"
CALCULATOR = re.compile(r"<<([^<>=]*)=([^<>]*)>>")
ARITHMETIC = re.compile(r"[\d.+\-*/() ]+")


def exact(expr: str) -> Fraction:
    """The exact value of a calculator annotation's arithmetic ("0.2*50", "+30+46")."""
    assert ARITHMETIC.fullmatch(expr), expr
    # safe to eval: only digits, ".", "+", "-", "*", "/", "(", ")" and spaces, each number an exact Fraction
    return eval(re.sub(r"\d*\.\d+|\d+", lambda m: f"F('{m.group()}')", expr), {"F": Fraction})


def all_problems(task):
    train, test = task.problems("train"), task.problems("test")
    assert train and test and not {p.question for p in train} & {p.question for p in test}
    return train + test


def test_gsm8k_sample_rows_are_valid():
    rows = read_file(GSM8K)
    assert len(rows) >= 25 and all(set(r) == {"question", "answer"} for r in rows)
    for r in rows:  # GSM8K's calculator annotations hold correct arithmetic
        for expr, value in CALCULATOR.findall(r["answer"]):
            assert exact(expr) == Fraction(value), (r["question"][:50], expr, value)
    finals = [r["answer"].rsplit("#### ", 1)[1] for r in rows]
    assert any("," in f for f in finals) and any(f.startswith("-") for f in finals) and any("." in f for f in finals)
    task = GSM8KTask(source=GSM8K)
    problems = all_problems(task)
    assert len(problems) == len(rows)
    for p in problems:
        assert task.is_correct(p, task.reference_solution(p)), p
        assert task.is_correct(p, rows[p.meta["row"]]["answer"]), p  # the row's own worked solution


def test_math500_sample_rows_are_valid():
    rows = read_file(MATH500)
    assert len(rows) >= 25
    for r in rows:
        assert set(r) == {"problem", "solution", "answer", "subject", "level", "unique_id"}
        assert isinstance(r["level"], int) and 1 <= r["level"] <= 5
        assert re.fullmatch(r"test/[a-z_]+/\d+\.json", r["unique_id"]), r["unique_id"]
    assert len({r["unique_id"] for r in rows}) == len(rows)
    task = Math500Task(source=MATH500)
    problems = all_problems(task)
    assert len(problems) == len(rows)
    for p in problems:
        assert task.is_correct(p, task.reference_solution(p)), p
        assert task.is_correct(p, "\n\n".join(p.steps)), p  # the row's own solution boxes the answer
