import pytest
from fakes import BanditPolicy, BanditTask, PathScorer

from roadmap.core.types import Tree
from search import BeamConfig, BestOfNConfig, ExpandConfig, MCTSConfig, beam_search, best_of_n, dvts, mcts
from search.best_of_n import best_answer, majority_vote, weighted_vote


def test_votes():
    assert majority_vote(["1", None, "2", "2"]) == "2"
    assert majority_vote([None, None]) is None
    assert weighted_vote(["1", "2", "2"], [0.9, 0.3, 0.4]) == "1"
    assert weighted_vote(["1", "2", "2"], [0.5, 0.3, 0.4]) == "2"
    # an unfinished solution cannot win best-of-N, however well it scores
    assert best_answer([None, "3", "4"], [0.99, 0.2, 0.5]) == "4"
    assert best_answer([None, None], [0.5, 0.4]) is None


def hit_rate(method, seeds=60):
    task = BanditTask()
    return sum(method(task, seed)[0].answer == task.best for seed in range(seeds)) / seeds


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
        for node in tree.nodes:
            kids = tree.children(node.id)
            if kids:
                assert sum(k.visits for k in kids) <= node.visits <= sum(k.visits for k in kids) + 30


def test_mcts_with_rollouts_uses_the_verifier():
    from rewards import VerifierScorer

    task = BanditTask()
    res = mcts(BanditPolicy(p_best=0.5), task, [task.problem()], None,
               MCTSConfig(simulations=60, k=8, evaluation="rollout", seed=1), verifier=VerifierScorer(task))[0]
    assert res.answer == task.best
    with pytest.raises(ValueError, match="verifier"):
        mcts(BanditPolicy(), task, [task.problem()], PathScorer(), MCTSConfig(evaluation="rollout"))


def test_beam_keeps_top_n_over_m_by_score():
    class RankScorer:
        """Scores a partial solution by how many L's it has (ties broken by text)."""

        def score(self, problem, texts):
            return [min(1.0, t.count("L") / 10 + (hash(t) % 100) / 10_000) for t in texts]

    task = BanditTask()
    policy = BanditPolicy(depth=3, p_best=0.5)
    scorer = RankScorer()
    res = beam_search(policy, task, [task.problem()], scorer,
                      BeamConfig(n=16, width=4, expand=ExpandConfig(max_depth=5)))[0]
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
    assert len(roots) >= 2  # several subtrees grew from the prompt


def test_same_seed_same_search_and_trees_serialise():
    task = BanditTask()
    a = mcts(BanditPolicy(), task, [task.problem()], PathScorer(), MCTSConfig(simulations=8, seed=3))[0]
    b = mcts(BanditPolicy(), task, [task.problem()], PathScorer(), MCTSConfig(simulations=8, seed=3))[0]
    assert a.to_dict() == b.to_dict()
    assert Tree.from_dict(a.tree.to_dict()).to_dict() == a.tree.to_dict()


def test_bad_configs_and_scores():
    task = BanditTask()
    with pytest.raises(ValueError, match="multiple of width"):
        BeamConfig(n=10, width=4)
    with pytest.raises(ValueError, match="scorer"):
        best_of_n(BanditPolicy(), task, [task.problem()], None, BestOfNConfig(selection="best"))

    class NaNScorer:
        def score(self, problem, texts):
            return [float("nan")] * len(texts)

    with pytest.raises(ValueError, match="NaN is not a score"):
        best_of_n(BanditPolicy(), task, [task.problem()], NaNScorer(), BestOfNConfig(n=2, selection="best"))


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
    for node in tree.nodes:
        kids = tree.children(node.id)
        if kids and not any(k.terminal for k in kids):
            assert sum(k.prior for k in kids) == pytest.approx(1.0)
