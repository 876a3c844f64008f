"""learning.expert_iteration on a tiny model: fine-tuning on verified solutions raises their likelihood,
and one update on a warm-started policy does not undo the warm start.

The quickstart's update once cost six points of held-out accuracy in two optimizer steps: a
fresh AdamW at a learning rate several times the one the warm start ended at jolts a converged
policy, whatever the data (docs/benchmarks/learning.md, "What one update does"). These tests warm-start a tiny
policy for a few seconds, learn once from its own verified solutions, and read the loss on
held-out *reference* solutions.
"""

from __future__ import annotations

import pytest
from fakes import arith_rows, likelihood_margin

from learning import ExpertIterationConfig, expert_iteration_step
from policy_init.sft import SFTWarmStartConfig, warm_start
from roadmap.app.quickstart import QuickstartConfig
from roadmap.core import HFPolicy
from roadmap.core.tasks import get_task


def test_expert_iteration_raises_the_likelihood_of_verified_solutions(tiny_dir, arith_task, tmp_path):
    rows = arith_rows(arith_task)
    before, _ = likelihood_margin(tiny_dir, rows)
    res = expert_iteration_step(tiny_dir, rows, ExpertIterationConfig(output_dir=str(tmp_path / "ei"), epochs=30,
                                                                      learning_rate=3e-3, batch_size=4))
    after, _ = likelihood_margin(tmp_path / "ei", rows)
    assert res["examples"] == 4 and res["train_tokens"] > 0
    assert after > before + 5
    with pytest.raises(ValueError, match="no verified solution"):
        expert_iteration_step(tiny_dir, [{**r, "candidate_correct": [False, False]} for r in rows],
                              ExpertIterationConfig(output_dir=str(tmp_path / "none")))


@pytest.fixture(scope="module")
def easy():
    return get_task("arith", min_operands=2, max_operands=3, digits=1)


@pytest.fixture(scope="module")
def warm(tiny_dir, easy, tmp_path_factory):
    out = tmp_path_factory.mktemp("warm") / "policy"
    warm_start(tiny_dir, easy, SFTWarmStartConfig(output_dir=str(out), num_problems=3200, batch_size=32, epochs=4,
                                                  learning_rate=3e-3, logging_steps=50))
    return out


def _reference_nll(policy_dir, task, problems) -> float:
    lps = HFPolicy.from_pretrained(policy_dir).token_logprobs([task.prompt(p) for p in problems],
                                                               [task.reference_solution(p) for p in problems])
    return -sum(map(sum, lps)) / sum(map(len, lps))


def _verified_rows(policy_dir, task, n=192):
    problems = task.problems("train", n=n, seed=5)
    samples = HFPolicy.from_pretrained(policy_dir).sample([task.prompt(p) for p in problems], n=2,
                                                          temperature=0.3, max_new_tokens=48, seed=0)
    rows = []
    for p, comps in zip(problems, samples):
        texts = [c.text for c in comps]
        rows.append({"problem_id": p.id, "question": p.question, "reference": p.answer, "prompt": task.prompt(p),
                     "candidates": texts, "candidate_correct": [task.is_correct(p, t) for t in texts],
                     "scores": [], "tree": None, "usage": {}})
    return rows


def test_one_update_on_verified_solutions_does_not_raise_the_held_out_loss(warm, easy, tmp_path):
    held_out = easy.problems("test", n=64, seed=0)
    rows = _verified_rows(warm, easy)
    assert sum(any(r["candidate_correct"]) for r in rows) >= 24  # the warm start verifies enough to learn from
    before = _reference_nll(warm, easy, held_out)

    # the quickstart's rule: the update's peak learning rate stays below the one the warm start ended at
    # (3e-5 against 1e-3 x 0.05 = 5e-5), with the quickstart's epochs
    recipe = QuickstartConfig()
    assert recipe.loop_learning_rate < SFTWarmStartConfig().learning_rate * SFTWarmStartConfig().min_lr_ratio
    safe = ExpertIterationConfig(output_dir=str(tmp_path / "safe"), solutions_per_problem=1,
                                 epochs=recipe.loop_epochs, learning_rate=recipe.loop_learning_rate, batch_size=64)
    res = expert_iteration_step(warm, rows, safe)
    assert res["steps"] >= 2
    assert _reference_nll(tmp_path / "safe", easy, held_out) <= before

    # the cause, shown: the same data at a learning rate far above where the warm start ended raises it
    jolt = ExpertIterationConfig(output_dir=str(tmp_path / "jolt"), solutions_per_problem=1,
                                 epochs=recipe.loop_epochs, learning_rate=1e-2, batch_size=64)
    expert_iteration_step(warm, rows, jolt)
    assert _reference_nll(tmp_path / "jolt", easy, held_out) > before * 1.5
