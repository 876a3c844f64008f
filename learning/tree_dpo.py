"""DPO on pairs from search trees, through TRL's DPOTrainer; the reference model is the previous policy.

Pairs come from ``learning.data``: solution-level (a verified solution against a wrong one of the
same problem) and step-level (siblings under one prefix whose MCTS Q-values differ by more than a
margin, each finished along its best path). Both are plain prompt/chosen/rejected rows, so one
DPO run takes a mix of them. A pair is at most ``Lengths.train_max_length`` tokens; precision and
memory follow ``roadmap.core.precision`` (the frozen reference loads in the checkpoint's dtype when
autocast is on, in fp32 otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from roadmap.core.errors import ConfigError, DataError
from roadmap.core.lengths import Lengths
from roadmap.core.precision import (
    accumulation_field,
    check_memory_fields,
    gradient_checkpointing_field,
    mixed_precision_field,
)
from roadmap.core.training import TrainResult, overwrite_field, time_cap_field

#: where step pairs' node values come from (``TreeDPOConfig.step_values``)
STEP_VALUES = ("q", "exact")

__all__ = ["STEP_VALUES", "TreeDPOConfig", "DPOResult", "tree_dpo_step", "with_sampling_bos"]


@dataclass
class TreeDPOConfig:
    """Knobs of one DPO update on tree pairs."""

    output_dir: str = field(default="dpo-policy", metadata={"help": "Where the updated policy is written."})
    overwrite: bool = overwrite_field()
    beta: float = field(default=0.1, metadata={"help": "DPO temperature: how far the policy may move from the reference."})
    loss_type: str = field(default="sigmoid", metadata={"help": "TRL DPO loss ('sigmoid', 'ipo', 'hinge', ...)."})
    sft_weight: float = field(default=0.0, metadata={
        "help": "Weight of an NLL term on the chosen side (RPO), which keeps chosen likelihoods up."})
    epochs: float = field(default=1.0, metadata={"help": "Passes over the pairs."})
    max_minutes: float | None = time_cap_field()
    learning_rate: float = field(default=1e-4, metadata={"help": "Peak learning rate."})
    warmup_fraction: float = field(default=0.05, metadata={
        "help": "Share of the step budget spent warming the learning rate up (then cosine decay)."})
    batch_size: int = field(default=32, metadata={"help": "Pairs per optimizer step."})
    seed: int = field(default=0, metadata={"help": "Data order seed."})
    margin: float = field(default=0.3, metadata={
        "help": "Step pairs: siblings whose values (MCTS Q-values, or exact values under step_values: exact) differ "
                "by more than this (learning.data.step_pairs)."})
    step_values: str = field(default="q", metadata={
        "help": "Step pairs' node values: 'q' (MCTS Q-values, estimated by rollouts) or 'exact' (the task's exact "
                "step checker, task.step_labels: e.g. countdown's solvability by brute force; a check on Q)."})
    lengths: Lengths = field(default_factory=Lengths, metadata={
        "help": "Length limits; prompt + completion is cut at lengths.train_max_length (in a recipe: top-level lengths:)."})
    mixed_precision: str = mixed_precision_field()
    gradient_checkpointing: bool = gradient_checkpointing_field()
    gradient_accumulation_steps: int = accumulation_field()

    def __post_init__(self) -> None:
        check_memory_fields(self, self.batch_size)
        if self.step_values not in STEP_VALUES:
            raise ConfigError(f"step_values={self.step_values!r}: expected one of {', '.join(STEP_VALUES)}")


@dataclass(kw_only=True)
class DPOResult(TrainResult):
    """What a DPO update produced: the ``TrainResult`` fields plus the pairs and the final reward margin."""

    pairs: int = field(metadata={"help": "Preference pairs trained on."})
    final_margin: float | None = field(default=None, metadata={"help": "Last logged chosen-rejected reward margin."})


def with_sampling_bos(pairs, tokenizer):
    """``pairs`` with each prompt starting as the policy saw it when sampling: BOS first where the tokenizer adds one.

    TRL's DPO collator encodes prompts with ``add_special_tokens=False`` (so that a chat template's
    own BOS is not doubled); on a plain prompt that drops the BOS that ``HFPolicy`` sampling,
    evaluation and SFT all put first, and DPO would train on a context the policy never sees.
    Prompts that already encode to a leading BOS (chat templates) are left as they are.
    """
    from roadmap.core.tasks.prompts import adds_bos

    if tokenizer.bos_token is None or not adds_bos(tokenizer):
        return pairs
    bos, bos_id = tokenizer.bos_token, tokenizer.bos_token_id

    def fix(prompt: str) -> str:
        bare = tokenizer(prompt, add_special_tokens=False).input_ids
        return prompt if bare[:1] == [bos_id] else bos + prompt

    return pairs.map(lambda row: {"prompt": fix(row["prompt"])})


def tree_dpo_step(policy_dir: str | Path, pairs, config: TreeDPOConfig | None = None) -> DPOResult:
    """DPO-train the policy in ``policy_dir`` on ``pairs`` (prompt/chosen/rejected); return a ``DPOResult``.

    The reference model is a frozen copy of ``policy_dir``. The new policy is written to
    ``config.output_dir`` with ``dpo_result.json`` through the library's staged-output skeleton
    (``roadmap.core.training.run_staged_training``). The learning rate warms up over
    ``warmup_fraction`` of the step budget, then decays by a cosine (``BudgetMixin``).
    """
    from trl import DPOConfig, DPOTrainer

    from roadmap.core.precision import cast_to, load_trainable_lm, memory_args, resolve_precision
    from roadmap.core.training import BudgetMixin, check_model_dir, run_staged_training, training_args

    config = config or TreeDPOConfig()
    if len(pairs) == 0:
        raise DataError("no preference pairs: the trees held no correct/incorrect contrast; search more or lower the margin")
    src = check_model_dir(policy_dir)

    class BudgetDPOTrainer(BudgetMixin, DPOTrainer):
        def __init__(self, *a, max_seconds=None, **kw):
            super().__init__(*a, **kw)
            self.init_budget(max_seconds, warmup_fraction=config.warmup_fraction)

    def build(scratch: Path):
        import torch
        from transformers import AutoModelForCausalLM

        tokenizer, model, dtype = load_trainable_lm(src)
        # the frozen reference needs no master weights: under autocast it may stay in the checkpoint's dtype
        autocast = resolve_precision(config.mixed_precision) != "no"
        ref = AutoModelForCausalLM.from_pretrained(src, dtype=dtype if autocast else torch.float32)
        # RPO-style: an NLL term on the chosen side, through TRL's multi-loss weights
        losses, weights = (([config.loss_type, "sft"], [1.0, config.sft_weight]) if config.sft_weight
                           else ([config.loss_type], None))
        args = DPOConfig(**training_args(
            scratch, config.seed, **memory_args(config, config.batch_size), num_train_epochs=config.epochs,
            learning_rate=config.learning_rate, beta=config.beta, loss_type=losses, loss_weights=weights,
            max_length=config.lengths.train_max_length, logging_steps=10,
        ))
        train = with_sampling_bos(pairs, tokenizer).shuffle(seed=config.seed)
        trainer = BudgetDPOTrainer(model=model, ref_model=ref, args=args, train_dataset=train,
                                   processing_class=tokenizer,
                                   max_seconds=config.max_minutes * 60 if config.max_minutes else None)
        trainer.source_dtype = dtype  # the trained policy is saved in the checkpoint's own dtype
        return trainer

    def save(trainer, folder: Path) -> None:
        cast_to(trainer.model, trainer.source_dtype).save_pretrained(folder)
        trainer.processing_class.save_pretrained(folder)

    def result(trainer, stats) -> DPOResult:
        margins = [h["rewards/margins"] for h in trainer.state.log_history if "rewards/margins" in h]
        return DPOResult(output_dir=str(config.output_dir), pairs=len(pairs),
                         final_margin=margins[-1] if margins else None, **stats)

    return run_staged_training(config.output_dir, "policy", config=config, build=build, save=save, result=result,
                               result_file="dpo_result.json", inputs={"policy_dir": src})
