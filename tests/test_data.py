"""Searched trees become training data: SFT rows, solution and step DPO pairs, GRPO prompts."""

from __future__ import annotations

import pytest

from learning.data import exact_value, grpo_rows, sft_rows, solution_pairs, step_pairs
from roadmap.core import StepScorer, Tree


def _row(tree: Tree | None = None, candidates=("1+2=3\nAnswer: 3", "1+2=4\nAnswer: 4", "1+2=3\nAnswer: 3"),
         correct=(True, False, True), pid="p1"):
    return {"problem_id": pid, "question": "1+2", "reference": "3", "prompt": "1+2\n",
            "candidates": list(candidates), "candidate_correct": list(correct), "scores": [],
            "tree": tree.to_dict() if tree else None, "usage": {}}


def _mcts_tree() -> Tree:
    t = Tree("p1", "1+2+4\n")
    t.add(-1, "")
    good = t.add(0, "1+2=3\n", visits=4, value_sum=3.6)          # Q 0.9
    bad = t.add(0, "1+2=4\n", visits=3, value_sum=0.3)           # Q 0.1
    t.add(good.id, "3+4=7\nAnswer: 7", visits=3, value_sum=3.0, terminal=True, answer="7")
    t.add(bad.id, "4+4=8\nAnswer: 8", visits=2, value_sum=0.0, terminal=True, answer="8")
    t.add(0, "1+2=3 \n", visits=1, value_sum=0.85)                # Q 0.85: too close to the best for a pair
    return t


def test_sft_rows_keep_distinct_verified_solutions_up_to_k():
    rows = [_row(), _row(pid="p2", correct=(False, False, False))]
    ds = sft_rows(rows, k=2)
    assert ds["completion"] == ["1+2=3\nAnswer: 3"]  # duplicate removed, wrong ones and p2 dropped
    with pytest.raises(ValueError, match="lacks"):
        sft_rows([{"prompt": "x"}])


def test_solution_pairs_contrast_right_and_wrong():
    ds = solution_pairs([_row()])
    assert len(ds) == 1 and ds[0]["chosen"].endswith("3") and ds[0]["rejected"].endswith("4")


def test_step_pairs_from_mcts_q_values():
    ds = step_pairs([_row(_mcts_tree())], margin=0.3)
    assert len(ds) == 1
    pair = ds[0]
    assert pair["prompt"] == "1+2+4\n"
    assert pair["chosen"] == "1+2=3\n3+4=7\nAnswer: 7"      # the step and its best path to an answer
    assert pair["rejected"] == "1+2=4\n4+4=8\nAnswer: 8"
    assert pair["margin"] == pytest.approx(0.8)
    assert len(step_pairs([_row(_mcts_tree())], margin=0.85)) == 0


def test_exact_step_pairs_overrule_misleading_q_values():
    from roadmap.core.errors import ConfigError, DataError
    from roadmap.core.tasks import get_task

    task = get_task("countdown", min_numbers=3, max_numbers=3, solution_format="path")
    p = task.problems("train", n=1, seed=0)[0]  # 11 11 19 -> 20
    t = Tree(p.id, task.prompt(p))
    t.add(-1, "")
    good = t.add(0, "11/11=1\n", visits=4, value_sum=0.8)     # Q 0.2: rollouts happened to fail
    bad = t.add(0, "11+11=22\n", visits=4, value_sum=3.6)     # Q 0.9, yet 22 19 cannot make 20
    t.add(good.id, "19+1=20\nAnswer: 20", visits=1, value_sum=1.0, terminal=True, answer="20")
    t.add(bad.id, "22-19=3\nAnswer: 3", visits=1, value_sum=0.0, terminal=True, answer="3")
    rows = [_row(t, pid=p.id)]
    by_q = step_pairs(rows, margin=0.3)
    assert len(by_q) == 1 and by_q[0]["chosen"].startswith("11+11=22")
    exact = step_pairs(rows, margin=0.3, value=exact_value(task, [p]))
    assert len(exact) == 1 and exact[0]["margin"] == 1.0
    assert exact[0]["chosen"] == "11/11=1\n19+1=20\nAnswer: 20"
    assert exact[0]["rejected"].startswith("11+11=22")
    with pytest.raises(DataError, match="not among the problems"):
        step_pairs(rows, margin=0.3, value=exact_value(task, []))
    with pytest.raises(ConfigError, match="exact step labels"):
        exact_value(object(), [p])


def test_grpo_rows_carry_answers_questions_and_ids(arith_task):
    problems = arith_task.problems("train", n=3, seed=0)
    ds = grpo_rows(arith_task, problems)
    assert ds["answer"] == [p.answer for p in problems] and ds["prompt"][0] == arith_task.prompt(problems[0])
    assert ds["question"] == [p.question for p in problems] and ds["id"] == [p.id for p in problems]


class _TableScorer(StepScorer):
    """A toy PRM with fixed scores per solution text."""

    table = {"1+2=3\nAnswer: 3": 0.6, "1+2+0=3\nAnswer: 3": 0.1, "1+2=3\n3=3\nAnswer: 3": 0.9}

    def score(self, problem, partial_solutions):
        return [self.table[t] for t in partial_solutions]


def test_sft_rows_rank_and_filter_by_a_process_scorer():
    row = _row(candidates=list(_TableScorer.table), correct=(True, True, True))
    ranked = sft_rows([row], k=3, scorer=_TableScorer())
    assert ranked["completion"] == ["1+2=3\n3=3\nAnswer: 3", "1+2=3\nAnswer: 3", "1+2+0=3\nAnswer: 3"]
    kept = sft_rows([row], k=3, scorer=_TableScorer(), min_score=0.5)
    assert kept["completion"] == ["1+2=3\n3=3\nAnswer: 3", "1+2=3\nAnswer: 3"]
    assert len(sft_rows([row], k=3, scorer=_TableScorer(), min_score=0.95)) == 0
    with pytest.raises(ValueError, match="needs scorer"):
        sft_rows([row], min_score=0.5)
