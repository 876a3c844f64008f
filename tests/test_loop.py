"""The search-and-learn loop end to end on a tiny model, killed with SIGKILL mid-search and mid-training."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import pytest
import yaml

from roadmap.app.loop import LoopConfig, load_recipe

RECIPE = {
    "task": "arith",
    "iterations": 1,
    "train_problems": 4,
    "search": {"method": "mcts", "budget": 4, "width": 2, "shard_size": 1},
    # reference solutions mixed in, so that a random policy has something to learn from
    "learn": {"algorithm": "expert_iteration", "reference_mix": 64, "epochs": 40, "batch_size": 8},
    "eval_problems": 8,
    "batch_size": 32,
}


def _start(recipe: Path, run: Path, policy: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "roadmap.app.cli", "run", str(recipe), "--out", str(run),
                             "--policy", str(policy)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})


def _kill_when(proc: subprocess.Popen, ready, timeout: float = 120.0) -> None:
    t0 = time.monotonic()
    while not ready():
        if proc.poll() is not None:
            raise AssertionError(f"the run ended before the kill point: {proc.stderr.read().decode()[-2000:]}")
        if time.monotonic() - t0 > timeout:
            proc.kill()
            raise AssertionError("the kill point never came")
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_loop_resumes_after_sigkill_in_search_and_in_training(tiny_dir, tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(RECIPE))
    run = tmp_path / "run"
    it = run / "iter_1"

    # 1. killed in the middle of search: one shard is on disk, the search is not finished
    proc = _start(recipe, run, tiny_dir)
    _kill_when(proc, lambda: (it / "search" / "shards" / "00000.json").exists())
    assert not (it / "search.done.json").exists()
    baseline = (run / "iter_0" / "eval.done.json").stat().st_mtime_ns
    shard0 = (it / "search" / "shards" / "00000.json").stat().st_mtime_ns

    # 2. resumed, then killed in the middle of training
    proc = _start(recipe, run, tiny_dir)
    _kill_when(proc, lambda: any(it.glob(".policy.tmp-*")))
    assert (it / "search.done.json").exists() and not (it / "learn.done.json").exists()
    assert (it / "search" / "shards" / "00000.json").stat().st_mtime_ns == shard0, "a finished shard was redone"
    search_done = (it / "search.done.json").stat().st_mtime_ns
    assert json.loads((it / "search.done.json").read_text())["searched_now"] < 4

    # 3. resumed to the end: only training (and what follows) is redone
    proc = _start(recipe, run, tiny_dir)
    assert proc.wait(timeout=300) == 0, proc.stderr.read().decode()[-2000:]
    assert (it / "search.done.json").stat().st_mtime_ns == search_done
    assert (run / "iter_0" / "eval.done.json").stat().st_mtime_ns == baseline
    metrics = json.loads((run / "metrics.json").read_text())
    assert [r["iteration"] for r in metrics["iterations"]] == [0, 1]
    assert metrics["iterations"][1]["learn_tokens"] > 0 and metrics["iterations"][1]["train_compute"] > 0
    assert (run / "report.md").read_text().startswith("# Run report")
    assert (run / "accuracy.png").exists() and (run / "compute.png").exists()
    assert (it / "policy" / "config.json").exists() and not list(it.glob(".policy.*"))


def test_recipe_errors_name_the_problem(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("iterations: 2\nsearch_budget: 16\n")
    with pytest.raises(ValueError, match="unknown keys \\['search_budget'\\]"):
        load_recipe(bad, policy="p")
    with pytest.raises(ValueError, match="policy is empty"):
        LoopConfig()
    with pytest.raises(ValueError, match="learn.algorithm"):
        LoopConfig(policy="p", learn={"algorithm": "ppo"})
    with pytest.raises(ValueError, match="min_step_score needs a PRM"):
        LoopConfig(policy="p", learn={"algorithm": "expert_iteration", "min_step_score": 0.5})
    with pytest.raises(FileNotFoundError, match="reward_model.json"):
        LoopConfig(policy="p", prm_dir=str(tmp_path))
    recipes = Path(__file__).parent.parent / "recipes"
    for name in ("expert_iteration_mcts", "tree_dpo", "grpo", "scalerl", "prm_guided_beam"):
        assert load_recipe(recipes / f"{name}.yaml", policy="p").iterations >= 1
    with pytest.raises(ValueError, match="min_step_score needs a PRM"):
        load_recipe(recipes / "expert_iteration_prm.yaml", policy="p")  # the PRM comes with --prm-dir


def test_loop_with_a_given_prm_guides_and_filters_without_training_one(tiny_dir, tmp_path):
    from rewards import ProcessRewardModel
    from roadmap.app.loop import run_loop

    prm_dir = tmp_path / "prm"
    ProcessRewardModel.from_policy(tiny_dir).save_pretrained(prm_dir)
    config = LoopConfig(**{**RECIPE, "policy": str(tiny_dir), "guide": "prm", "prm_dir": str(prm_dir),
                           "search": {"method": "beam", "budget": 2, "width": 2, "shard_size": 4},
                           "learn": {**RECIPE["learn"], "reference_mix": 16, "epochs": 1, "min_step_score": 0.0}})
    result = run_loop(config, tmp_path / "run", say=lambda _: None)
    it = tmp_path / "run" / "iter_1"
    assert not (it / "labels").exists() and not (it / "prm").exists()  # the given PRM is used as is
    assert (it / "policy" / "config.json").exists()
    learned = json.loads((it / "learn.done.json").read_text())
    assert learned["examples"] >= 16  # reference rows plus filtered ones
    # beyond the reference rows are verified solutions that the PRM read: its forward passes count as compute
    assert (learned["scoring_tokens"] > 0) == (learned["examples"] > 16)
    assert [r["iteration"] for r in result["iterations"]] == [0, 1]
    with pytest.raises(ValueError, match="different recipe"):
        run_loop(LoopConfig(**{**asdict(config), "train_problems": 5}), tmp_path / "run", say=lambda _: None)
