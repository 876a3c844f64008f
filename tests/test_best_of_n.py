"""Best-of-N: votes, best-by-score, errors, and the per-problem share of a batched call's compute."""

import pytest
from fakes import BanditPolicy, BanditTask, PathScorer

from roadmap.core import StepScorer
from search import BestOfNConfig, best_answer, best_of_n, majority_vote, sample_candidates, weighted_vote


def test_votes():
    assert majority_vote(["1", None, "2", "2"]) == "2"
    assert majority_vote([None, None]) is None
    assert weighted_vote(["1", "2", "2"], [0.9, 0.3, 0.4]) == "1"
    assert weighted_vote(["1", "2", "2"], [0.5, 0.3, 0.4]) == "2"
    # an unfinished solution cannot win best-of-N, however well it scores
    assert best_answer([None, "3", "4"], [0.99, 0.2, 0.5]) == "4"
    assert best_answer([None, None], [0.5, 0.4]) is None


def test_bad_configs_and_scores():
    task = BanditTask()
    with pytest.raises(ValueError, match="scorer"):
        best_of_n(BanditPolicy(), task, [task.problem()], None, BestOfNConfig(selection="best"))
    with pytest.raises(ValueError, match="selection"):
        BestOfNConfig(selection="vote")

    class NaNScorer(StepScorer):
        def score(self, problem, texts):
            return [float("nan")] * len(texts)

    with pytest.raises(ValueError, match="NaN is not a score"):
        best_of_n(BanditPolicy(), task, [task.problem()], NaNScorer(), BestOfNConfig(n=2, selection="best"))


def test_usage_is_exact_per_problem_and_shares_the_batch():
    task = BanditTask()
    policy = BanditPolicy(depth=3)
    problems = [task.problem(i) for i in range(3)]
    res = sample_candidates(policy, task, problems, BestOfNConfig(n=4))
    assert [r.usage.sampled_sequences for r in res] == [4, 4, 4]
    assert sum(r.usage.generated_tokens for r in res) == policy.usage.generated_tokens
    # prefill and forward passes of the one batched call are shared out by generated tokens
    assert sum(r.usage.prefill_tokens for r in res) == pytest.approx(policy.usage.prefill_tokens, abs=2)
    assert sum(r.usage.forward_passes for r in res) == pytest.approx(policy.usage.forward_passes, abs=2)


def test_best_picks_the_top_scored_answer():
    task = BanditTask("LLL")
    res = best_of_n(BanditPolicy(depth=3, p_best=0.5), task, [task.problem()], PathScorer("LLL"),
                    BestOfNConfig(n=32, selection="best"))[0]
    assert res.answer == "LLL" and res.scores == sorted(res.scores, reverse=True) and res.scores[0] == 1.0
