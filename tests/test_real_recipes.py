"""Every recipe in recipes/real runs with its own keys on stand-ins of the same architectures.

Only what a CPU cannot hold is overridden: the model and PRM ids (stand-ins saved in the same
formats), the backend (vLLM is not in this environment), sizes and lengths. Every other key of
the file, including the PRM format, trust_remote_code, dtype, prompt format and aggregation, is
the recipe's own.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from roadmap.app.cli import main

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT / "recipes" / "real"
DATA = ROOT / "benchmarks" / "data"
EVAL_RECIPES = sorted(p for p in REAL.rglob("*.yaml") if yaml.safe_load(p.read_text()).get("command") == "eval")
LOOP_RECIPES = sorted(p for p in REAL.rglob("*.yaml") if "command" not in yaml.safe_load(p.read_text()))
SMALL_LENGTHS = {"max_step_tokens": 8, "max_steps": 2, "max_solution_tokens": 16, "rollout_tokens": 16,
                 "train_max_length": 512, "rl_completion_tokens": 8}


@pytest.fixture(scope="module")
def standins(tmp_path_factory):
    from standin_prms import build_qwen_prm_standin, build_shepherd_standin

    from policy_init.standins import build_standin

    root = tmp_path_factory.mktemp("real")
    return {"Qwen/Qwen2.5-Math-1.5B-Instruct": build_standin("qwen2", root / "qwen2"),
            "meta-llama/Llama-3.2-1B-Instruct": build_standin("llama3", root / "llama3"),
            "Qwen/Qwen2.5-Math-PRM-7B": build_qwen_prm_standin(root),
            "peiyi9979/math-shepherd-mistral-7b-prm": build_shepherd_standin(root)}


def test_the_recipes_are_found():
    assert len(EVAL_RECIPES) >= 6 and len(LOOP_RECIPES) >= 2


@pytest.mark.parametrize("recipe", EVAL_RECIPES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_eval_recipe_runs_at_standin_scale(recipe, standins, tmp_path):
    keys = yaml.safe_load(recipe.read_text())
    out = tmp_path / "report.json"
    args = ["eval", "--config", str(recipe), "--policy", str(standins[keys["policy"]]), "--backend", "hf",
            "--task-arg", f"source={DATA / (keys['task'] + '_sample.jsonl')}", "--n", "2", "--budget", "4",
            "--max-new-tokens", "16", "--max-step-tokens", "8", "--max-solution-steps", "2",
            "--rollout-tokens", "16", "--out", str(out)]
    if "prm" in keys:
        args += ["--prm", str(standins[keys["prm"]])]
    assert main(args) == 0
    report = json.loads(out.read_text())
    assert report["method"] == keys["method"] and report["task"] == keys["task"] and report["n"] == 2


def _deep_merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _deep_merge(base[k], v) if isinstance(v, dict) and isinstance(base.get(k), dict) else v
    return out


@pytest.mark.parametrize("recipe", LOOP_RECIPES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_loop_recipe_runs_one_iteration_at_standin_scale(recipe, standins, tmp_path):
    keys = yaml.safe_load(recipe.read_text())
    small = {"policy": str(standins[keys["policy"]]), "backend": "hf", "iterations": 1, "train_problems": 4,
             "eval_problems": 2, "batch_size": 8, "task_args": {"source": str(DATA / f"{keys['task']}_sample.jsonl")},
             "lengths": {k: SMALL_LENGTHS[k] for k in keys.get("lengths", {})}}
    learn = {"batch_size": 4} if keys["learn"]["algorithm"] == "expert_iteration" else {
        "prompts_per_step": 2, "num_generations": 2, "max_steps": 1, "eval_every": 0}
    learn.update({"gradient_accumulation_steps": 1, "gradient_checkpointing": False})
    small["learn"] = learn
    if "search" in keys:
        small["search"] = {"budget": 2}
    merged = _deep_merge(keys, small)
    assert set(merged) - set(keys) <= {"task_args", "backend"}  # the recipe's own keys, the data and backend aside
    path = tmp_path / recipe.name
    path.write_text(yaml.safe_dump(merged))
    assert main(["run", str(path), "--out", str(tmp_path / "run")]) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert [it["iteration"] for it in metrics["iterations"]] == [0, 1]
