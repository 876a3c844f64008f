"""Learning (roadmap component 4): policy updates on searched data.

- ``learning.data``: trees -> SFT rows, solution- and step-level DPO pairs, GRPO prompt rows;
- ``learning.expert_iteration``: keep what search verified, fine-tune on it (ReST-EM);
- ``learning.tree_dpo``: DPO on tree pairs through TRL's DPOTrainer;
- ``learning.rl``: online RL through TRL's GRPOTrainer (grpo, dapo, dr_grpo, cispo) and the
  ScaleRL preset;
- ``learning.registry``: the learners by name (``get_learner``), as the loop picks them.

Submodules import torch/TRL lazily.
"""

from learning.registry import LEARNERS, Learner, LearnInputs, NothingToLearn, get_learner, register_learner

__all__ = ["LEARNERS", "Learner", "LearnInputs", "NothingToLearn", "get_learner", "register_learner"]
