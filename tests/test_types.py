"""roadmap.core.types: Usage arithmetic and shares, the Tree's children index, the StepScorer protocol."""

from __future__ import annotations

import subprocess
import sys

import pytest

from roadmap.core import Problem, StepScorer, Tree, Usage


def test_usage_adds_subtracts_and_adds_in_place():
    a, b = Usage(10, 2, 5, 3, 1), Usage(1, 1, 1, 1, 1)
    assert a + b == Usage(11, 3, 6, 4, 2) and a - b == Usage(9, 1, 4, 2, 0)
    c = a.copy()
    c += b
    assert c == Usage(11, 3, 6, 4, 2) and a == Usage(10, 2, 5, 3, 1)  # the copy moved, not the original


def test_usage_scaled_and_split_by_weights():
    u = Usage(prefill_tokens=100, cached_prefill_tokens=10, generated_tokens=40, forward_passes=8, sampled_sequences=4)
    assert u.scaled(0.25) == Usage(25, 2, 10, 2, 1)  # 2.5 rounds to even
    parts = u.split([1, 3])
    assert parts == [Usage(25, 2, 10, 2, 1), Usage(75, 8, 30, 6, 3)]
    assert sum(parts, Usage()) == u
    assert u.split([0, 0]) == [Usage(), Usage()]
    with pytest.raises(ValueError, match="non-negative"):
        u.split([1, -1])


def _tree() -> Tree:
    t = Tree("p", "Q\n")
    t.add(-1, "")
    t.add(0, "a\n")
    t.add(0, "b\n")
    t.add(1, "c\n", terminal=True)
    return t


def test_tree_children_index_follows_add_and_round_trips():
    t = _tree()
    assert t.child_ids(0) == [1, 2] and t.child_ids(1) == [3] and t.child_ids(3) == []
    assert [n.step for n in t.children(0)] == ["a\n", "b\n"]
    t.add(2, "d\n")
    assert t.child_ids(2) == [4] and t.nodes[4].depth == 2
    back = Tree.from_dict(t.to_dict())
    assert back == t and back.child_ids(0) == [1, 2] and back.child_ids(2) == [4]
    assert set(t.to_dict()) == {"problem_id", "prompt", "nodes"}  # the index is not written
    t.child_ids(0).append(99)  # callers get a copy
    assert t.child_ids(0) == [1, 2]


def test_tree_index_sees_nodes_appended_directly():
    t = _tree()
    extra = Tree("p", "Q\n")
    extra.add(-1, "")
    node = extra.add(0, "x\n")
    node.id, node.parent = len(t.nodes), 2
    t.nodes.append(node)
    assert t.child_ids(2) == [4]


class _Half(StepScorer):
    def __init__(self) -> None:
        self.calls = 0

    def score(self, problem, partial_solutions):
        self.calls += 1
        return [0.5] * len(partial_solutions)


def test_step_scorer_default_score_batch_loops_score():
    p = Problem("a", "q", "1")
    s = _Half()
    assert s.score_batch([p, p, p], [["x"], [], ["y", "z"]]) == [[0.5], [], [0.5, 0.5]]
    assert s.calls == 2  # a problem with no solutions costs no call
    assert isinstance(s, StepScorer)

    class ScoreOnly:
        def score(self, problem, partial_solutions):
            return []

    assert not isinstance(ScoreOnly(), StepScorer)  # score_batch is part of the protocol


def test_core_exports_policy_and_loads_no_torch():
    code = ("import sys, roadmap.core as c; assert c.Policy and c.HFPolicy; "
            "print('torch' in sys.modules, 'transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
