"""Beam search and DVTS: top N/M kept per depth, a perfect scorer finds the best path, DVTS subtrees."""

import pytest
from fakes import BanditPolicy, BanditTask, PathScorer

from roadmap.core import Lengths, StepScorer
from search import BeamConfig, ExpandConfig, beam_search, dvts


def test_beam_keeps_top_n_over_m_by_score():
    class RankScorer(StepScorer):
        """Scores a partial solution by how many L's it has (ties broken by text)."""

        def score(self, problem, texts):
            return [min(1.0, t.count("L") / 10 + (hash(t) % 100) / 10_000) for t in texts]

    task = BanditTask()
    policy = BanditPolicy(depth=3, p_best=0.5)
    scorer = RankScorer()
    res = beam_search(policy, task, [task.problem()], scorer,
                      BeamConfig(n=16, width=4, expand=ExpandConfig(lengths=Lengths(max_steps=5))))[0]
    tree = res.tree
    for depth in (1, 2):
        layer = [n for n in tree.nodes if n.depth == depth and not n.terminal]
        expanded = {n.id for n in layer if tree.children(n.id)}
        ranked = sorted(layer, key=lambda n: -n.reward)[:4]
        assert expanded == {n.id for n in ranked}
    assert res.answer is not None and res.scores == sorted(res.scores, reverse=True)


def test_beam_and_dvts_find_the_best_path_with_a_perfect_scorer():
    task = BanditTask()
    for search in (beam_search, dvts):
        res = search(BanditPolicy(), task, [task.problem(i) for i in range(3)], PathScorer(),
                     BeamConfig(n=16, width=4))
        assert all(r.answer == task.best for r in res)
        assert all(r.usage.sampled_sequences > 0 for r in res)


def test_dvts_subtrees_are_independent():
    task = BanditTask()
    res = dvts(BanditPolicy(), task, [task.problem()], PathScorer(), BeamConfig(n=16, width=4))[0]
    roots = res.tree.children(0)
    assert len(roots) >= 2


def test_bad_beam_config_is_named():
    with pytest.raises(ValueError, match="multiple of width"):
        BeamConfig(n=10, width=4)
    with pytest.raises(ValueError, match="selection"):
        BeamConfig(selection="vote")
