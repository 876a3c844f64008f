"""SFT warm-start: the first component of the o1 roadmap (arXiv 2412.14135, Section 3).

The policy learns the task's solution format (one step per line, then the final answer) from
reference solutions with TRL's ``SFTTrainer`` on prompt/completion rows, so that the loss is
on the completion only. LoRA (PEFT) is optional. Training is bounded by steps, epochs or wall
time, whichever ends first; the learning-rate schedule (warm-up, then cosine decay) follows
the same budget, so a time-bounded run still ends at a small learning rate.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from roadmap.core.io import replace_dir

logger = logging.getLogger(__name__)

__all__ = ["SFTWarmStartConfig", "sft_dataset", "warm_start", "SFTResult"]


@dataclass
class SFTWarmStartConfig:
    """Knobs of the SFT warm-start. Defaults suit the embedded tiny policy on arith."""

    output_dir: str = field(default="sft-policy", metadata={"help": "Where the trained checkpoint is written."})
    num_problems: int = field(default=150_000, metadata={"help": "Training problems drawn from the task."})
    epochs: float = field(default=1.0, metadata={"help": "Passes over the training problems."})
    max_steps: int = field(default=-1, metadata={"help": "Stop after this many optimizer steps (-1: no limit)."})
    max_minutes: float | None = field(default=None, metadata={"help": "Stop after this much wall time."})
    learning_rate: float = field(default=1e-3, metadata={"help": "Peak learning rate (AdamW)."})
    warmup_fraction: float = field(default=0.03, metadata={"help": "Share of the budget spent warming up."})
    min_lr_ratio: float = field(default=0.05, metadata={"help": "Final learning rate as a share of the peak."})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay."})
    batch_size: int = field(default=64, metadata={"help": "Sequences per optimizer step."})
    max_length: int = field(default=256, metadata={"help": "Longest prompt+completion, in tokens."})
    group_by_length: bool = field(
        default=False, metadata={"help": "Batch rows of similar length together (less padding, faster on CPU)."}
    )
    lora: bool = field(default=False, metadata={"help": "Train a LoRA adapter instead of all weights."})
    lora_r: int = field(default=16, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA alpha."})
    lora_target_modules: str | list[str] = field(default="all-linear", metadata={"help": "Modules LoRA adapts."})
    logging_steps: int = field(default=50, metadata={"help": "Log loss every this many steps."})
    seed: int = field(default=0, metadata={"help": "Seed of data order and problem sampling."})
    report_to: str = field(default="none", metadata={"help": "Trainer loggers ('none', 'tensorboard', ...)."})
    trainer_kwargs: dict = field(
        default_factory=dict, metadata={"help": "Extra SFTConfig arguments, e.g. {'adam_beta2': 0.95}."}
    )

    def __post_init__(self) -> None:
        if self.num_problems < 1:
            raise ValueError(f"num_problems={self.num_problems} must be at least 1")
        if self.max_minutes is not None and self.max_minutes <= 0:
            raise ValueError(f"max_minutes={self.max_minutes} must be positive, or None for no time limit")
        if self.batch_size < 1:
            raise ValueError(f"batch_size={self.batch_size} must be at least 1")
        if not 0 <= self.warmup_fraction < 1:
            raise ValueError(f"warmup_fraction={self.warmup_fraction} must lie in [0, 1)")


@dataclass
class SFTResult:
    """What a warm-start produced and what it cost."""

    output_dir: str
    steps: int
    train_tokens: int
    wall_seconds: float
    tokens_per_second: float
    first_loss: float | None
    final_loss: float | None
    losses: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def sft_dataset(task, problems: Sequence | None = None, *, n: int = 1000, seed: int = 0, solutions=None):
    """Prompt/completion rows for SFT: the task's prompt and its reference (or given) solution.

    ``solutions`` (one text per problem) replaces the reference solutions, e.g. with verified
    samples of a search (expert iteration).
    """
    from datasets import Dataset

    problems = list(problems) if problems is not None else task.problems("train", n=n, seed=seed)
    if solutions is not None and len(solutions) != len(problems):
        raise ValueError(f"got {len(solutions)} solutions for {len(problems)} problems; pass one per problem")
    texts = solutions if solutions is not None else [task.reference_solution(p) for p in problems]
    return Dataset.from_dict(
        {"prompt": [task.prompt(p) for p in problems], "completion": list(texts), "id": [p.id for p in problems]}
    )


def _budget_trainer_class():
    from trl import SFTTrainer

    from roadmap.core.training import BudgetMixin

    class BudgetSFTTrainer(BudgetMixin, SFTTrainer):
        """SFTTrainer whose LR schedule and stopping follow a step *and* a wall-time budget."""

        def __init__(self, *args, max_seconds: float | None, warmup_fraction: float, min_lr_ratio: float, **kw):
            super().__init__(*args, **kw)
            self.init_budget(max_seconds, warmup_fraction, min_lr_ratio)

    return BudgetSFTTrainer


def warm_start(
    policy_dir: str | Path,
    task,
    config: SFTWarmStartConfig | None = None,
    *,
    train_dataset=None,
) -> SFTResult:
    """Fine-tune the checkpoint in ``policy_dir`` on ``task``'s reference solutions.

    Writes a checkpoint folder (``config.output_dir``) that ``HFPolicy.from_pretrained`` loads:
    the merged model when LoRA is used, so that later stages need no PEFT. The folder appears
    only when training finished (written to a temporary name, then renamed).
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig

    config = config or SFTWarmStartConfig()
    src = Path(policy_dir)
    if not (src / "config.json").exists():
        raise FileNotFoundError(
            f"policy_dir={str(policy_dir)!r} has no config.json; pass a folder written by save_pretrained "
            "(e.g. policy_init.tiny.create_tiny)"
        )
    out = Path(config.output_dir)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    torch.manual_seed(config.seed)
    tokenizer = AutoTokenizer.from_pretrained(src)
    model = AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32)
    if train_dataset is None:
        train_dataset = sft_dataset(task, n=config.num_problems, seed=config.seed)

    peft_config = None
    if config.lora:
        from peft import LoraConfig

        peft_config = LoraConfig(
            r=config.lora_r,
            lora_alpha=config.lora_alpha,
            target_modules=config.lora_target_modules,
            task_type="CAUSAL_LM",
        )
    args = SFTConfig(
        output_dir=str(tmp / "trainer"),
        per_device_train_batch_size=config.batch_size,
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        learning_rate=config.learning_rate,
        weight_decay=config.weight_decay,
        logging_steps=config.logging_steps,
        save_strategy="no",
        report_to=config.report_to,
        seed=config.seed,
        max_length=config.max_length,
        completion_only_loss=True,
        packing=False,
        dataloader_num_workers=0,
        use_cpu=not torch.cuda.is_available(),
        bf16=torch.cuda.is_available() and torch.cuda.is_bf16_supported(),
        disable_tqdm=False,
        dataset_num_proc=None,
        train_sampling_strategy="group_by_length" if config.group_by_length else "random",
        # TRL turns activation checkpointing on by default; a tiny model does not need the memory
        # and pays ~25% of its speed for it.
        gradient_checkpointing=False,
        **config.trainer_kwargs,
    )
    trainer_cls = _budget_trainer_class()
    trainer = trainer_cls(
        model=model,
        args=args,
        train_dataset=train_dataset,
        processing_class=tokenizer,
        peft_config=peft_config,
        max_seconds=config.max_minutes * 60 if config.max_minutes else None,
        warmup_fraction=config.warmup_fraction,
        min_lr_ratio=config.min_lr_ratio,
    )
    t0 = time.perf_counter()
    trainer.train()
    t1 = time.perf_counter()
    train_secs = trainer.train_seconds() or (t1 - t0)
    wall = t1 - t0
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]

    final = trainer.model
    if config.lora:
        final = final.merge_and_unload()
    final.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    shutil.rmtree(tmp / "trainer", ignore_errors=True)
    result = SFTResult(
        output_dir=str(out),
        steps=trainer.state.global_step,
        train_tokens=trainer.train_tokens,
        wall_seconds=wall,
        tokens_per_second=trainer.train_tokens / max(train_secs, 1e-9),
        first_loss=losses[0] if losses else None,
        final_loss=losses[-1] if losses else None,
        losses=losses,
    )
    (tmp / "sft_result.json").write_text(json.dumps({**result.to_dict(), "config": asdict(config)}, indent=2))
    replace_dir(tmp, out)
    logger.info("SFT: %d steps, %.0f tok/s, loss %s -> %s", result.steps, result.tokens_per_second,
                result.first_loss, result.final_loss)
    return result
