"""``VLLMPolicy``: the ``Policy`` protocol over a vLLM engine (an optional install).

vLLM (Kwon et al., 2023, arXiv:2309.06180) serves a causal LM with paged attention, continuous
batching and a block-level prefix cache; this module puts it behind the same ``sample`` /
``logprobs`` / ``token_logprobs`` / ``usage`` contract as ``HFPolicy``, so evaluation, every
search method, labelling, train-time search, RL sampling and the loop run on it unchanged:

* prefixes go in as token ids encoded by the model's own tokenizer exactly as ``HFPolicy``
  encodes them, and a completion's text is decoded here from the generated ids in the context
  of the prefix; a text that stopped at a stop string ends with the token that completed it;
* ``logprob`` is the untempered log-probability (vLLM's ``logprobs_mode="raw_logprobs"``);
* every sample is its own ``n=1`` request with a seed derived from (seed, prefix text, sample
  index), so a sample does not depend on the batch it was drawn in (vLLM's CPU sampler cannot
  seed an ``n>1`` request: "CPU Generator does not use offset");
* ``usage`` is filled from vLLM's own accounting: ``RequestOutput.num_cached_tokens`` (prompt
  tokens served from the prefix cache), the generated token ids, and the engine's iteration
  counter (``vllm:iteration_tokens_total``) for forward passes.

The engine is built once per process (``roadmap.core.vllm_engine``) and reused by every
``VLLMPolicy``; a policy whose checkpoint is not the one the engine holds reloads its weights in
place first, so the loop's next iteration samples from its new checkpoint.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path

from roadmap.core.errors import ConfigError, EngineDeadError
from roadmap.core.hf_text import as_stop_list, check_sample_args
from roadmap.core.types import Completion, Usage

logger = logging.getLogger(__name__)

__all__ = ["VLLMPolicy", "EngineDeadError"]

# tokens of the prefix decoded with the generated ids, so that a leading space or a character
# split over several tokens comes out as it does in the whole document
_CONTEXT_TOKENS = 8


def request_seed(seed: int, prefix: str, occurrence: int, sample: int) -> int:
    """The seed of sample ``sample`` of the ``occurrence``-th copy of ``prefix`` in one call.

    It depends on neither the batch nor the prefix's position in it, so a search that meets the
    same node in another batch draws the same children.
    """
    key = f"{int(seed)}\x00{occurrence}\x00{sample}\x00{prefix}".encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little") >> 1


class VLLMPolicy:
    """A ``Policy`` served by the process's vLLM engine.

    Build it with ``VLLMPolicy.from_pretrained`` (or ``load_policy(path, backend="vllm")``).

    Args:
        engine: the ``roadmap.core.vllm_engine.Engine`` shared by the process.
        path: the checkpoint folder this policy samples from.
        tokenizer: that folder's transformers tokenizer (prefixes with special tokens, e.g. BOS;
            continuations without, as SFT and ``HFPolicy`` encode them).
        batch_size: most sequences the engine decodes together (vLLM's ``max_num_seqs``).
    """

    def __init__(self, engine, path, tokenizer, *, batch_size: int, fingerprint: str) -> None:
        self.engine = engine
        self.path = Path(path)
        self.fingerprint = fingerprint
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.max_length = engine.max_model_len
        self.usage = Usage()

    @classmethod
    def from_pretrained(cls, path, *, batch_size: int = 64, options=None) -> VLLMPolicy:
        """The policy in checkpoint folder ``path`` on the process's vLLM engine (built on first use).

        ``options`` is a ``roadmap.core.backends.ModelOptions``; vLLM takes its ``dtype``,
        ``trust_remote_code`` and ``device``, and refuses ``device_map``/``attn_implementation``
        by name. More engine arguments (``tensor_parallel_size``, ``gpu_memory_utilization``,
        ``max_model_len`` ...) come from the ``ROADMAP_VLLM_ENGINE_ARGS`` environment variable
        (a JSON object).
        """
        from roadmap.core.vllm_engine import acquire

        engine, fingerprint, tokenizer = acquire(path, batch_size=batch_size, options=options)
        return cls(engine, Path(path).expanduser().resolve(), tokenizer, batch_size=batch_size,
                   fingerprint=fingerprint)

    # ------------------------------------------------------------------ encoding
    def encode_prefix(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=True)["input_ids"]

    def encode_continuation(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _decode(self, prefix_ids: list[int], ids: list[int]) -> str:
        """The text of ``ids`` as it reads after ``prefix_ids`` (decoded in the prefix's context)."""
        ctx = prefix_ids[-_CONTEXT_TOKENS:]
        head = self.tokenizer.decode(ctx, skip_special_tokens=True)
        whole = self.tokenizer.decode(ctx + list(ids), skip_special_tokens=True)
        if whole.startswith(head):
            return whole[len(head):]
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)

    def _check_length(self, encoded: list[list[int]]) -> int:
        longest = max(len(e) for e in encoded)
        if self.max_length and longest >= self.max_length:
            raise ConfigError(
                f"a prefix has {longest} tokens, at or past the model's context of {self.max_length} tokens; "
                "shorten the prompt or use a model with a longer context"
            )
        return longest

    # ------------------------------------------------------------------ sampling
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
        """``n`` continuations of each prefix, as ``Policy.sample`` (see the module docstring)."""
        import random

        check_sample_args(n, temperature, top_p, max_new_tokens)
        stops = as_stop_list(stop)
        if not prefixes:
            return []
        from vllm import SamplingParams

        encoded = [self.encode_prefix(p) for p in prefixes]
        self._check_length(encoded)
        seed = int(seed) if seed is not None else random.SystemRandom().randrange(2**62)
        greedy = temperature == 0
        # greedy samples of one prefix are one sample: decode it once and hand out copies
        rows = [(i, j) for i in range(len(prefixes)) for j in range(1 if greedy else n)]
        seen: dict[str, int] = {}
        occurrences = []  # a prefix given twice in one call draws different samples each time
        for p in prefixes:
            occurrences.append(seen.get(p, 0))
            seen[p] = occurrences[-1] + 1
        requests, params = [], []
        for i, j in rows:
            room = self.max_length - len(encoded[i]) if self.max_length else max_new_tokens
            params.append(SamplingParams(
                n=1, max_tokens=min(max_new_tokens, room), temperature=temperature, top_p=top_p,
                seed=None if greedy else request_seed(seed, prefixes[i], occurrences[i], j),
                stop=stops or None, logprobs=0, skip_special_tokens=True, detokenize=bool(stops),
            ))
            requests.append({"prompt_token_ids": encoded[i]})
        outputs = self._generate(requests, params)

        results: list[list[Completion]] = [[] for _ in prefixes]
        for (i, _), out in zip(rows, outputs):
            o = out.outputs[0]
            ids = list(o.token_ids)
            self._count_prefill(len(encoded[i]), out.num_cached_tokens or 0)
            self.usage.generated_tokens += len(ids)
            stopped = o.finish_reason == "stop" and isinstance(o.stop_reason, str)
            finished = o.finish_reason == "stop" and not stopped
            lp = _sampled_logprob(o, ids)
            c = Completion(text=self._decode(encoded[i], ids), num_tokens=len(ids), logprob=lp,
                           finished=finished, stopped=stopped)
            results[i] += [c] * (n if greedy else 1)
        self.usage.sampled_sequences += len(prefixes) * n
        return results

    def _count_prefill(self, prompt_tokens: int, cached: int) -> None:
        self.usage.prefill_tokens += prompt_tokens - cached
        self.usage.cached_prefill_tokens += cached

    def _generate(self, requests, params):
        """One engine call; the engine's iteration count goes to ``usage.forward_passes``."""
        self.engine.ensure(self.path, self.fingerprint)
        steps = self.engine.iterations()
        outputs = self.engine.generate(requests, params)
        self.usage.forward_passes += self.engine.iterations() - steps
        return outputs

    def clear_cache(self) -> None:
        """Drop vLLM's prefix cache (e.g. after the model's weights changed)."""
        self.engine.reset_prefix_cache()

    # ------------------------------------------------------------------ scoring
    def token_logprobs(self, prefixes: Sequence[str], continuations: Sequence[str]) -> list[list[float]]:
        """Per-token log pi of each continuation given its prefix (vLLM's prompt log-probabilities)."""
        if len(prefixes) != len(continuations):
            raise ValueError(
                f"got {len(prefixes)} prefixes but {len(continuations)} continuations; pass one continuation per prefix"
            )
        if not prefixes:
            return []
        from vllm import SamplingParams

        pre = [self.encode_prefix(p) for p in prefixes]
        cont = [self.encode_continuation(c) for c in continuations]
        seqs = [p + c for p, c in zip(pre, cont)]
        self._check_length(seqs)
        params = SamplingParams(n=1, max_tokens=1, temperature=0.0, prompt_logprobs=0, detokenize=False)
        outputs = self._generate([{"prompt_token_ids": s} for s in seqs], [params] * len(seqs))
        out: list[list[float]] = []
        for p, c, s, o in zip(pre, cont, seqs, outputs):
            self._count_prefill(len(s), o.num_cached_tokens or 0)
            plp = o.prompt_logprobs or []
            out.append([float(plp[k][s[k]].logprob) for k in range(len(p), len(s))] if c else [])
        return out

    def logprobs(self, prefixes: Sequence[str], continuations: Sequence[str]) -> list[float]:
        """log pi(continuation_i | prefix_i), summed over tokens."""
        return [float(sum(lp)) for lp in self.token_logprobs(prefixes, continuations)]


def _sampled_logprob(output, ids: list[int]) -> float:
    """Sum of the sampled tokens' raw (untempered) log-probabilities."""
    if output.logprobs:
        return float(sum(step[t].logprob for step, t in zip(output.logprobs, ids)))
    return float(output.cumulative_logprob or 0.0)
