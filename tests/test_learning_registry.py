"""learning.registry: a learner registered once is checked by the recipe and run by the loop."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from learning import LEARNERS, NothingToLearn, get_learner, register_learner
from roadmap.app.loop import LoopConfig, RecipeError, run_loop


@dataclass
class ToyConfig:
    """A learner config as a user would write one."""

    output_dir: str = field(default="toy-policy")
    knob: int = field(default=1)


@pytest.fixture
def toy_learner():
    calls: list = []

    def toy(inputs, config: ToyConfig) -> dict:
        calls.append((inputs, config))
        if config.knob == 0:
            raise NothingToLearn("knob is 0")
        shutil.copytree(inputs.policy_dir, inputs.output_dir)
        return {"train_tokens": 7 * config.knob, "steps": 1, "losses": [1.0]}

    register_learner("toy", ToyConfig, searches=False)(toy)
    try:
        yield calls
    finally:
        del LEARNERS["toy"]


def test_a_registered_learner_is_validated_and_run_by_the_loop(toy_learner, tiny_dir, tmp_path):
    with pytest.raises(RecipeError, match=r"learn \(algorithm toy: ToyConfig\): unknown keys \['knbo'\] \(did you mean 'knob'\?\)"):
        LoopConfig(policy=str(tiny_dir), learn={"algorithm": "toy", "knbo": 2})
    with pytest.raises(RecipeError, match="learn.knob='2' is a string; it must be an int"):
        LoopConfig(policy=str(tiny_dir), learn={"algorithm": "toy", "knob": "2"})

    run = tmp_path / "run"
    config = LoopConfig(policy=str(tiny_dir), iterations=2, train_problems=3, eval_problems=4, batch_size=8,
                        learn={"algorithm": "toy", "knob": 2})
    result = run_loop(config, run, say=lambda _: None)
    assert [r["learn_tokens"] for r in result["iterations"]] == [0, 14, 14]
    (first, cfg1), (second, _) = toy_learner
    assert cfg1 == ToyConfig(output_dir=str(run / "iter_1" / "policy"), knob=2)
    assert first.policy_dir == Path(tiny_dir) and second.policy_dir == run / "iter_1" / "policy"
    assert first.trees is None and not (run / "iter_1" / "search").exists()  # a learner that does not search
    assert first.scorer is None  # the recipe has no PRM
    assert len(first.problems()) == 3 and (first.state_dir, first.previous_state_dir) == (run / "iter_1", run / "iter_0")
    assert "losses" not in json.loads((run / "iter_1" / "learn.done.json").read_text())


def test_a_learner_with_nothing_to_learn_carries_the_policy_over(toy_learner, tiny_dir, tmp_path):
    run = tmp_path / "run"
    config = LoopConfig(policy=str(tiny_dir), iterations=1, train_problems=2, eval_problems=4, batch_size=8,
                        learn={"algorithm": "toy", "knob": 0})
    result = run_loop(config, run, say=lambda _: None)
    learned = json.loads((run / "iter_1" / "learn.done.json").read_text())
    assert learned["skipped"] == "knob is 0" and learned["train_tokens"] == 0
    assert (run / "iter_1" / "policy" / "config.json").read_text() == (Path(tiny_dir) / "config.json").read_text()
    assert result["iterations"][1]["accuracy"] == result["iterations"][0]["accuracy"]


def test_the_registry_names_its_learners_and_refuses_a_second_under_one_name():
    assert tuple(LEARNERS) == ("expert_iteration", "tree_dpo", "grpo", "long_cot")
    assert [get_learner(n).searches for n in LEARNERS] == [True, True, False, True]
    with pytest.raises(ValueError, match=r"learn.algorithm='ppo' is unknown; use one of \('expert_iteration'"):
        get_learner("ppo")
    with pytest.raises(ValueError, match="already registered"):
        register_learner("grpo", ToyConfig)(lambda inputs, config: {})


def test_tree_dpo_with_no_pair_has_nothing_to_learn(tiny_dir, arith_task, tmp_path):
    from fakes import arith_rows

    from learning.registry import LearnInputs
    from learning.tree_dpo import TreeDPOConfig
    from search.trees import write_trees

    # every candidate verified and no tree: no chosen/rejected pair exists
    rows = [{**r, "candidates": r["candidates"][:1], "candidate_correct": [True]} for r in arith_rows(arith_task)]
    write_trees(rows, tmp_path / "trees.jsonl")
    inputs = LearnInputs(policy_dir=tiny_dir, output_dir=tmp_path / "policy", task=arith_task,
                         trees=tmp_path / "trees.jsonl", problems=list, scorer=None, state_dir=tmp_path,
                         previous_state_dir=tmp_path, seed=0)
    with pytest.raises(NothingToLearn, match="no chosen/rejected pair"):
        get_learner("tree_dpo").run(inputs, TreeDPOConfig(output_dir=str(tmp_path / "policy")))
    assert not (tmp_path / "policy").exists()
