"""SFT warm-start: the first component of the o1 roadmap (arXiv 2412.14135, Section 3).

The policy learns the task's solution format (one step per line, then the final answer) from
reference solutions with TRL's ``SFTTrainer`` on prompt/completion rows, so that the loss is
on the completion only. LoRA (PEFT) is optional. Training is bounded by work (steps or epochs);
the learning-rate schedule (warm-up, then cosine decay) follows that budget. A wall-time cap
(``max_minutes``) is an explicit option; a run it cuts short is marked incomplete. Sequences are at
most ``Lengths.train_max_length`` tokens; precision and memory follow ``roadmap.core.precision``
(fp32 master weights, optional autocast, saved in the checkpoint's own dtype).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from roadmap.core.errors import ConfigError
from roadmap.core.lengths import Lengths
from roadmap.core.precision import (
    accumulation_field,
    check_memory_fields,
    gradient_checkpointing_field,
    mixed_precision_field,
)
from roadmap.core.training import TrainResult, overwrite_field, time_cap_field

logger = logging.getLogger(__name__)

__all__ = ["SFTWarmStartConfig", "sft_dataset", "warm_start", "SFTResult"]


@dataclass
class SFTWarmStartConfig:
    """Knobs of the SFT warm-start. Defaults suit the embedded tiny policy on arith."""

    output_dir: str = field(default="sft-policy", metadata={"help": "Where the trained checkpoint is written."})
    num_problems: int = field(default=150_000, metadata={"help": "Training problems drawn from the task."})
    epochs: float = field(default=1.0, metadata={"help": "Passes over the training problems."})
    max_steps: int = field(default=-1, metadata={"help": "Stop after this many optimizer steps (-1: no limit)."})
    max_minutes: float | None = time_cap_field()
    overwrite: bool = overwrite_field()
    learning_rate: float = field(default=1e-3, metadata={"help": "Peak learning rate (AdamW)."})
    warmup_fraction: float = field(default=0.03, metadata={"help": "Share of the budget spent warming up."})
    min_lr_ratio: float = field(default=0.05, metadata={"help": "Final learning rate as a share of the peak."})
    decay_fraction: float | None = field(default=None, metadata={
        "help": "None: cosine decay over the whole budget after warm-up; a share in (0, 1]: stay at the peak, "
                "then decay over that last share only (warmup-stable-decay)."})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay."})
    batch_size: int = field(default=64, metadata={"help": "Sequences per optimizer step."})
    lengths: Lengths = field(default_factory=Lengths, metadata={
        "help": "Length limits; a training row (prompt + completion) is cut at lengths.train_max_length tokens."})
    mixed_precision: str = mixed_precision_field()
    gradient_checkpointing: bool = gradient_checkpointing_field()
    gradient_accumulation_steps: int = accumulation_field()
    group_by_length: bool = field(
        default=False, metadata={
            "help": "Batch rows of similar length together: ~20% faster steps on arith, but batches of one length "
                    "learned far less in the same steps (0.7% against 83% greedy at 1,100 steps, docs/benchmarks/sft.md)."}
    )
    lora: bool = field(default=False, metadata={"help": "Train a LoRA adapter instead of all weights."})
    lora_r: int = field(default=16, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA alpha."})
    lora_target_modules: str | list[str] = field(default="all-linear", metadata={"help": "Modules LoRA adapts."})
    logging_steps: int = field(default=50, metadata={"help": "Log loss every this many steps."})
    seed: int = field(default=0, metadata={"help": "Seed of data order and problem sampling."})
    report_to: str = field(default="none", metadata={"help": "Trainer loggers ('none', 'tensorboard', ...)."})
    trainer_kwargs: dict = field(
        default_factory=dict, metadata={
            "help": "Extra SFTConfig arguments, e.g. {'adam_beta2': 0.95}; they win over the library's own "
                    "(so {'bf16': True} or {'gradient_checkpointing': True} work too)."}
    )

    def __post_init__(self) -> None:
        if self.num_problems < 1:
            raise ConfigError(f"num_problems={self.num_problems} must be at least 1")
        if self.max_minutes is not None and self.max_minutes <= 0:
            raise ConfigError(f"max_minutes={self.max_minutes} must be positive, or None for no time limit")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size={self.batch_size} must be at least 1")
        if not 0 <= self.warmup_fraction < 1:
            raise ConfigError(f"warmup_fraction={self.warmup_fraction} must lie in [0, 1)")
        if self.decay_fraction is not None and not 0 < self.decay_fraction <= 1:
            raise ConfigError(f"decay_fraction={self.decay_fraction} must lie in (0, 1], or be None for a cosine over "
                              "the whole budget")
        check_memory_fields(self, self.batch_size)


@dataclass(kw_only=True)
class SFTResult(TrainResult):
    """What a warm-start produced and what it cost (the fields of ``roadmap.core.training.TrainResult``)."""


def sft_dataset(task, problems: Sequence | None = None, *, n: int = 1000, seed: int = 0, solutions=None):
    """Prompt/completion rows for SFT: the task's prompt and its reference (or given) solution, in the
    task's bound prompt format (``Task.training_pair``: under chat the completion ends with the end-of-turn token).

    ``solutions`` (one text per problem) replaces the reference solutions, e.g. with verified
    samples of a search (expert iteration).
    """
    from datasets import Dataset

    problems = list(problems) if problems is not None else task.problems("train", n=n, seed=seed)
    if solutions is not None and len(solutions) != len(problems):
        raise ValueError(f"got {len(solutions)} solutions for {len(problems)} problems; pass one per problem")
    texts = solutions if solutions is not None else [task.reference_solution(p) for p in problems]
    pairs = [task.training_pair(p, t) for p, t in zip(problems, texts)]  # the task's bound prompt format
    return Dataset.from_dict(
        {"prompt": [a for a, _ in pairs], "completion": [b for _, b in pairs], "id": [p.id for p in problems]}
    )


def _budget_trainer_class():
    from trl import SFTTrainer

    from roadmap.core.training import BudgetMixin

    class BudgetSFTTrainer(BudgetMixin, SFTTrainer):
        """SFTTrainer whose LR schedule follows the step budget, with an optional time cap."""

        def __init__(self, *args, max_seconds: float | None, warmup_fraction: float, min_lr_ratio: float,
                     decay_fraction: float | None = None, **kw):
            super().__init__(*args, **kw)
            self.init_budget(max_seconds, warmup_fraction, min_lr_ratio, decay_fraction=decay_fraction)

    return BudgetSFTTrainer


def warm_start(
    policy_dir: str | Path,
    task,
    config: SFTWarmStartConfig | None = None,
    *,
    train_dataset=None,
) -> SFTResult:
    """Fine-tune the checkpoint in ``policy_dir`` on ``task``'s reference solutions.

    Writes a checkpoint folder (``config.output_dir``, kind "policy") that ``HFPolicy.from_pretrained``
    loads: the merged model when LoRA is used, so that later stages need no PEFT. It goes through
    ``roadmap.core.training.run_staged_training``: the folder appears only when training finished,
    an existing folder that is not the library's policy output is refused (``OutputExistsError``),
    and a run cut short by ``max_minutes`` is marked ``completed=False`` in its result and marker.
    """
    from trl import SFTConfig

    from roadmap.core.precision import cast_to, load_trainable_lm, memory_args, merge_trainer_kwargs
    from roadmap.core.training import check_model_dir, run_staged_training, training_args

    config = config or SFTWarmStartConfig()
    src = check_model_dir(policy_dir)

    def build(scratch: Path):
        tokenizer, model, dtype = load_trainable_lm(src)
        data = train_dataset if train_dataset is not None else sft_dataset(task, n=config.num_problems, seed=config.seed)
        peft_config = None
        if config.lora:
            from peft import LoraConfig

            peft_config = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha,
                                     target_modules=config.lora_target_modules, task_type="CAUSAL_LM")
        args = SFTConfig(**merge_trainer_kwargs(training_args(
            scratch, config.seed, report_to=config.report_to, **memory_args(config, config.batch_size),
            num_train_epochs=config.epochs, max_steps=config.max_steps, learning_rate=config.learning_rate,
            weight_decay=config.weight_decay, logging_steps=config.logging_steps,
            max_length=config.lengths.train_max_length, completion_only_loss=True, packing=False,
            disable_tqdm=False, dataset_num_proc=None,
            train_sampling_strategy="group_by_length" if config.group_by_length else "random",
        ), config.trainer_kwargs))
        trainer = _budget_trainer_class()(
            model=model, args=args, train_dataset=data, processing_class=tokenizer, peft_config=peft_config,
            max_seconds=config.max_minutes * 60 if config.max_minutes else None,
            warmup_fraction=config.warmup_fraction, min_lr_ratio=config.min_lr_ratio,
            decay_fraction=config.decay_fraction,
        )
        trainer.source_dtype = dtype  # the trained model is saved in the checkpoint's own dtype
        return trainer

    def save(trainer, folder: Path) -> None:
        final = trainer.model.merge_and_unload() if config.lora else trainer.model
        cast_to(final, trainer.source_dtype).save_pretrained(folder)
        trainer.processing_class.save_pretrained(folder)

    result = run_staged_training(config.output_dir, "policy", config=config, build=build, save=save,
                                 result=lambda trainer, stats: SFTResult(output_dir=str(config.output_dir), **stats),
                                 result_file="sft_result.json", inputs={"policy_dir": src})
    logger.info("SFT: %d steps, %.0f tok/s, loss %s -> %s", result.steps, result.tokens_per_second,
                result.first_loss, result.final_loss)
    return result
