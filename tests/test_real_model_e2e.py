"""End to end through the CLI on a Qwen2-architecture stand-in, as a user with a real chat model works.

A tiny random ``Qwen2ForCausalLM`` with a locally trained byte-level BPE and a Qwen (ChatML) chat
template, on real GSM8K rows in chat format: ``eval`` greedy, majority, beam and MCTS; ``label``;
``train-prm``; then one ``run`` iteration of expert iteration from a recipe. Random weights score
about 0; what is tested is that every path runs in chat format and writes what it promises.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from roadmap.app.cli import main

GSM8K = str(Path(__file__).resolve().parents[1] / "benchmarks" / "data" / "gsm8k_sample.jsonl")
TASK = ["--task", "gsm8k", "--task-arg", f"source={GSM8K}", "--prompt-format", "chat"]
SHORT = ["--max-new-tokens", "24", "--max-step-tokens", "12", "--max-solution-steps", "3"]


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    from policy_init.standins import build_standin

    root = tmp_path_factory.mktemp("e2e")
    return root, build_standin("qwen2", root / "policy")


@pytest.fixture(scope="module")
def prm(work):
    root, policy = work
    labels, prm = root / "labels", root / "prm"
    assert main(["label", "--policy", str(policy), *TASK, "--n", "6", "--samples", "2", "--rollouts", "2",
                 "--max-new-tokens", "24", "--rollout-tokens", "24", "--out", str(labels)]) == 0
    assert main(["train-prm", "--labels", str(labels), "--init", str(policy), *TASK, "--epochs", "1",
                 "--batch-size", "4", "--out", str(prm)]) == 0
    return prm


def _records(path: Path) -> dict:
    report = json.loads(path.read_text())
    assert report["n"] == 3 and report["task"] == "gsm8k"
    return report


@pytest.mark.parametrize("method", ["greedy", "majority"])
def test_eval_greedy_and_majority_in_chat_format(work, method):
    root, policy = work
    out = root / f"{method}.json"
    assert main(["eval", "--policy", str(policy), *TASK, *SHORT, "--n", "3", "--method", method,
                 "--samples", "2", "--out", str(out)]) == 0
    report = _records(out)
    assert report["generated_tokens"] > 0 and report["outputs"] == 3 * (2 if method == "majority" else 1)
    assert "accuracy_flexible" in report and "truncated" in report


@pytest.mark.parametrize("method", ["beam", "mcts"])
def test_eval_beam_and_mcts_with_the_trained_prm_in_chat_format(work, prm, method):
    root, policy = work
    out = root / f"{method}.json"
    assert main(["eval", "--policy", str(policy), *TASK, *SHORT, "--n", "3", "--method", method, "--budget", "4",
                 "--prm", str(prm), "--out", str(out)]) == 0
    report = _records(out)
    assert report["method"] == method and report["generated_tokens"] > 0


def test_labels_and_prm_were_made_in_chat_format(work, prm):
    from datasets import load_from_disk

    root, _ = work
    labels = load_from_disk(str(root / "labels"))
    assert len(labels) == 12 and all(p.endswith("<|im_start|>assistant\n") for p in labels["prompt"])
    assert json.loads((prm / "reward_model.json").read_text())["step_delimiter"] == "\n\n"


def test_one_iteration_of_expert_iteration_from_a_recipe(work, tmp_path):
    root, policy = work
    recipe = tmp_path / "ei.yaml"
    recipe.write_text(f"""
task: gsm8k
task_args: {{source: {GSM8K}}}
prompt: {{kind: chat}}
lengths: {{max_step_tokens: 12, max_steps: 3, max_solution_tokens: 24, rollout_tokens: 24, train_max_length: 512}}
iterations: 1
train_problems: 4
eval_problems: 3
search: {{method: mcts, budget: 2, width: 2, mcts_evaluation: rollout}}
learn: {{algorithm: expert_iteration, epochs: 1, batch_size: 4, reference_mix: 4}}
""")
    assert main(["run", str(recipe), "--policy", str(policy), "--out", str(root / "run")]) == 0
    metrics = json.loads((root / "run" / "metrics.json").read_text())
    assert [it["iteration"] for it in metrics["iterations"]] == [0, 1]
    assert (root / "run" / "iter_1" / "policy" / "config.json").exists()
