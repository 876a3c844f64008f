"""search.expand: one batched expansion with merged duplicates and priors, the scorer call, compute shares."""

from __future__ import annotations

import pytest
from fakes import BanditPolicy, BanditTask

from roadmap.core import StepScorer, Usage
from search.expand import ExpandConfig, expand, new_tree, score_many, share_usage


def test_expand_merges_duplicate_steps_and_normalises_priors():
    task = BanditTask()
    trees = [new_tree(task, task.problem(i)) for i in range(2)]
    policy = BanditPolicy(p_best=0.5)
    kids, spent = expand(policy, task, [(t, 0) for t in trees], 8, ExpandConfig(), seed=0)
    assert policy.calls == 1  # every frontier node in one policy call
    for tree, new in zip(trees, kids):
        assert sorted(tree.nodes[c].step for c in new) == ["L\n", "R\n"]  # 8 samples, two distinct steps
        assert tree.child_ids(0) == new
        assert sum(tree.nodes[c].prior for c in new) == pytest.approx(1.0)
    assert spent.sampled_sequences == 16 and spent == policy.usage
    with pytest.raises(ValueError, match="k=0"):
        expand(policy, task, [(trees[0], 0)], 0, ExpandConfig())


class _Fixed(StepScorer):
    def __init__(self, value) -> None:
        self.value = value

    def score(self, problem, partial_solutions):
        return [self.value] * len(partial_solutions)


def test_score_many_checks_scores_and_the_protocol():
    task = BanditTask()
    problems = [task.problem(0), task.problem(1)]
    assert score_many(_Fixed(0.25), problems, [["L\n"], []]) == [[0.25], []]
    for bad in (float("nan"), 1.5, -0.1):
        with pytest.raises(ValueError, match="must return numbers in \\[0, 1\\]"):
            score_many(_Fixed(bad), problems, [["L\n"], ["R\n"]])

    class Short(_Fixed):
        def score(self, problem, partial_solutions):
            return [0.5]

    with pytest.raises(ValueError, match="returned 1 scores for 2 solutions"):
        score_many(Short(0.5), problems[:1], [["L\n", "R\n"]])

    class ScoreOnly:
        def score(self, problem, partial_solutions):
            return [0.5] * len(partial_solutions)

    with pytest.raises(TypeError, match="subclass roadmap.core.StepScorer"):
        score_many(ScoreOnly(), problems, [["L\n"], []])


def test_score_many_uses_a_scorers_own_batching():
    class Batched(_Fixed):
        def score_batch(self, problems, solutions):
            self.batched = [len(s) for s in solutions]
            return [[0.75] * len(s) for s in solutions]

    scorer = Batched(0.0)
    task = BanditTask()
    assert score_many(scorer, [task.problem(0), task.problem(1)], [["a", "b"], ["c"]]) == [[0.75, 0.75], [0.75]]
    assert scorer.batched == [2, 1]


def test_share_usage_adds_shares_in_place():
    usage = [Usage(generated_tokens=1), Usage()]
    share_usage(usage, Usage(prefill_tokens=30, generated_tokens=12, forward_passes=3), [2, 1])
    assert usage == [Usage(prefill_tokens=20, generated_tokens=9, forward_passes=2), Usage(10, 0, 4, 1, 0)]
