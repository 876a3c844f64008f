"""The long_cot learner on a tiny model: one update from a trees file raises the likelihood of its traces."""

from __future__ import annotations

import pytest
from test_long_cot import CORRECTED, arith_tree, row

from learning import LongCoTConfig, get_learner
from learning.registry import LearnInputs, NothingToLearn
from roadmap.core import HFPolicy
from search import write_trees


def test_long_cot_learner_trains_on_traces_and_counts_its_tokens(tiny_dir, tmp_path):
    task, problem, tree = arith_tree()
    trees = write_trees([row(task, problem, tree)] * 4, tmp_path / "trees.jsonl")
    inputs = LearnInputs(policy_dir=tiny_dir, output_dir=tmp_path / "out", task=task, trees=trees,
                         problems=lambda: [], scorer=None, state_dir=tmp_path, previous_state_dir=tmp_path, seed=0)
    config = LongCoTConfig(output_dir=str(tmp_path / "out"), solutions_per_problem=1, clean=0, correction=1,
                           backtrack=0, epochs=30, learning_rate=3e-3, batch_size=4)
    before = HFPolicy.from_pretrained(tiny_dir).logprobs([tree.prompt], [CORRECTED])[0]
    res = get_learner("long_cot").run(inputs, config)
    after = HFPolicy.from_pretrained(tmp_path / "out").logprobs([tree.prompt], [CORRECTED])[0]
    assert res["trace_kinds"] == {"correction": 4} and res["examples"] == 4 and res["train_tokens"] > 0
    assert after > before + 20
    empty = write_trees([{**row(task, problem, tree), "tree": None}], tmp_path / "none.jsonl")
    with pytest.raises(NothingToLearn, match="no path"):
        get_learner("long_cot").run(LearnInputs(**{**inputs.__dict__, "trees": empty}), config)
