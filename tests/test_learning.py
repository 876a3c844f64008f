"""Policy updates on a tiny model: expert iteration, tree-DPO and GRPO/ScaleRL move the policy as meant."""

from __future__ import annotations

import pytest

from learning.data import solution_pairs
from learning.expert_iteration import ExpertIterationConfig, expert_iteration_step
from learning.rl import RLConfig, rl_step, scalerl_config
from learning.tree_dpo import TreeDPOConfig, tree_dpo_step
from roadmap.core.policy import HFPolicy


def _rows(arith_task, n=4):
    rows = []
    for p in arith_task.problems("train", n=n, seed=11):
        good = arith_task.reference_solution(p)
        bad = good.replace("Answer: ", "Answer: 1")
        rows.append({"problem_id": p.id, "question": p.question, "reference": p.answer, "prompt": arith_task.prompt(p),
                     "candidates": [good, bad], "candidate_correct": [True, False], "scores": [], "tree": None,
                     "usage": {}})
    return rows


def _margin(policy_dir, rows):
    pol = HFPolicy.from_pretrained(policy_dir)
    good = pol.logprobs([r["prompt"] for r in rows], [r["candidates"][0] for r in rows])
    bad = pol.logprobs([r["prompt"] for r in rows], [r["candidates"][1] for r in rows])
    return sum(good) / len(rows), sum(g - b for g, b in zip(good, bad)) / len(rows)


def test_expert_iteration_raises_the_likelihood_of_verified_solutions(tiny_dir, arith_task, tmp_path):
    rows = _rows(arith_task)
    before, _ = _margin(tiny_dir, rows)
    res = expert_iteration_step(tiny_dir, rows, ExpertIterationConfig(output_dir=str(tmp_path / "ei"), epochs=30,
                                                                      learning_rate=3e-3, batch_size=4))
    after, _ = _margin(tmp_path / "ei", rows)
    assert res["examples"] == 4 and res["train_tokens"] > 0
    assert after > before + 5
    with pytest.raises(ValueError, match="no verified solution"):
        expert_iteration_step(tiny_dir, [{**r, "candidate_correct": [False, False]} for r in rows],
                              ExpertIterationConfig(output_dir=str(tmp_path / "none")))


def test_tree_dpo_widens_the_chosen_rejected_margin(tiny_dir, arith_task, tmp_path):
    rows = _rows(arith_task)
    _, before = _margin(tiny_dir, rows)
    pairs = solution_pairs(rows)
    res = tree_dpo_step(tiny_dir, pairs, TreeDPOConfig(output_dir=str(tmp_path / "dpo"), epochs=20,
                                                       learning_rate=2e-3, batch_size=4))
    _, after = _margin(tmp_path / "dpo", rows)
    assert res["pairs"] == 4 and res["final_loss"] < res["first_loss"]
    assert after > before + 1


def test_grpo_scalerl_filters_zero_variance_groups_and_retires(tiny_dir, arith_task, tmp_path):
    problems = arith_task.problems("train", n=4, seed=2)
    # a random policy never answers right: every group has zero reward variance and is dropped
    config = scalerl_config(output_dir=str(tmp_path / "rl"), num_generations=2, prompts_per_step=2, max_steps=2,
                            max_completion_length=8, eval_every=1, eval_problems=3)
    res = rl_step(tiny_dir, arith_task, problems, config)
    assert res["steps"] == 2 and res["groups_seen"] >= 2
    assert [p["step"] for p in res["eval_curve"]] == [0, 1, 2]
    assert res["eval_curve"][-1]["train_tokens"] > res["eval_curve"][0]["train_tokens"] == 0
    assert res["zero_variance_dropped"] == res["groups_seen"]
    assert (tmp_path / "rl" / "config.json").exists() and res["retired"] == []
    with pytest.raises(ValueError, match="every problem is retired"):
        rl_step(tiny_dir, arith_task, problems, config, retired={p.id for p in problems})
    with pytest.raises(ValueError, match="loss_type"):
        RLConfig(loss_type="ppo")
