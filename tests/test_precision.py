"""roadmap.core.precision: fp32 master weights under autocast, saved in the source dtype; checkpointing, accumulation."""

from __future__ import annotations

import json

import pytest

from roadmap.core.precision import merge_trainer_kwargs
from roadmap.core.training import BudgetMixin


@pytest.fixture(scope="module")
def bf16_dir(tiny_dir, tmp_path_factory):
    """The tiny policy saved in bf16, as a Hub chat model is."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path_factory.mktemp("bf16")
    AutoModelForCausalLM.from_pretrained(tiny_dir, dtype=torch.bfloat16).save_pretrained(out)
    AutoTokenizer.from_pretrained(tiny_dir).save_pretrained(out)
    return out


@pytest.fixture
def steps_seen(monkeypatch):
    """What every training step sees: trainable parameter dtypes, micro-batch rows, checkpointing, autocast output."""
    seen: list[dict] = []
    original = BudgetMixin.training_step

    def spy(self, model, inputs, *args, **kwargs):
        import torch

        out_dtypes: list = []
        # the first projection of the body (TRL may fuse the LM head into its loss, so that is not called)
        linear = next(m for m in model.modules() if isinstance(m, torch.nn.Linear))
        hook = linear.register_forward_hook(lambda m, i, o: out_dtypes.append(o.dtype))
        try:
            loss = original(self, model, inputs, *args, **kwargs)
        finally:
            hook.remove()
        seen.append({"params": {p.dtype for p in model.parameters() if p.requires_grad},
                     "rows": int(inputs["input_ids"].shape[0]), "checkpointing": model.is_gradient_checkpointing,
                     "linear_output": out_dtypes[0] if out_dtypes else None})
        return loss

    monkeypatch.setattr(BudgetMixin, "training_step", spy)
    return seen


def _weight_dtypes(folder) -> set[str]:
    from safetensors import safe_open

    with safe_open(str(folder / "model.safetensors"), framework="pt") as f:
        return {str(f.get_slice(k).get_dtype()) for k in f.keys()}


def test_trainer_kwargs_win_and_gradient_checkpointing_means_activation_checkpointing():
    base = {"bf16": False, "activation_checkpointing": False, "learning_rate": 1e-3}
    merged = merge_trainer_kwargs(base, {"bf16": True, "gradient_checkpointing": True, "adam_beta2": 0.95})
    assert merged == {"bf16": True, "activation_checkpointing": True, "learning_rate": 1e-3, "adam_beta2": 0.95}
    assert merge_trainer_kwargs(base, None) == base


def test_a_bf16_checkpoint_trains_on_fp32_master_weights_under_autocast_and_is_saved_bf16(bf16_dir, arith_task,
                                                                                           tmp_path, steps_seen):
    import torch

    from policy_init.sft import SFTWarmStartConfig, warm_start

    out = tmp_path / "sft"
    warm_start(bf16_dir, arith_task, SFTWarmStartConfig(output_dir=str(out), num_problems=16, max_steps=2,
                                                        batch_size=4, mixed_precision="bf16", logging_steps=1))
    assert steps_seen and all(s["params"] == {torch.float32} for s in steps_seen)  # master weights
    assert all(s["linear_output"] == torch.bfloat16 for s in steps_seen)  # the forward ran under bf16 autocast
    assert json.loads((out / "config.json").read_text())["dtype"] == "bfloat16"
    assert _weight_dtypes(out) == {"BF16"}


def test_an_fp32_checkpoint_stays_fp32_and_auto_is_no_autocast_on_cpu(tiny_dir, arith_task, tmp_path, steps_seen):
    import torch

    from policy_init.sft import SFTWarmStartConfig, warm_start

    out = tmp_path / "sft"
    warm_start(tiny_dir, arith_task, SFTWarmStartConfig(output_dir=str(out), num_problems=8, max_steps=1, batch_size=4))
    assert steps_seen[0]["linear_output"] == torch.float32 and steps_seen[0]["checkpointing"] is False
    assert _weight_dtypes(out) == {"F32"}


def test_sft_trainer_kwargs_turn_on_gradient_checkpointing_and_bf16(tiny_dir, arith_task, tmp_path, steps_seen):
    import torch

    from policy_init.sft import SFTWarmStartConfig, warm_start

    config = SFTWarmStartConfig(output_dir=str(tmp_path / "sft"), num_problems=8, max_steps=1, batch_size=4,
                                trainer_kwargs={"gradient_checkpointing": True, "bf16": True})
    assert warm_start(tiny_dir, arith_task, config).steps == 1  # no "multiple values" TypeError
    assert steps_seen[0]["checkpointing"] is True and steps_seen[0]["linear_output"] == torch.bfloat16
    steps_seen.clear()
    config = SFTWarmStartConfig(output_dir=str(tmp_path / "sft2"), num_problems=8, max_steps=1, batch_size=4,
                                gradient_checkpointing=True)  # the config field does the same
    warm_start(tiny_dir, arith_task, config)
    assert steps_seen[0]["checkpointing"] is True


def test_accumulation_splits_a_step_into_micro_batches_with_the_same_samples_per_step(tiny_dir, arith_task, tmp_path,
                                                                                      steps_seen):
    from policy_init.sft import SFTWarmStartConfig, warm_start

    runs = {}
    for accumulation in (1, 2):
        steps_seen.clear()
        config = SFTWarmStartConfig(output_dir=str(tmp_path / f"acc{accumulation}"), num_problems=16, batch_size=8,
                                    gradient_accumulation_steps=accumulation, logging_steps=1)
        result = warm_start(tiny_dir, arith_task, config)
        runs[accumulation] = (result.steps, result.train_tokens, [s["rows"] for s in steps_seen])
    (steps1, tokens1, rows1), (steps2, tokens2, rows2) = runs[1], runs[2]
    assert rows1 == [8, 8] and rows2 == [4, 4, 4, 4]  # micro-batches of 8 / 2
    assert steps1 == steps2 == 2 and sum(rows1) / steps1 == sum(rows2) / steps2 == 8  # samples per optimizer step
    assert tokens1 == tokens2  # the same rows trained on


def test_memory_fields_are_checked_with_the_fix():
    from learning import RLConfig, TreeDPOConfig
    from policy_init.sft import SFTWarmStartConfig
    from rewards import RewardModelConfig

    with pytest.raises(ValueError, match=r"batch_size=6 is not a multiple of gradient_accumulation_steps=4.*"
                                         r"use e.g. batch_size=4"):
        SFTWarmStartConfig(batch_size=6, gradient_accumulation_steps=4)
    with pytest.raises(ValueError, match=r"mixed_precision='bf8' is unknown; use one of \('auto', 'bf16'"):
        TreeDPOConfig(mixed_precision="bf8")
    with pytest.raises(ValueError, match=r"prompts_per_step x num_generations=16 is not a multiple"):
        RLConfig(prompts_per_step=2, num_generations=8, gradient_accumulation_steps=3)
    with pytest.raises(ValueError, match="gradient_accumulation_steps=0 must be a positive integer"):
        RewardModelConfig(gradient_accumulation_steps=0)


@pytest.mark.parametrize("readout", ["likelihood", "step_end"])
def test_a_prm_from_a_bf16_checkpoint_trains_in_fp32_and_is_saved_bf16(bf16_dir, tmp_path, steps_seen, readout):
    import torch
    from datasets import Dataset

    from rewards import ProcessRewardModel, RewardModelConfig, train_prm
    from roadmap.core import Lengths

    rows = {"problem_id": [f"p{i}" for i in range(8)], "prompt": ["1+1\n"] * 8,
            "steps": [["1+1=2", "Answer: 2"], ["1+1=3", "Answer: 3"]] * 4,
            "soft_labels": [[1.0, 1.0], [0.0, 0.0]] * 4, "hard_labels": [[1.0, 1.0], [0.0, 0.0]] * 4}
    out = tmp_path / "prm"
    result = train_prm(Dataset.from_dict(rows), bf16_dir,
                       RewardModelConfig(output_dir=str(out), max_steps=2, batch_size=4, eval_fraction=0.0,
                                         mixed_precision="bf16", readout=readout,
                                         lengths=Lengths(train_max_length=12)))  # cuts the second step
    assert steps_seen and all(s["params"] == {torch.float32} for s in steps_seen)  # never pure bf16
    assert all(s["linear_output"] == torch.bfloat16 for s in steps_seen)
    assert _weight_dtypes(out) == {"BF16"}
    assert result.truncated_solutions == 8
    prm = ProcessRewardModel.from_pretrained(out)
    assert prm.model.get_input_embeddings().weight.dtype == torch.bfloat16  # it loads as saved
    if readout == "likelihood":  # the calibration scalars are read from reward_model.json, trained in fp32
        calibration = json.loads((out / "reward_model.json").read_text())["calibration"]
        assert calibration != [2.0, 6.0]  # moved from rewards.prm._LIKELIHOOD_INIT: they trained
