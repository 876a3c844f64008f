"""benchmarks/rewards_quality.py's measures of automatic labels against a task's exact step checker."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from roadmap.core.tasks import get_task

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("rewards_quality", ROOT / "benchmarks" / "rewards_quality.py")
rq = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rq)


def test_labels_are_checked_against_countdown_exact_values():
    task = get_task("countdown", min_numbers=3, max_numbers=3, solution_format="path")
    p = task.problems("train", n=1, seed=0)[0]  # 11 11 19 -> 20
    right = task.split_steps(task.reference_solution(p))  # 11/11=1, 19+1=20, Answer: 20
    wrong = ["11+11=22", "22+19=41", "Answer: 41"]  # the first move already leaves 22 19: unsolvable
    assert task.step_labels(p, "\n".join(wrong)) == [False, False, False]
    ds = [  # a completer that missed the right first step and trusted the wrong one
        {"problem_id": p.id, "steps": right, "hard_labels": [0.0, 1.0, 1.0], "soft_labels": [0.0, 0.5, 1.0]},
        {"problem_id": p.id, "steps": wrong, "hard_labels": [1.0, 0.0, 0.0], "soft_labels": [0.25, 0.0, 0.0]},
        {"problem_id": "another problem", "steps": wrong, "hard_labels": [1.0, 1.0, 1.0],
         "soft_labels": [1.0, 1.0, 1.0]},  # not among the problems: skipped
    ]
    got = rq.check_labels(task, [p], ds)
    assert got["steps"] == 6 and got["agreement"] == 4 / 6
    assert got["false_negative_steps"] == 1 and got["false_positive_steps"] == 1
    assert got["exact_positive_share"] == 0.5
    # of the 9 (right, wrong) step pairs the soft labels order 6 rightly and tie 2 (0.0 against 0.0)
    assert got["soft_label_auc"] == pytest.approx(7 / 9)


def test_best_index_skips_solutions_without_an_answer():
    assert rq.best_index(["1", None, "3"], [0.2, 0.9, 0.5]) == 2
    assert rq.best_index([None, None], [0.2, 0.9]) is None
    assert rq.best_index(["1", "2"], [0.5, 0.5]) == 0
