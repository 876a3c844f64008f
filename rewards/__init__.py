"""Rewards (roadmap component 2): verifiers, outcome and process reward models, reward shaping.

Rewards are made without human labels: the task's checker gives outcome rewards, the policy's
own rollouts give step labels (Math-Shepherd MC, OmegaPRM binary search), and PRMs/ORMs learn
from them. Submodules import torch/transformers only when their functions run.
"""

from rewards.label_shards import label_problems
from rewards.labels import LabelConfig, label_solutions, load_labels, rollout_summary, sample_solutions, save_labels
from rewards.orm import orm_dataset, orm_dataset_from_labels, train_orm
from rewards.prm import (
    AGGREGATIONS,
    DEFAULT_READOUT,
    READOUTS,
    PRMLengthError,
    PRMScorer,
    ProcessRewardModel,
    aggregate,
)
from rewards.prm_ratio import RatioPRM
from rewards.prm_training import RewardModelConfig, RewardModelResult, train_prm, train_reward_model
from rewards.public_prm import (
    PRM_FORMATS,
    MathShepherdPRM,
    PRMFormatError,
    PublicPRMScorer,
    QwenPRM,
    detect_prm_format,
    load_step_scorer,
)
from rewards.shaping import (
    get_format_reward,
    get_scorer_reward,
    get_soft_overlong_reward,
    implicit_step_rewards,
    potential_shaping,
    scorer_potentials,
)
from rewards.verifier import VerifierScorer, get_step_verifier_reward, get_verifier_reward

__all__ = [
    "VerifierScorer",
    "get_verifier_reward",
    "get_step_verifier_reward",
    "LabelConfig",
    "sample_solutions",
    "label_solutions",
    "save_labels",
    "load_labels",
    "rollout_summary",
    "label_problems",
    "RewardModelConfig",
    "RewardModelResult",
    "ProcessRewardModel",
    "PRMScorer",
    "RatioPRM",
    "AGGREGATIONS",
    "READOUTS",
    "DEFAULT_READOUT",
    "aggregate",
    "PRMLengthError",
    "PRM_FORMATS",
    "PRMFormatError",
    "MathShepherdPRM",
    "QwenPRM",
    "PublicPRMScorer",
    "detect_prm_format",
    "load_step_scorer",
    "train_prm",
    "train_reward_model",
    "orm_dataset",
    "orm_dataset_from_labels",
    "train_orm",
    "potential_shaping",
    "scorer_potentials",
    "implicit_step_rewards",
    "get_format_reward",
    "get_soft_overlong_reward",
    "get_scorer_reward",
]
