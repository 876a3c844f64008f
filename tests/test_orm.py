"""rewards.orm: outcome rows labelled by the task's checker, and an ORM that learns to tell right from wrong."""

from __future__ import annotations

import json
import random

import pytest

from rewards import PRMScorer, ProcessRewardModel, RewardModelConfig, orm_dataset, orm_dataset_from_labels, train_orm


def test_orm_rows_are_whole_solutions_labelled_by_the_checker(arith_task):
    p = arith_task.make_problem("1+2")
    right, wrong = arith_task.reference_solution(p), "1+2=4\nAnswer: 4"
    ds = orm_dataset(arith_task, [p], [[right, wrong, ""]])
    assert ds["steps"] == [[right], [wrong], []]  # an empty solution has no step to score
    assert ds["hard_labels"] == [[1.0], [0.0], []] and ds["correct"] == [True, False, False]
    assert set(ds["prompt"]) == {arith_task.prompt(p)} and set(ds["problem_id"]) == {p.id}
    with pytest.raises(ValueError, match="one list each"):
        orm_dataset(arith_task, [p], [])


def test_orm_rows_from_step_labels_join_the_steps():
    from datasets import Dataset

    labels = Dataset.from_dict({"problem_id": ["a"], "prompt": ["1+2\n"], "steps": [["1+2=3", "Answer: 3"]],
                                "correct": [True]})
    ds = orm_dataset_from_labels(labels)
    assert ds["steps"] == [["1+2=3\nAnswer: 3"]] and ds["soft_labels"] == [[1.0]]


def test_orm_learns_to_rank_right_above_wrong(tiny_dir, tmp_path, arith_task):
    p = arith_task.make_problem("1+1")
    rng = random.Random(0)

    def solution(right: bool) -> str:
        steps = "1+1=2\n" * rng.randint(1, 3)
        return steps + ("Answer: 2" if right else "Answer: 3")

    sols = [solution(i % 2 == 0) for i in range(120)]
    out = tmp_path / "orm"
    result = train_orm(orm_dataset(arith_task, [p], [sols]), tiny_dir,
                       RewardModelConfig(output_dir=str(out), epochs=4, batch_size=16, learning_rate=3e-3, logging_steps=4,
                                         labels="hard", readout="step_end", eval_fraction=0.0))
    assert result["final_loss"] < 0.6 * result["first_loss"]
    assert json.loads((out / "reward_model.json").read_text())["kind"] == "orm"
    scorer = PRMScorer(ProcessRewardModel.from_pretrained(out), arith_task, aggregation="last")
    right, wrong = scorer.score(p, ["1+1=2\n1+1=2\nAnswer: 2", "1+1=2\n1+1=2\nAnswer: 3"])
    assert right > 0.5 > wrong
