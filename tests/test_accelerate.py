"""Trainers under ``accelerate launch --num_processes 2`` (DDP with gloo on CPU): one checkpoint, one result
file, no staging folder left by any rank, tokens counted over both ranks, and a loss that falls as it does in
one process (roadmap.core.training's rank guards)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DDP = ROOT / "recipes" / "accelerate" / "ddp.yaml"

SCRIPT = '''
import sys
from roadmap.core.tasks import ArithTask
kind, init, out, labels = sys.argv[1:5]
task = ArithTask()
if kind == "sft":
    from policy_init.sft import SFTWarmStartConfig, warm_start
    warm_start(init, task, SFTWarmStartConfig(output_dir=out, num_problems=512, max_steps=24, batch_size=16,
                                              learning_rate=3e-3, logging_steps=4))
else:
    from rewards import RewardModelConfig, load_labels, train_prm
    train_prm(load_labels(labels), init, RewardModelConfig(output_dir=out, max_steps=16, batch_size=8,
                                                          logging_steps=4), step_delimiter=task.step_delimiter)
'''


@pytest.fixture(scope="module")
def labels(tiny_dir, tmp_path_factory):
    from rewards import LabelConfig, label_problems
    from roadmap.core.backends import load_policy
    from roadmap.core.lengths import Lengths
    from roadmap.core.tasks import ArithTask

    task, out = ArithTask(), tmp_path_factory.mktemp("labels") / "labels"
    lengths = Lengths(max_solution_tokens=32, rollout_tokens=16)
    label_problems(task, task.problems("train", n=16, seed=2), out, samples=2, policy=load_policy(tiny_dir),
                   config=LabelConfig(rollouts=2, lengths=lengths), lengths=lengths, progress=False)
    return out


def _run(tmp_path: Path, kind: str, init, labels, processes: int) -> dict:
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    out = tmp_path / f"{kind}-{processes}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    if processes == 1:
        cmd = [sys.executable, str(script)]
    else:
        cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(DDP),
               "--num_processes", str(processes), str(script)]
    done = subprocess.run(cmd + [kind, str(init), str(out), str(labels)], env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    results = sorted(out.glob("*_result.json"))
    assert len(results) == 1, list(out.iterdir())
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(f".{out.name}.")]  # no rank's staging left
    marker = json.loads((out / ".o1-roadmap.json").read_text())
    assert marker["completed"] and sorted(marker["files"]) == sorted(p.name for p in out.iterdir()
                                                                     if p.name != ".o1-roadmap.json")
    return json.loads(results[0].read_text())


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sft", "prm"])
def test_trainer_under_accelerate_launch_writes_once_and_learns(kind, tiny_dir, labels, tmp_path):
    one = _run(tmp_path, kind, tiny_dir, labels, 1)
    two = _run(tmp_path, kind, tiny_dir, labels, 2)
    assert one["steps"] == two["steps"] and two["completed"]
    for res in (one, two):
        assert len(res["losses"]) >= 3 and res["final_loss"] < 0.9 * res["first_loss"]
    # each rank trains its share of every batch; the result counts both ranks' tokens
    assert two["train_tokens"] > 1.5 * one["train_tokens"] if kind == "sft" else two["train_tokens"] > 0
    weights = tmp_path / f"{kind}-2" / "model.safetensors"
    assert weights.exists() or (tmp_path / f"{kind}-2" / "reward_model.json").exists()
