"""learning.rl: the rewards a GRPO run trains on (verifier, scorer, shaping) and ScaleRL on a tiny model."""

from __future__ import annotations

import pytest

from learning import RLConfig, grpo_rows, rl_rewards, rl_step, scalerl_config
from roadmap.core import Lengths, StepScorer


class RecordingScorer(StepScorer):
    """A fake PRM that records the problems it was asked about and scores by completion length."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []  # (question, answer)

    def score(self, problem, partial_solutions):
        self.seen.append((problem.question, problem.answer))
        return [min(1.0, len(t) / 100) for t in partial_solutions]


def _call_like_trl(reward, data, completions):
    """Call a reward as GRPOTrainer does: every dataset column but the prompt as a keyword argument."""
    columns = {k: data[k] for k in data.column_names if k != "prompt"}
    return reward(prompts=data["prompt"], completions=completions, completion_ids=[[0] * len(c) for c in completions],
                  **columns)


def test_the_scorer_reward_sees_each_rows_real_question(arith_task):
    problems = arith_task.problems("train", n=3, seed=0)
    data = grpo_rows(arith_task, problems)
    scorer = RecordingScorer()
    rewards, weights = rl_rewards(arith_task, RLConfig(prm_weight=0.5), scorer=scorer)
    assert weights == [1.0, 0.5]
    out = _call_like_trl(rewards[1], data, ["1+2=3\n", "Answer: 7", ""])
    assert scorer.seen == [(p.question, p.answer) for p in problems]
    assert out == [0.06, 0.09, 0.0]
    with pytest.raises(ValueError, match="needs scorer"):
        rl_rewards(arith_task, RLConfig(prm_weight=0.5))


def test_shaping_rewards_join_the_verifier_with_their_weights(arith_task):
    problems = arith_task.problems("train", n=2, seed=0)
    data = grpo_rows(arith_task, problems)
    config = RLConfig(shaping={"format": 0.1, "overlong": 0.5}, lengths=Lengths(rl_completion_tokens=8), overlong_cache=4)
    rewards, weights = rl_rewards(arith_task, config)
    assert [r.__name__ for r in rewards] == ["verifier_arith", "format_arith", "soft_overlong"] and weights == [1.0, 0.1, 0.5]
    right = arith_task.reference_solution(problems[0])
    assert _call_like_trl(rewards[1], data, [right, "@@"]) == [1.0, 0.0]
    assert _call_like_trl(rewards[2], data, ["x" * 4, "x" * 6]) == [0.0, -0.5]  # token counts from completion_ids


@pytest.mark.parametrize(("shaping", "match"), [
    ({"fromat": 0.1}, "unknown reward name\\(s\\) \\['fromat'\\]; known names: \\['format', 'overlong'\\]"),
    (["format"], "must map shaping reward names to weights"),
    ({"format": "high"}, "shaping\\['format'\\]='high' must be a finite number"),
    ({"format": float("nan")}, "must be a finite number"),
])
def test_bad_shaping_is_named(shaping, match):
    with pytest.raises((ValueError, TypeError), match=match):
        RLConfig(shaping=shaping)
    with pytest.raises(ValueError, match="overlong_cache=200"):
        RLConfig(overlong_cache=200, lengths=Lengths(rl_completion_tokens=96))


def test_training_rewards_are_the_weighted_sum_and_the_prm_reads_questions(tiny_dir, arith_task, tmp_path):
    problems = arith_task.problems("train", n=2, seed=2)
    scorer = RecordingScorer()
    config = RLConfig(output_dir=str(tmp_path / "rl"), num_generations=2, prompts_per_step=2, max_steps=1,
                      lengths=Lengths(rl_completion_tokens=8), prm_weight=0.5, shaping={"overlong": 2.0}, overlong_cache=8)
    res = rl_step(tiny_dir, arith_task, problems, config, scorer=scorer)
    terms = res["reward_terms"]
    assert set(terms) == {"verifier_arith", "scorer_arith", "soft_overlong"}
    # every completion has at least one token, so with a cache of the whole length the overlong term is < 0
    assert terms["soft_overlong"][0] < 0
    assert res["reward_curve"][0] == pytest.approx(
        terms["verifier_arith"][0] + 0.5 * terms["scorer_arith"][0] + 2.0 * terms["soft_overlong"][0], abs=1e-5)
    assert len(scorer.seen) == 4 and {q for q, _ in scorer.seen} <= {p.question for p in problems}
    assert {a for _, a in scorer.seen} <= {p.answer for p in problems}


def test_grpo_scalerl_filters_zero_variance_groups_and_retires(tiny_dir, arith_task, tmp_path):
    problems = arith_task.problems("train", n=4, seed=2)
    # a random policy never answers right: every group has zero reward variance and is dropped
    config = scalerl_config(output_dir=str(tmp_path / "rl"), num_generations=2, prompts_per_step=2, max_steps=2,
                            lengths=Lengths(rl_completion_tokens=8), eval_every=1, eval_problems=3)
    res = rl_step(tiny_dir, arith_task, problems, config)
    assert res["steps"] == 2 and res["groups_seen"] >= 2
    assert [p["step"] for p in res["eval_curve"]] == [0, 1, 2]
    # every group is dropped, so nothing is trained on; the sampling still counts as compute
    assert res["eval_curve"][-1]["compute"] > res["eval_curve"][0]["compute"] == 0
    assert res["zero_variance_dropped"] == res["groups_seen"] and res["train_tokens"] == 0
    assert (tmp_path / "rl" / "config.json").exists() and res["retired"] == []
    with pytest.raises(ValueError, match="every problem is retired"):
        rl_step(tiny_dir, arith_task, problems, config, retired={p.id for p in problems})
    with pytest.raises(ValueError, match="loss_type"):
        RLConfig(loss_type="ppo")
