"""Expert iteration (rejection-sampling fine-tuning, ReST-EM arXiv 2312.06585): search, keep what is
verified, fine-tune on it.

The search is done elsewhere (``roadmap.app.train_search`` writes the trees); this module turns its
rows into SFT data (``learning.data.sft_rows``) and runs ``policy_init.sft.warm_start`` on them,
full fine-tuning or LoRA. As in ReST-EM, every iteration can restart from the same base policy
(``base``) or continue from the last one; the caller decides by the folder it passes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from roadmap.core.errors import DataError
from roadmap.core.lengths import Lengths
from roadmap.core.precision import (
    accumulation_field,
    check_memory_fields,
    gradient_checkpointing_field,
    mixed_precision_field,
)
from roadmap.core.training import overwrite_field, time_cap_field

__all__ = ["ExpertIterationConfig", "expert_iteration_data", "expert_iteration_step"]


@dataclass
class ExpertIterationConfig:
    """Knobs of one expert-iteration update."""

    output_dir: str = field(default="ei-policy", metadata={"help": "Where the updated policy is written."})
    overwrite: bool = overwrite_field()
    solutions_per_problem: int = field(default=8, metadata={"help": "Verified distinct solutions kept per problem (k)."})
    epochs: float = field(default=2.0, metadata={"help": "Passes over the verified solutions."})
    max_minutes: float | None = time_cap_field()
    learning_rate: float = field(default=1e-4, metadata={"help": "Peak learning rate."})
    batch_size: int = field(default=64, metadata={"help": "Sequences per optimizer step."})
    lora: bool = field(default=False, metadata={"help": "Train a LoRA adapter (merged when saved)."})
    min_step_score: float | None = field(default=None, metadata={
        "help": "Keep only verified solutions whose PRM score (weakest step) reaches this; needs a scorer."})
    seed: int = field(default=0, metadata={"help": "Data order seed."})
    reference_mix: int = field(default=0, metadata={
        "help": "Reference solutions of fresh training problems mixed into each update (against forgetting; "
                "in the loop, learning.registry draws them)."})
    lengths: Lengths = field(default_factory=Lengths, metadata={
        "help": "Length limits; SFT rows are cut at lengths.train_max_length (in a recipe: top-level lengths:)."})
    mixed_precision: str = mixed_precision_field()
    gradient_checkpointing: bool = gradient_checkpointing_field()
    gradient_accumulation_steps: int = accumulation_field()

    def __post_init__(self) -> None:
        check_memory_fields(self, self.batch_size)


def expert_iteration_data(rows: Sequence[dict[str, Any]], config: ExpertIterationConfig | None = None, *,
                          task=None, extra_dataset=None, scorer=None):
    """The SFT rows of one update: verified solutions of ``rows`` plus ``extra_dataset`` (may be empty).

    ``scorer`` (a PRM ``StepScorer``) ranks each problem's verified solutions; with
    ``config.min_step_score`` it also drops those below it (see ``learning.data.sft_rows``).
    """
    from datasets import concatenate_datasets

    from learning.data import sft_rows

    config = config or ExpertIterationConfig()
    data = sft_rows(rows, config.solutions_per_problem, task=task, scorer=scorer, min_score=config.min_step_score)
    if extra_dataset is not None and len(extra_dataset):
        extra = extra_dataset.select_columns(["prompt", "completion", "id"])
        data = concatenate_datasets([data, extra]) if len(data) else extra
    return data


def expert_iteration_step(
    policy_dir: str | Path, rows: Sequence[dict[str, Any]], config: ExpertIterationConfig | None = None, *,
    task=None, extra_dataset=None, scorer=None, data=None,
) -> dict[str, Any]:
    """Fine-tune ``policy_dir`` on the verified solutions in ``rows``; return the SFT summary.

    The summary is ``policy_init.sft.SFTResult`` as a dict (``completed``, ``stopped_by``, ...) plus
    ``examples`` and ``problems_with_data``; the policy folder is written by ``warm_start``.

    Args:
        policy_dir: the policy to update (saved with ``save_pretrained``).
        rows: trees rows (``search.trees.result_row``).
        task: when given, terminal nodes of the trees are verified too (more data per search).
        extra_dataset: prompt/completion/id rows mixed in (e.g. reference solutions against
            forgetting, or the previous iteration's data).
        data: the rows from ``expert_iteration_data`` when the caller built them already.
    """
    from policy_init.sft import SFTWarmStartConfig, warm_start

    config = config or ExpertIterationConfig()
    if data is None:
        data = expert_iteration_data(rows, config, task=task, extra_dataset=extra_dataset, scorer=scorer)
    if len(data) == 0:
        raise DataError("no verified solution in the search rows: nothing to learn from; search with a larger budget")
    sft = SFTWarmStartConfig(output_dir=config.output_dir, epochs=config.epochs, max_minutes=config.max_minutes,
                             learning_rate=config.learning_rate, batch_size=config.batch_size, lora=config.lora,
                             seed=config.seed, warmup_fraction=0.05, logging_steps=10, overwrite=config.overwrite,
                             lengths=config.lengths, mixed_precision=config.mixed_precision,
                             gradient_checkpointing=config.gradient_checkpointing,
                             gradient_accumulation_steps=config.gradient_accumulation_steps)
    result = warm_start(policy_dir, None, sft, train_dataset=data.shuffle(seed=config.seed))
    return {**result.to_dict(), "examples": len(data), "problems_with_data": len(set(data["id"]))}
