"""Shared fixtures: a tiny random policy saved to disk, and a scripted fake policy."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Under pytest-xdist (README's `pytest -n auto`) the workers share the cores: each gets its share of threads, so
# torch's OpenMP pools do not oversubscribe the machine (and the CLI subprocesses a test starts inherit it).
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    _share = max(1, len(os.sched_getaffinity(0)) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))
    os.environ.setdefault("OMP_NUM_THREADS", str(_share))


@pytest.fixture(scope="session")
def arith_task():
    from roadmap.core.tasks import ArithTask

    return ArithTask()


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory, arith_task):
    """A small random Llama with a char tokenizer, saved with save_pretrained."""
    from policy_init.tiny import TinyConfig, create_tiny

    return create_tiny(
        arith_task,
        tmp_path_factory.mktemp("tiny"),
        TinyConfig(hidden_size=64, num_layers=2, num_heads=4, intermediate_size=128, seed=0),
    )


@pytest.fixture(scope="session")
def tiny_policy(tiny_dir):
    from roadmap.core import HFPolicy

    return HFPolicy.from_pretrained(tiny_dir, batch_size=16)


class ScriptedPolicy:
    """A fake Policy: the completion of a prefix is looked up in a dict (same for every sample)."""

    def __init__(self, answers: dict[str, list[str]]):
        from roadmap.core.types import Usage

        self.answers = answers
        self.usage = Usage()
        self.batch_size = 64

    def sample(self, prefixes, n=1, **kwargs):
        from roadmap.core.types import Completion

        out = []
        for p in prefixes:
            texts = self.answers[p]
            row = [Completion(text=texts[j % len(texts)], num_tokens=len(texts[j % len(texts)]), logprob=0.0,
                              finished=True) for j in range(n)]
            self.usage.generated_tokens += sum(c.num_tokens for c in row)
            out.append(row)
        return out

    def logprobs(self, prefixes, continuations):
        return [0.0 for _ in prefixes]


@pytest.fixture
def scripted_policy():
    return ScriptedPolicy


@pytest.fixture(scope="module")
def ray_session():
    """A local Ray of 2 CPUs for one test module; the actors import this package and the test modules (functions
    defined in a test module are pickled by reference)."""
    from pathlib import Path

    import ray

    root = Path(__file__).resolve().parents[1]
    os.environ["PYTHONPATH"] = os.pathsep.join([str(root), str(root / "tests"), os.environ.get("PYTHONPATH", "")])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()
