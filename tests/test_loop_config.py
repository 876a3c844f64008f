"""roadmap.app.loop_config: a recipe is typed and checked at every depth before the run folder is touched."""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict
from pathlib import Path

import pytest
import yaml

from learning.expert_iteration import ExpertIterationConfig
from learning.tree_dpo import TreeDPOConfig
from roadmap.app.loop import LoopConfig, RecipeError, load_recipe, run_loop

BASE = {"task": "arith", "iterations": 1, "search": {"method": "mcts", "budget": 2, "width": 2},
        "learn": {"algorithm": "expert_iteration", "epochs": 1}}


def _roadmap_run(recipe: dict, tmp_path: Path) -> Path:
    """What ``roadmap run RECIPE --out RUN --policy P`` does, for a recipe that must be refused."""
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    run = tmp_path / "run"
    (tmp_path / "policy").mkdir(exist_ok=True)  # beside the run folder: a run inside its policy is refused
    t0 = time.perf_counter()
    with pytest.raises(RecipeError) as err:
        run_loop(load_recipe(path, policy=str(tmp_path / "policy")), run, say=lambda _: None)
    assert time.perf_counter() - t0 < 1.0
    assert not (run / "config.yaml").exists()
    return err.value


@pytest.mark.parametrize("recipe, message", [
    ({**BASE, "iteratoins": 2}, r"top level: unknown keys \['iteratoins'\] \(did you mean 'iterations'\?\)"),
    ({**BASE, "search": {"method": "mcts", "budgte": 2}},
     r"search \(TrainSearchConfig\): unknown keys \['budgte'\] \(did you mean 'budget'\?\); known keys: \['budget',"),
    ({**BASE, "learn": {"algorithm": "expert_iteration", "learning_rat": 1.0e-4}},
     r"learn \(algorithm expert_iteration: ExpertIterationConfig\): unknown keys \['learning_rat'\] "
     r"\(did you mean 'learning_rate'\?\)"),
    ({**BASE, "guide": "prm", "prm": {"problems": 8, "sampels": 2}},
     r"prm \(PRMPhaseConfig, LabelConfig, RewardModelConfig\): unknown keys \['sampels'\] \(did you mean 'samples'\?\)"),
    ({**BASE, "learn": {"algorithm": "grpo", "margin": 0.3}},
     r"unknown keys \['margin'\]; 'margin' belongs to learn.algorithm: tree_dpo; known keys: \[.*'beta',"),
])
def test_a_misspelled_key_at_any_depth_fails_at_once_before_config_yaml(recipe, message, tmp_path):
    err = str(_roadmap_run(recipe, tmp_path))
    assert err.startswith(f"recipe {tmp_path / 'recipe.yaml'}: ") and re.search(message, err), err


@pytest.mark.parametrize("recipe, message", [
    ({**BASE, "iterations": "three"}, r"iterations='three' is a string; it must be an int"),
    ({**BASE, "task_args": ["max_operands", 3]}, r"task_args=\['max_operands', 3\] is a list; it must be a mapping"),
    ({**BASE, "learn": {"algorithm": "expert_iteration", "epochs": "two"}},
     r"learn.epochs='two' is a string; it must be a number"),
    ({**BASE, "learn": {"learning_rate": "1e-4"}}, r"learn.learning_rate='1e-4' is a string; .*write it with a decimal"),
    ({**BASE, "learn": {"lora": 1}}, r"learn.lora=1 is an int; it must be a bool"),
    ({**BASE, "learn": "expert_iteration"}, r"learn='expert_iteration' is a string; it must be a mapping"),
    ({**BASE, "task": "arithm"}, r"unknown task 'arithm'; known tasks: \["),
    ({**BASE, "task_args": {"max_operandz": 3}}, r"task 'arith' has no option\(s\) \['max_operandz'\]"),
    ({**BASE, "search": {"method": "beem"}}, r"search: method='beem' is not a search method"),
    ({**BASE, "search": {"seed": 3}}, r"search.seed is set by the loop"),
    ({**BASE, "learn": {"output_dir": "x"}}, r"learn.output_dir is set by the loop"),
    ({**BASE, "prm": {"aggregation": "max"}}, r"prm: aggregation='max' is unknown"),
    ({**BASE, "learn": {"algorithm": "grpo", "prm_weight": 0.5}}, r"learn.prm_weight needs a PRM"),
    # ranges, checked at load whatever the learner (issue 26): before, a negative rate ran until the learn phase
    ({**BASE, "learn": {"learning_rate": -1.0e-4}}, r"learn.learning_rate=-0.0001 must be a number > 0"),
    ({**BASE, "learn": {"algorithm": "tree_dpo", "learning_rate": 0.0}}, r"learn.learning_rate=0.0 must be a number > 0"),
    ({**BASE, "learn": {"algorithm": "tree_dpo", "margin": 1.5}}, r"learn.margin=1.5 must be a number in \[0, 1\)"),
    ({**BASE, "learn": {"algorithm": "grpo", "max_grad_norm": float("nan")}}, r"learn.max_grad_norm=nan must be"),
    ({**BASE, "search": {"method": "mcts", "temperature": -0.5}}, r"search.temperature=-0.5 must be a number >= 0"),
    ({**BASE, "guide": "prm", "prm": {"temperature": -1.0}}, r"prm.temperature=-1.0 must be a number >= 0"),
    ({**BASE, "guide": "prm", "prm": {"epochs": -2.0}}, r"prm.epochs=-2.0 must be a number > 0"),
])
def test_a_wrong_type_or_value_is_named_with_what_it_must_be(recipe, message, tmp_path):
    err = str(_roadmap_run(recipe, tmp_path))
    assert re.search(message, err), err


def test_a_recipe_file_that_is_not_a_mapping_or_not_yaml_names_the_file(tmp_path):
    listed = tmp_path / "list.yaml"
    listed.write_text("- task: arith\n- iterations: 2\n")
    with pytest.raises(RecipeError, match=f"recipe {listed} holds a list at its top level; a recipe is a mapping"):
        load_recipe(listed, policy="p")
    broken = tmp_path / "broken.yaml"
    broken.write_text("learn: {algorithm: [\n")
    with pytest.raises(RecipeError, match=f"recipe {broken} is not valid YAML"):
        load_recipe(broken, policy="p")


def test_every_key_reaches_its_typed_config():
    config = LoopConfig(policy="p", guide="prm", search={"method": "beam", "budget": 8, "shard_size": 16},
                        learn={"algorithm": "tree_dpo", "margin": 0.7, "beta": 0.2},
                        prm={"problems": 10, "samples": 2, "aggregation": "prod", "method": "binary",
                             "rollouts": 3, "labels": "hard", "epochs": 4, "seed": 9})
    assert (config.search_config.method, config.search_config.budget, config.search_config.shard_size) == ("beam", 8, 16)
    assert config.learner.name == "tree_dpo" and isinstance(config.learn_config, TreeDPOConfig)
    assert (config.learn_config.margin, config.learn_config.beta) == (0.7, 0.2)
    assert (config.prm_config.problems, config.prm_config.samples, config.prm_config.aggregation) == (10, 2, "prod")
    assert (config.label_config.method, config.label_config.rollouts, config.label_config.seed) == ("binary", 3, 9)
    assert (config.reward_model_config.labels, config.reward_model_config.epochs) == ("hard", 4)
    assert config.reward_model_config.seed == 9  # a key goes to every section class that has it

    ei = LoopConfig(policy="p", learn={"reference_mix": 64, "solutions_per_problem": 2})
    assert isinstance(ei.learn_config, ExpertIterationConfig)  # expert_iteration is the default learner
    assert (ei.learn_config.reference_mix, ei.learn_config.solutions_per_problem) == (64, 2)
    # the recipe stays plain dicts: what config.yaml stores, and what older run folders hold
    assert ei.learn == {"reference_mix": 64, "solutions_per_problem": 2}


def test_margin_under_tree_dpo_chooses_the_step_pairs(tmp_path, monkeypatch):
    """The learner registry's tree-DPO entry builds its step pairs with the config's margin."""
    from fakes import BanditPolicy, BanditTask

    from learning import LearnInputs, get_learner
    from learning.data import step_pairs
    from rewards import VerifierScorer
    from roadmap.app.train_search import TrainSearchConfig, search_train
    from search.trees import read_trees

    task = BanditTask("LLL")
    search_train(BanditPolicy(depth=3, p_best=0.5), task, [task.problem(i) for i in range(6)], tmp_path,
                 TrainSearchConfig(method="mcts", budget=12, width=2, mcts_evaluation="rollout"),
                 verifier=VerifierScorer(task), progress=False)
    rows = read_trees(tmp_path / "trees.jsonl")
    seen = {}
    monkeypatch.setattr("learning.tree_dpo.tree_dpo_step",
                        lambda policy_dir, pairs, config: {"train_tokens": 0, "pairs": len(pairs), "margin": config.margin})
    for margin in (0.0, 0.9):
        inputs = LearnInputs(policy_dir=tmp_path, output_dir=tmp_path / "out", task=task, trees=tmp_path / "trees.jsonl",
                             problems=list, scorer=None, state_dir=tmp_path, previous_state_dir=tmp_path, seed=0)
        seen[margin] = get_learner("tree_dpo").run(inputs, TreeDPOConfig(margin=margin))
        assert seen[margin]["step_pairs"] == len(step_pairs(rows, margin))
        assert seen[margin]["margin"] == margin  # and the DPO step got the config with it
    assert seen[0.0]["step_pairs"] > seen[0.9]["step_pairs"]  # these trees have Q-gaps between the two margins


def test_exact_step_values_need_a_task_with_exact_step_labels():
    assert LoopConfig(policy="p", task="countdown", learn={"algorithm": "tree_dpo", "step_values": "exact"})
    with pytest.raises(RecipeError, match="step_values: exact needs a task with exact step labels.*gsm_symbolic"):
        LoopConfig(policy="p", task="gsm_symbolic", learn={"algorithm": "tree_dpo", "step_values": "exact"})


def test_a_finished_run_with_an_old_config_yaml_resumes(tmp_path):
    """A run folder whose config.yaml predates fields (here prm_dir, batch_size) and typed sections resumes."""
    policy = tmp_path / "policy"
    policy.mkdir()
    config = LoopConfig(**{**BASE, "policy": str(policy), "eval_problems": 4})
    run = tmp_path / "run"
    old = {k: v for k, v in asdict(config).items()
           if k in ("policy", "task", "task_args", "iterations", "train_problems", "guide", "search", "learn", "prm",
                    "eval_problems", "seed")}
    (run / "iter_0").mkdir(parents=True)
    (run / "iter_1").mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump(old))
    ev = {"accuracy": 0.25, "ci95": [0.05, 0.7], "n": 4}
    for k in (0, 1):
        (run / f"iter_{k}" / "eval.done.json").write_text(json.dumps(ev))
    (run / "iter_1" / "search.done.json").write_text(json.dumps(
        {"accuracy": 0.5, "any_correct": 0.5, "usage": {"generated_tokens": 10, "prefill_tokens": 5}}))
    (run / "iter_1" / "learn.done.json").write_text(json.dumps({"train_tokens": 100, "steps": 2}))
    result = run_loop(config, run, say=lambda _: None)
    assert [r["train_compute"] for r in result["iterations"]] == [0, 115]
    assert yaml.safe_load((run / "config.yaml").read_text())["batch_size"] == config.batch_size
