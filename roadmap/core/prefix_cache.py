"""A bounded LRU cache of KV states keyed by token ids, so tree search never recomputes a prefix.

When ``HFPolicy`` stops a sample at a step boundary, the KV state of that row (prefix plus the
step, all but the step's last token, which was sampled but not yet fed) is stored under its
token ids. Expanding that node later looks up the longest cached prefix of the new request and
prefills only the remaining tokens, usually one. This is what lets beam search and MCTS compute
each tree token about once (search-and-learn and openr recompute every prefix per expansion).
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Sequence
from typing import Any

__all__ = ["PrefixCache"]


class PrefixCache:
    """LRU map from token-id tuples to per-layer ``(keys, values)`` tensors ``[heads, T, head_dim]``.

    Args:
        max_tokens: most cached token positions (summed over entries); least recently used
            entries are evicted beyond it. Memory is ``max_tokens * layers * 2 * hidden * bytes``.
    """

    def __init__(self, max_tokens: int) -> None:
        if max_tokens < 1:
            raise ValueError(f"max_tokens={max_tokens} must be at least 1 (use no cache instead of an empty one)")
        self.max_tokens = max_tokens
        self.entries: OrderedDict[tuple[int, ...], Any] = OrderedDict()
        self.tokens = 0
        self._lengths: Counter[int] = Counter()
        self._by_length: list[int] | None = None  # cached lengths, longest first; None when stale
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self.entries)

    def lookup(self, ids: Sequence[int]) -> tuple[int, Any]:
        """The longest cached *proper* prefix of ``ids``: (its length, its KV), or (0, None).

        Proper, because at least one token must be fed to get the next-token logits.
        """
        if self._by_length is None:
            self._by_length = sorted(self._lengths, reverse=True)
        for length in self._by_length:
            if length >= len(ids):
                continue
            key = tuple(ids[:length])
            kv = self.entries.get(key)
            if kv is not None:
                self.entries.move_to_end(key)
                self.hits += 1
                return length, kv
        self.misses += 1
        return 0, None

    def put(self, ids: Sequence[int], kv: Any) -> None:
        key = tuple(ids)
        if not key or len(key) > self.max_tokens:
            return
        if key in self.entries:
            self.entries.move_to_end(key)
            return
        self.entries[key] = kv
        self._by_length = None
        self._lengths[len(key)] += 1
        self.tokens += len(key)
        while self.tokens > self.max_tokens:
            old, _ = self.entries.popitem(last=False)
            self.tokens -= len(old)
            self._lengths[len(old)] -= 1
            if not self._lengths[len(old)]:
                del self._lengths[len(old)]

    def clear(self) -> None:
        self.entries.clear()
        self._lengths.clear()
        self._by_length = None
        self.tokens = 0
