"""The loop's learn phase as an ``accelerate launch`` subprocess (roadmap.app.learn_launch): 2 CPU ranks (gloo) run
one iteration's expert-iteration SFT end to end, the main rank writes one policy and one result, the loss
falls, a finished subprocess result is taken on resume without training again, and a missing config file or a
failing subprocess is an error naming the key, the path and the log."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from roadmap.app.learn_launch import LearnLaunchError, launch_command
from roadmap.app.loop import LoopConfig, RecipeError, run_loop

ROOT = Path(__file__).resolve().parents[1]
DDP = ROOT / "recipes" / "accelerate" / "ddp.yaml"

RECIPE = {
    "task": "arith",
    "iterations": 1,
    "train_problems": 2,
    "search": {"method": "mcts", "budget": 2, "width": 2},
    # reference solutions mixed in, so that a random policy has something to learn from
    "learn": {"algorithm": "expert_iteration", "reference_mix": 48, "epochs": 8, "batch_size": 8,
              "learning_rate": 3e-3},
    "eval_problems": 4,
    "batch_size": 32,
    "lengths": {"max_solution_tokens": 48, "max_step_tokens": 16, "max_steps": 4},
}


@pytest.fixture
def one_thread(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # each rank, like the accelerate tests


@pytest.mark.slow
def test_learn_phase_under_accelerate_launch_trains_once_and_resumes_from_its_result(tiny_dir, tmp_path, one_thread):
    config = LoopConfig(policy=str(tiny_dir), accelerate_config=str(DDP), num_processes=2, **RECIPE)
    run = tmp_path / "run"
    said: list[str] = []
    out = run_loop(config, run, say=said.append)
    it = run / "iter_1"
    learn = json.loads((it / "learn.done.json").read_text())
    # both ranks trained: the log shows rank 1, and the result counts two ranks' batches
    log = (it / "learn.log").read_text()
    assert "--num_processes 2" in log and "[rank 1]" in log, log[-2000:]
    assert learn["completed"] and learn["steps"] > 0 and learn["train_tokens"] > 0
    assert learn["final_loss"] < 0.9 * learn["first_loss"], learn
    # one checkpoint, written by the main rank; no rank's staging folder left
    assert (it / "policy" / "model.safetensors").exists() and not list(it.glob(".policy.*"))
    assert json.loads((it / "learn_result.json").read_text())["metrics"]["train_tokens"] == learn["train_tokens"]
    assert out["iterations"][1]["learn_tokens"] == learn["train_tokens"]
    assert any("under accelerate launch" in s for s in said)

    # killed after the subprocess finished, before the marker: the rerun takes its result, training nothing
    (it / "learn.done.json").unlink()
    log_time, policy_time = (it / "learn.log").stat().st_mtime_ns, (it / "policy").stat().st_mtime_ns
    said.clear()
    again = run_loop(config, run, say=said.append)
    assert (it / "learn.log").stat().st_mtime_ns == log_time and (it / "policy").stat().st_mtime_ns == policy_time
    assert json.loads((it / "learn.done.json").read_text())["train_tokens"] == learn["train_tokens"]
    assert any("taken as is" in s for s in said) and again["iterations"] == out["iterations"]


def test_missing_accelerate_config_is_refused_naming_the_key_and_path(tiny_dir, tmp_path):
    missing = tmp_path / "nowhere" / "ddp.yaml"
    with pytest.raises(RecipeError, match=rf"accelerate_config='{missing}': no such file"):
        LoopConfig(policy=str(tiny_dir), accelerate_config=str(missing), **RECIPE)
    with pytest.raises(RecipeError, match="num_processes=2 .* needs accelerate_config"):
        LoopConfig(policy=str(tiny_dir), num_processes=2, **RECIPE)
    assert not (tmp_path / "run").exists()


def test_a_failing_learn_subprocess_names_the_config_and_its_log(tiny_dir, tmp_path, one_thread):
    # a config accelerate cannot use: the launcher exits non-zero before any rank starts
    bad = tmp_path / "bad.yaml"
    bad.write_text("compute_environment: LOCAL_MACHINE\ndistributed_type: NO_SUCH_TYPE\n")
    config = LoopConfig(policy=str(tiny_dir), accelerate_config=str(bad), **RECIPE)
    run = tmp_path / "run"
    with pytest.raises(LearnLaunchError, match=rf"(?s)iteration 1 .*accelerate_config={bad}\) exited with code "
                                               rf"[1-9].*log is {run.resolve() / 'iter_1' / 'learn.log'}"):
        run_loop(config, run, say=lambda s: None)
    assert (run / "iter_1" / "search.done.json").exists() and not (run / "iter_1" / "learn.done.json").exists()
    assert not (run / "iter_1" / "policy").exists()


def test_launch_command_names_the_config_the_count_and_the_job(tmp_path):
    cmd = launch_command(DDP, 0, tmp_path / "job.json")
    assert cmd[1:5] == ["-m", "accelerate.commands.launch", "--config_file", str(DDP)]
    assert "--num_processes" not in cmd and cmd[-3:] == ["-m", "roadmap.app.learn_launch", str(tmp_path / "job.json")]
    assert launch_command(DDP, 4, tmp_path / "job.json")[5:7] == ["--num_processes", "4"]
