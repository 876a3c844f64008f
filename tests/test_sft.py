"""policy_init.sft end to end: a tiny model trains for seconds and its loss falls."""

from __future__ import annotations

import json

import pytest

from policy_init.sft import SFTWarmStartConfig, sft_dataset, warm_start
from roadmap.core import HFPolicy


def test_sft_dataset_is_prompt_completion(arith_task):
    ds = sft_dataset(arith_task, n=5)
    assert set(ds.column_names) >= {"prompt", "completion"}
    p = arith_task.problems("train", n=5)[0]
    assert ds[0]["prompt"] == arith_task.prompt(p)
    assert ds[0]["completion"] == arith_task.reference_solution(p)
    with pytest.raises(ValueError, match="one per problem"):
        sft_dataset(arith_task, arith_task.problems("train", n=2), solutions=["x"])


@pytest.mark.slow
def test_warm_start_loss_falls_and_checkpoint_loads(tiny_dir, arith_task, tmp_path):
    out = tmp_path / "sft"
    config = SFTWarmStartConfig(output_dir=str(out), num_problems=2000, max_steps=40, batch_size=32,
                                learning_rate=3e-3, logging_steps=5)
    result = warm_start(tiny_dir, arith_task, config)
    assert result.steps == 40
    assert result.final_loss < 0.6 * result.first_loss
    assert result.train_tokens > 40 * 32 * 10
    assert json.loads((out / "sft_result.json").read_text())["steps"] == 40
    assert not list(tmp_path.glob(".sft.*"))  # no staging folder left
    # the trained policy assigns held-out reference solutions a much higher likelihood
    problems = arith_task.problems("test", n=8)
    prompts = [arith_task.prompt(p) for p in problems]
    refs = [arith_task.reference_solution(p) for p in problems]
    before = sum(HFPolicy.from_pretrained(tiny_dir).logprobs(prompts, refs))
    after = sum(HFPolicy.from_pretrained(out).logprobs(prompts, refs))
    assert after > before + 0.3 * abs(before)


@pytest.mark.slow
def test_lora_warm_start_merges_into_a_plain_checkpoint(tiny_dir, arith_task, tmp_path):
    out = tmp_path / "lora"
    config = SFTWarmStartConfig(output_dir=str(out), num_problems=200, max_steps=5, batch_size=16, lora=True,
                                lora_r=4, lora_alpha=8, logging_steps=1)
    result = warm_start(tiny_dir, arith_task, config)
    assert result.steps == 5
    assert not (out / "adapter_config.json").exists()
    assert HFPolicy.from_pretrained(out).sample(["1+2\n"], 1, max_new_tokens=3, seed=0)


def test_time_budget_stops_training(tiny_dir, arith_task, tmp_path):
    config = SFTWarmStartConfig(output_dir=str(tmp_path / "t"), num_problems=5000, max_minutes=0.05, batch_size=8,
                                logging_steps=1)
    result = warm_start(tiny_dir, arith_task, config)
    assert 0 < result.steps < 5000 / 8
    assert result.wall_seconds < 30


def test_missing_policy_folder_is_named(arith_task, tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        warm_start(tmp_path, arith_task, SFTWarmStartConfig(output_dir=str(tmp_path / "o")))
