"""The Policy protocol: the only seam between algorithms and models.

Search, rewards and learning talk to a model only through ``Policy``: batched text in, text out,
with compute counters. ``HFPolicy`` (``roadmap.core.hf_policy``, re-exported here) is the
embedded implementation over any transformers causal LM.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from roadmap.core.types import Completion, Usage

__all__ = ["Policy", "HFPolicy"]


@runtime_checkable
class Policy(Protocol):
    """Batched text-in, text-out access to a language model, with compute counters."""

    usage: Usage

    def sample(
        self,
        prefixes: Sequence[str],
        n: int = 1,
        *,
        stop: str | Sequence[str] | None = None,
        max_new_tokens: int = 256,
        temperature: float = 1.0,
        top_p: float = 1.0,
        seed: int | None = None,
    ) -> list[list[Completion]]:
        """``n`` continuations of each prefix; ``result[i][j]`` is sample j of prefix i.

        Generation stops at EOS, at the first occurrence of a ``stop`` string (kept at the end
        of the text), or after ``max_new_tokens``. ``temperature=0`` is greedy decoding.
        """
        ...

    def logprobs(self, prefixes: Sequence[str], continuations: Sequence[str]) -> list[float]:
        """log pi(continuation_i | prefix_i) for each pair, summed over tokens."""
        ...


from roadmap.core.hf_policy import HFPolicy  # noqa: E402  (the implementation, re-exported)
