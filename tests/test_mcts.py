"""MCTS on the bandit tree: it beats best-of-N at equal budget, backs up visits, widens, finishes paths."""

import pytest
from fakes import BanditPolicy, BanditTask, PathScorer, hit_rate

from roadmap.core.types import Tree
from search import BestOfNConfig, MCTSConfig, best_of_n, mcts


def test_mcts_beats_best_of_n_at_equal_budget():
    def run_bon(task, seed):
        return best_of_n(BanditPolicy(), task, [task.problem()], PathScorer(), BestOfNConfig(n=96, selection="best",
                                                                                                seed=seed))

    def run_mcts(task, seed):
        policy = BanditPolicy()
        # 11 x 8 expansions, plus one sequence when the chosen path must be finished: within 96
        res = mcts(policy, task, [task.problem()], PathScorer(), MCTSConfig(simulations=11, k=8, seed=seed))
        assert policy.usage.sampled_sequences <= 96
        return res

    bon, tree_search = hit_rate(run_bon), hit_rate(run_mcts)
    assert tree_search > bon + 0.1, (tree_search, bon)


def test_mcts_finds_best_leaf_with_enough_simulations():
    task = BanditTask()
    for seed in range(10):
        res = mcts(BanditPolicy(), task, [task.problem()], PathScorer(), MCTSConfig(simulations=30, k=16, seed=seed))[0]
        assert res.answer == task.best
        tree = res.tree
        # visits add up: a node's visits are its own evaluations plus its children's
        inner = [n for n in tree.nodes if tree.children(n.id)]
        assert inner  # the root at least was expanded
        for node in inner:
            kids = tree.children(node.id)
            assert sum(k.visits for k in kids) <= node.visits <= sum(k.visits for k in kids) + 30


def test_mcts_with_rollouts_uses_the_verifier():
    from rewards import VerifierScorer

    task = BanditTask()
    res = mcts(BanditPolicy(p_best=0.5), task, [task.problem()], None,
               MCTSConfig(simulations=60, k=8, evaluation="rollout", seed=1), verifier=VerifierScorer(task))[0]
    assert res.answer == task.best
    with pytest.raises(ValueError, match="verifier"):
        mcts(BanditPolicy(), task, [task.problem()], PathScorer(), MCTSConfig(evaluation="rollout"))


def test_same_seed_same_search_and_trees_serialise():
    task = BanditTask()
    a = mcts(BanditPolicy(), task, [task.problem()], PathScorer(), MCTSConfig(simulations=8, seed=3))[0]
    b = mcts(BanditPolicy(), task, [task.problem()], PathScorer(), MCTSConfig(simulations=8, seed=3))[0]
    assert a.to_dict() == b.to_dict()
    assert Tree.from_dict(a.tree.to_dict()).to_dict() == a.tree.to_dict()


def test_mcts_finishes_an_unfinished_most_visited_path():
    task = BanditTask()
    policy = BanditPolicy()
    res = mcts(policy, task, [task.problem()], PathScorer(), MCTSConfig(simulations=2, k=4, seed=0))[0]
    assert res.answer is not None and res.candidates  # two steps deep, yet an answer
    finished = [n for n in res.tree.nodes if n.terminal]
    assert len(finished) == 1 and finished[0].answer == res.answer
    assert policy.usage.sampled_sequences == 2 * 4 + 1 == res.usage.sampled_sequences
    bare = mcts(BanditPolicy(), task, [task.problem()], PathScorer(), MCTSConfig(simulations=2, k=4, complete=False))
    assert bare[0].answer is None


def test_progressive_widening_retries_a_node_whose_children_all_failed():
    # the right step has probability 0.15: two samples per node usually miss it, and without
    # widening MCTS can only backtrack to siblings that face the same step
    def run(widen):
        def go(task, seed):
            return mcts(BanditPolicy(p_best=0.15), task, [task.problem()], PathScorer(),
                        MCTSConfig(simulations=40, k=2, widen_below=widen, seed=seed))
        return go

    plain, widened = hit_rate(run(None), seeds=20), hit_rate(run(0.5), seeds=20)
    assert widened > plain + 0.3, (widened, plain)
    res = mcts(BanditPolicy(p_best=0.15), BanditTask(), [BanditTask().problem()], PathScorer(),
               MCTSConfig(simulations=40, k=2, widen_below=0.5, max_children=6, seed=0))[0]
    tree = res.tree
    assert max(len(tree.children(n.id)) for n in tree.nodes) <= 6 + 1  # + the finishing sequence
    # a node's children's priors sum to one, widened or not (nodes with a finished child aside:
    # the finishing sequence has no prior)
    families = [tree.children(n.id) for n in tree.nodes]
    families = [kids for kids in families if kids and not any(k.terminal for k in kids)]
    assert families
    for kids in families:
        assert sum(k.prior for k in kids) == pytest.approx(1.0)
