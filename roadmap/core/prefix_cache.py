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

from roadmap.core.errors import ConfigError

__all__ = ["PrefixCache", "load_cached", "row_states", "has_sliding_window"]


class PrefixCache:
    """LRU map from token-id tuples to per-layer ``(keys, values)`` tensors ``[heads, T, head_dim]``.

    Args:
        max_tokens: most cached token positions (summed over entries); least recently used
            entries are evicted beyond it. Memory is ``max_tokens * layers * 2 * hidden * bytes``.
    """

    def __init__(self, max_tokens: int) -> None:
        if max_tokens < 1:
            raise ConfigError(f"max_tokens={max_tokens} must be at least 1 (use no cache instead of an empty one)")
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


def has_sliding_window(config) -> bool:
    """Whether any attention layer of a model with ``config`` keeps only a sliding window of KV.

    Such a layer (Mistral-v0.1, Gemma-2/3) holds the last ``sliding_window - 1`` positions, not a
    prefix's whole state, so its rows cannot be stored and reloaded under their token ids.
    """
    from transformers import DynamicCache

    return any(getattr(layer, "is_sliding", False) for layer in DynamicCache(config=config).layers)


def row_states(cache, mask, slot: int) -> list:
    """Per-layer ``(keys, values)`` ``[heads, T, head_dim]`` of batch row ``slot``, without its padding."""
    cols = mask[slot].bool()
    return [(layer.keys[slot][:, cols], layer.values[slot][:, cols]) for layer in cache.layers]


def load_cached(cache, seqs: Sequence[Sequence[int]], hits: Sequence[tuple[int, Any]], pad_id: int):
    """Load the cached states ``hits`` of ``seqs`` into ``cache`` (left-padded to a common width).

    Returns the ``[B, S]`` ids and position ids of the suffixes still to prefill and the
    ``[B, C + S]`` attention mask; row r's layout is [pad | cached_r | pad | suffix_r], the mask
    hides both pads and the suffix's positions continue from the cached length.
    """
    import torch

    width_c = max(length for length, _ in hits)
    suffixes = [q[length:] for q, (length, _) in zip(seqs, hits)]
    width_s = max(len(x) for x in suffixes)
    rows = len(seqs)
    template = next(kv for length, kv in hits if length)
    for layer, (k0, v0) in enumerate(template):
        keys = k0.new_zeros((rows, k0.shape[0], width_c, k0.shape[-1]))
        values = v0.new_zeros((rows, v0.shape[0], width_c, v0.shape[-1]))
        for r, (length, kv) in enumerate(hits):
            if length:
                keys[r, :, width_c - length :] = kv[layer][0]
                values[r, :, width_c - length :] = kv[layer][1]
        cache.update(keys, values, layer)
    ids = torch.full((rows, width_s), pad_id, dtype=torch.long)
    mask = torch.zeros((rows, width_c + width_s), dtype=torch.long)
    pos = torch.zeros((rows, width_s), dtype=torch.long)
    for r, ((length, _), suffix) in enumerate(zip(hits, suffixes)):
        mask[r, width_c - length : width_c] = 1
        mask[r, width_c + width_s - len(suffix) :] = 1
        ids[r, width_s - len(suffix) :] = torch.tensor(suffix, dtype=torch.long)
        pos[r, width_s - len(suffix) :] = torch.arange(length, length + len(suffix))
    return ids, mask, pos
