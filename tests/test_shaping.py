import math

import pytest

from rewards import (
    VerifierScorer,
    get_format_reward,
    get_scorer_reward,
    get_soft_overlong_reward,
    implicit_step_rewards,
    potential_shaping,
    scorer_potentials,
)
from roadmap.core import StepScorer


def test_potential_shaping_telescopes():
    rewards = [0.0, 0.0, 1.0]
    phi = [0.2, 0.5, 0.4, 0.9]
    shaped = potential_shaping(rewards, phi, gamma=1.0)
    assert shaped[0] == pytest.approx(0.3) and shaped[1] == pytest.approx(-0.1)
    assert shaped[2] == pytest.approx(1.0 - 0.4)  # terminal potential counts as 0
    assert sum(shaped) == pytest.approx(sum(rewards) - phi[0])
    assert potential_shaping([0.0], [0.5, 0.7], gamma=0.9, terminal=False) == [pytest.approx(0.9 * 0.7 - 0.5)]


def test_potential_shaping_rejects_bad_input():
    with pytest.raises(ValueError, match="one potential per state"):
        potential_shaping([0.0, 1.0], [0.1, 0.2])
    with pytest.raises(ValueError, match="NaN"):
        potential_shaping([1.0], [float("nan"), 0.5])


def test_scorer_potentials_use_step_prefixes(arith_task):
    p = arith_task.make_problem("1+2+3")
    phi = scorer_potentials(VerifierScorer(arith_task), arith_task, p, ["1+2=3", "3+3=6", "Answer: 6"], initial=0.5)
    assert phi == [0.5, 0.0, 0.0, 1.0]


def test_implicit_step_rewards(scripted_policy):
    class Fixed:
        def __init__(self, lp):
            self.lp = lp
            self.seen = []

        def logprobs(self, prefixes, continuations):
            self.seen += list(zip(prefixes, continuations))
            return [self.lp * len(c) for c in continuations]

    pol, ref = Fixed(-1.0), Fixed(-2.0)
    r = implicit_step_rewards(pol, ref, "Q\n", ["ab", "c"], beta=0.5)
    assert r == [pytest.approx(0.5 * 3), pytest.approx(0.5 * 2)]
    assert pol.seen == [("Q\n", "ab\n"), ("Q\nab\n", "c\n")]
    assert implicit_step_rewards(pol, ref, "Q\n", []) == []


def test_format_reward(arith_task):
    f = get_format_reward(arith_task, reward=1.0, penalty=-1.0)
    assert f(["q"] * 4, ["1+2=3\nAnswer: 3", "1+2=3", "", "Answer: x"]) == [1.0, -1.0, -1.0, -1.0]


def test_soft_overlong_reward():
    f = get_soft_overlong_reward(10, 4)
    ids = [[0] * n for n in (5, 6, 8, 10, 12)]
    assert f(["q"] * 5, ["x"] * 5, completion_ids=ids) == [0.0, 0.0, -0.5, -1.0, -1.0]
    assert f(["q"], ["x" * 8]) == [-0.5]  # characters without token ids
    with pytest.raises(ValueError, match="soft_cache_length"):
        get_soft_overlong_reward(10, 0)


def test_scorer_reward_maps_nan_to_none(arith_task):
    class NaNScorer(StepScorer):
        def score(self, problem, texts):
            return [float("nan") if "?" in t else 0.25 for t in texts]

    f = get_scorer_reward(NaNScorer(), arith_task)
    assert f(["q", "q"], ["1?", "1"], answer=["1", "1"], question=["1+0", "1+0"]) == [None, 0.25]
    g = get_scorer_reward(VerifierScorer(arith_task), arith_task)
    assert g(["q"], ["Answer: 1"], answer=["1"], question=["1+0"]) == [1.0]
    assert not math.isnan(g(["q"], [""], answer=["1"], question=["x"])[0])


def test_scorer_reward_needs_its_columns_and_batches_across_completions(arith_task):
    class Batched(StepScorer):
        def score(self, problem, texts):
            raise AssertionError("score_batch should be used")

        def score_batch(self, problems, solutions):
            self.questions = [p.question for p in problems]
            return [[0.5] * len(s) for s in solutions]

    scorer = Batched()
    f = get_scorer_reward(scorer, arith_task)
    assert f(["q", "q"], ["1", "2"], answer=["1", "2"], question=["1+0", "1+1"]) == [0.5, 0.5]
    assert scorer.questions == ["1+0", "1+1"]
    with pytest.raises(KeyError, match="column 'question'"):
        f(["q"], ["1"], answer=["1"])
    assert get_scorer_reward(scorer, arith_task, question_column=None)(["q"], ["1"], answer=["1"]) == [0.5]
    with pytest.raises(TypeError, match="not a StepScorer"):
        get_scorer_reward(object(), arith_task)


def test_format_reward_does_not_hide_a_broken_task(arith_task):
    class Broken(type(arith_task)):
        def extract_answer(self, text):
            raise RuntimeError("bug in the task")

    with pytest.raises(RuntimeError, match="bug in the task"):
        get_format_reward(Broken())([""], ["1+1=2\nAnswer: 2"])
