"""Expert iteration on long chains of thought: learn from search trees made sequential.

The ``long_cot`` learner is expert iteration (ReST-EM, arXiv 2312.06585) whose training texts are
traces (``learning.traces``, Stream of Search arXiv 2404.03683): each problem's verified path from
this iteration's search, with the task's self-checks after each step and, in the configured share
of traces, a low-valued sibling from the tree written in and corrected or backtracked from. It
fine-tunes through ``learning.expert_iteration.expert_iteration_step``, so its compute is counted
as every other learner's (``train_tokens``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, fields
from typing import Any

from learning.expert_iteration import ExpertIterationConfig
from learning.registry import LearnInputs, NothingToLearn, register_learner
from learning.traces import TraceConfig

__all__ = ["LongCoTConfig", "long_cot_data"]


@dataclass
class LongCoTConfig(ExpertIterationConfig):
    """Expert iteration's knobs plus how trees become traces (the fields of ``TraceConfig``)."""

    clean: float = field(default=0.4, metadata={"help": "Weight of clean paths (checked steps, no detour)."})
    correction: float = field(default=0.4, metadata={"help": "Weight of traces with a corrected wrong step."})
    backtrack: float = field(default=0.2, metadata={"help": "Weight of traces that back up from a wrong branch."})
    max_detours: int = field(default=1, metadata={"help": "Wrong siblings written into one trace (at most)."})
    max_value: float = field(default=0.5, metadata={"help": "Siblings valued at most this count as wrong."})
    backtrack_depth: int = field(default=2, metadata={"help": "Steps followed down a wrong branch before backing up."})
    check_steps: bool = field(default=True, metadata={"help": "Write the task's self-check after every right step."})
    train_on_errors: bool = field(default=True, metadata={
        "help": "Train on the wrong step too; False puts the trace up to the first wrong step in the prompt."})

    def __post_init__(self) -> None:
        self.trace_config()  # validates the trace fields

    def trace_config(self) -> TraceConfig:
        """The ``TraceConfig`` of these fields (``solutions_per_problem`` traces per tree)."""
        names = {f.name for f in fields(TraceConfig)} - {"traces_per_problem", "seed"}
        return TraceConfig(**{n: getattr(self, n) for n in names}, traces_per_problem=self.solutions_per_problem,
                           seed=self.seed)


def long_cot_data(rows, task, config: LongCoTConfig, extra_dataset=None):
    """The SFT rows of one update: traces of ``rows`` plus ``extra_dataset`` (prompt/completion/id)."""
    from datasets import concatenate_datasets

    from learning.traces import trace_rows

    data = trace_rows(rows, task, config.trace_config())
    if extra_dataset is not None and len(extra_dataset):
        extra = extra_dataset.select_columns(["prompt", "completion", "id"])
        data = data.select_columns(["prompt", "completion", "id"])
        data = concatenate_datasets([data, extra]) if len(data) else extra
    return data


@register_learner("long_cot", LongCoTConfig)
def _long_cot(inputs: LearnInputs, config: LongCoTConfig) -> dict[str, Any]:
    from learning.expert_iteration import expert_iteration_step
    from learning.registry import _rows
    from policy_init.sft import sft_dataset

    rows = _rows(inputs)
    extra = sft_dataset(inputs.task, n=config.reference_mix, seed=inputs.seed) if config.reference_mix else None
    data = long_cot_data(rows, inputs.task, config, extra)
    if len(data) == 0:
        raise NothingToLearn("search verified no path to linearize")
    kinds = dict(Counter(data["kind"])) if "kind" in data.column_names else {}
    res = expert_iteration_step(inputs.policy_dir, rows, config, data=data.select_columns(["prompt", "completion", "id"]))
    return {**res, "trace_kinds": kinds}
