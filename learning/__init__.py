"""Learning (roadmap component 4): policy updates on searched data.

- ``learning.data``: trees -> SFT rows, solution- and step-level DPO pairs, GRPO prompt rows;
- ``learning.expert_iteration``: keep what search verified, fine-tune on it (ReST-EM);
- ``learning.tree_dpo``: DPO on tree pairs through TRL's DPOTrainer;
- ``learning.rl``: online RL through TRL's GRPOTrainer (grpo, dapo, dr_grpo, cispo) and the
  ScaleRL preset.

Submodules import torch/TRL lazily; import them directly.
"""

__all__: list[str] = []
