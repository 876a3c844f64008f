"""Policy initialization (roadmap component 1): tiny from-scratch models and the SFT warm-start.

Submodules import torch/transformers only when their functions run, so this import is cheap.
"""

from policy_init.sft import SFTResult, SFTWarmStartConfig, sft_dataset, warm_start
from policy_init.tiny import TinyConfig, build_bpe_tokenizer, build_char_tokenizer, build_tiny_model, create_tiny

__all__ = [
    "TinyConfig",
    "build_char_tokenizer",
    "build_bpe_tokenizer",
    "build_tiny_model",
    "create_tiny",
    "SFTWarmStartConfig",
    "SFTResult",
    "sft_dataset",
    "warm_start",
]
