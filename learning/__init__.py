"""Learning (roadmap component 4): policy updates on searched data.

- ``learning.data``: trees -> SFT rows, solution- and step-level DPO pairs, GRPO prompt rows;
- ``learning.expert_iteration``: keep what search verified, fine-tune on it (ReST-EM);
- ``learning.tree_dpo``: DPO on tree pairs through TRL's DPOTrainer;
- ``learning.rl``: online RL through TRL's GRPOTrainer (grpo, dapo, dr_grpo, cispo), the
  ScaleRL preset and the shaping rewards;
- ``learning.traces`` and ``learning.long_cot``: trees linearized into long chains of thought that
  check, correct and backtrack, and the ``long_cot`` learner on them;
- ``learning.registry``: the learners by name (``get_learner``), as the loop picks them.

Importing this package is cheap: the submodules load torch and TRL only when they train.
"""

from learning.data import grpo_rows, sft_rows, solution_pairs, step_pairs, verified_solutions
from learning.expert_iteration import ExpertIterationConfig, expert_iteration_data, expert_iteration_step
from learning.long_cot import LongCoTConfig, long_cot_data
from learning.registry import LEARNERS, Learner, LearnInputs, NothingToLearn, get_learner, register_learner
from learning.rl import LOSS_TYPES, SHAPING_REWARDS, RLConfig, rl_rewards, rl_step, scalerl_config
from learning.traces import TRACE_KINDS, TraceConfig, linearize, trace_rows
from learning.tree_dpo import TreeDPOConfig, tree_dpo_step

__all__ = [
    "verified_solutions",
    "sft_rows",
    "solution_pairs",
    "step_pairs",
    "grpo_rows",
    "ExpertIterationConfig",
    "expert_iteration_data",
    "expert_iteration_step",
    "TraceConfig",
    "TRACE_KINDS",
    "linearize",
    "trace_rows",
    "LongCoTConfig",
    "long_cot_data",
    "TreeDPOConfig",
    "tree_dpo_step",
    "RLConfig",
    "rl_step",
    "rl_rewards",
    "scalerl_config",
    "LOSS_TYPES",
    "SHAPING_REWARDS",
    "LEARNERS",
    "Learner",
    "LearnInputs",
    "NothingToLearn",
    "get_learner",
    "register_learner",
]
