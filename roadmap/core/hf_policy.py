"""``HFPolicy``: the embedded ``Policy`` over any transformers causal LM, with its own batched decode loop.

``HFPolicy`` samples from any transformers causal LM with its own batched decode loop:

* a prefix is prefilled once per call, however many samples are drawn from it; its KV cache
  is then copied to the sample rows (``Usage.cached_prefill_tokens`` counts what was saved);
* left padding with explicit position ids, so a row's result does not depend on its batch;
* generation stops per row at EOS or at a stop string (a step delimiter), and finished rows
  are dropped from the batch so that long-tailed step lengths do not waste compute;
* every completion carries its log-probability under the untempered policy, which search
  uses as a prior and learning as log pi.

* across calls, a bounded LRU ``PrefixCache`` keeps the KV state of every sample that stopped
  at a step boundary, so expanding a tree node prefills only the tokens its parent's state
  lacks (usually one); this is the KV reuse that tree search relies on. Models with
  sliding-window attention layers run without it (their layers keep only the window);
* the text of a completion is the model's own document (``hf_text``): ``prefix + text``
  encodes back to the ids the model generated, so stepwise search conditions each step on
  exactly what the model wrote, and joined greedy steps equal one greedy generation.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from roadmap.core.errors import ConfigError
from roadmap.core.hf_text import (
    DocumentMemory,
    as_stop_list,
    check_sample_args,
    continuation_text,
    encode_prefix,
    token_texts,
)
from roadmap.core.prefix_cache import PrefixCache, has_sliding_window, load_cached, row_states
from roadmap.core.types import Completion, Usage

logger = logging.getLogger(__name__)

__all__ = ["HFPolicy"]


class HFPolicy:
    """A ``Policy`` over a transformers causal LM and its tokenizer.

    Args:
        model: a ``PreTrainedModel`` with a causal LM head.
        tokenizer: its tokenizer; prefixes are encoded with its special tokens (e.g. BOS) unless
            they already start with the BOS token, continuations without, as SFT encodes prompt
            and completion; a prefix the policy itself wrote is encoded as the ids it wrote.
        batch_size: most sequences decoded together; larger requests are split into chunks.
        device: where to run; defaults to the model's device.
        prefix_cache_tokens: token positions kept in the cross-call KV prefix cache (LRU);
            0 turns it off. Memory per token is layers * 2 * hidden * bytes per value. Off for
            models with sliding-window attention layers (logged).
        document_memory_tokens: token ids kept of the documents the policy wrote (LRU), so that
            their text encodes back to the model's own ids.
    """

    def __init__(
        self, model, tokenizer, *, batch_size: int = 64, device=None, prefix_cache_tokens: int = 200_000,
        document_memory_tokens: int = 1_000_000,
    ) -> None:
        import torch

        if batch_size < 1:
            raise ConfigError(f"batch_size={batch_size} must be at least 1")
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.device = torch.device(device) if device is not None else next(model.parameters()).device
        if self.device != next(model.parameters()).device:
            self.model.to(self.device)
        self.model.eval()
        self.usage = Usage()
        eos = getattr(model.generation_config, "eos_token_id", None)
        if eos is None:
            eos = tokenizer.eos_token_id
        self.eos_ids = sorted({eos} if isinstance(eos, int) else set(eos or []))
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (self.eos_ids or [0])[0]
        self.max_length = getattr(model.config, "max_position_embeddings", None)
        self._token_text: list[str] | None = None
        if prefix_cache_tokens > 0 and has_sliding_window(model.config):
            logger.warning("prefix cache off: %s has sliding-window attention layers, which keep only the last "
                           "%s positions of a prefix", type(model).__name__, getattr(model.config, "sliding_window", "?"))
            prefix_cache_tokens = 0
        self.prefix_cache = PrefixCache(prefix_cache_tokens) if prefix_cache_tokens > 0 else None
        self.documents = DocumentMemory(document_memory_tokens)
        self._special_ids = set(tokenizer.all_special_ids)

    @classmethod
    def from_pretrained(
        cls, path, *, device=None, dtype=None, batch_size: int = 64, prefix_cache_tokens: int = 200_000,
        device_map=None, attn_implementation: str | None = None, trust_remote_code: bool = False,
    ) -> HFPolicy:
        """Load a checkpoint folder (or Hub id) written by ``save_pretrained``.

        ``dtype`` None or "auto" keeps the checkpoint's dtype; ``device_map``, ``attn_implementation``
        and ``trust_remote_code`` go to transformers' ``from_pretrained`` (see ``ModelOptions``).
        """
        from roadmap.core.hf_load import load_causal_lm

        model, tokenizer = load_causal_lm(path, "policy folder", dtype=dtype, device_map=device_map,
                                          attn_implementation=attn_implementation, trust_remote_code=trust_remote_code)
        if device is not None:
            model.to(device)
        return cls(model, tokenizer, batch_size=batch_size, device=device, prefix_cache_tokens=prefix_cache_tokens)

    # ------------------------------------------------------------------ encoding
    def encode_prefix(self, text: str) -> list[int]:
        """Ids of the document ``text``: the policy's own ids for what it wrote, BOS at most once."""
        return encode_prefix(self.tokenizer, self.documents, text)

    def encode_continuation(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _left_pad(self, seqs: Sequence[Sequence[int]]):
        import torch

        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for i, s in enumerate(seqs):
            if s:
                ids[i, width - len(s) :] = torch.tensor(s, dtype=torch.long)
                mask[i, width - len(s) :] = 1
        position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
        return ids.to(self.device), mask.to(self.device), position_ids.to(self.device)

    def _stop_table(self, stops: list[str]):
        """[V] bool: tokens whose text (alone or after another token) contains the last character of a stop string."""
        import torch

        if self._token_text is None:
            self._token_text = token_texts(self.tokenizer)
        ends = {s[-1] for s in stops}
        partial = any(ord(c) > 127 for c in ends)  # its last byte may sit in a token that decodes to U+FFFD
        table = torch.zeros(max(len(self._token_text), self.model.config.vocab_size), dtype=torch.bool)
        for i, t in enumerate(self._token_text):
            if any(c in t for c in ends) or (partial and "\ufffd" in t):
                table[i] = True
        return table.to(self.device)

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
        import torch

        check_sample_args(n, temperature, top_p, max_new_tokens)
        stops = as_stop_list(stop)
        generator = torch.Generator(device=self.device)
        generator.manual_seed(int(seed) if seed is not None else int(torch.randint(0, 2**62, (1,)).item()))

        encoded = [self.encode_prefix(p) for p in prefixes]
        rows = [(i, j) for i in range(len(prefixes)) for j in range(n)]
        results: list[list[Completion | None]] = [[None] * n for _ in prefixes]
        stop_table = self._stop_table(stops) if stops else None
        for start in range(0, len(rows), self.batch_size):
            chunk = rows[start : start + self.batch_size]
            row_ids = [encoded[i] for i, _ in chunk]
            completions, generated = self._sample_chunk(
                row_ids, stops, stop_table, max_new_tokens, temperature, top_p, generator
            )
            for (i, j), c, ids, gen in zip(chunk, completions, row_ids, generated):
                results[i][j] = c
                self._remember_document(prefixes[i] + c.text, ids, gen, c)
        return results  # type: ignore[return-value]

    def _sample_chunk(self, row_ids, stops, stop_table, max_new_tokens, temperature, top_p, generator):
        import torch

        unique: dict[tuple[int, ...], int] = {}
        row_to_unique = [unique.setdefault(tuple(ids), len(unique)) for ids in row_ids]
        seqs = list(unique)
        longest = max(len(s) for s in seqs)
        if self.max_length and longest >= self.max_length:
            raise ConfigError(
                f"a prefix has {longest} tokens, at or past the model's max_position_embeddings={self.max_length}; "
                "shorten the prompt or use a model with a longer context"
            )
        if self.max_length:
            max_new_tokens = min(max_new_tokens, self.max_length - longest)
        self.usage.sampled_sequences += len(row_ids)

        with torch.inference_mode():
            from transformers import DynamicCache

            cache = DynamicCache(config=self.model.config)
            hits = [self.prefix_cache.lookup(q) for q in seqs] if self.prefix_cache is not None else []
            if any(length for length, _ in hits):
                ids, mask, pos = (x.to(self.device) for x in load_cached(cache, seqs, hits, self.pad_id))
                computed = sum(len(q) - length for q, (length, _) in zip(seqs, hits))
            else:
                ids, mask, pos = self._left_pad(seqs)
                computed = sum(len(q) for q in seqs)
            self.usage.prefill_tokens += computed
            self.usage.cached_prefill_tokens += sum(len(r) for r in row_ids) - computed
            out = self.model(
                input_ids=ids,
                attention_mask=mask,
                position_ids=pos,
                past_key_values=cache,
                use_cache=True,
                logits_to_keep=1,
            )
            self.usage.forward_passes += 1
            index = torch.tensor(row_to_unique, device=self.device)
            if len(seqs) != len(row_ids) or row_to_unique != list(range(len(seqs))):
                cache.batch_select_indices(index)
            logits = out.logits[:, -1, :].float()[index]
            mask = mask[index]
            next_pos = pos[index, -1] + 1

            num_rows = len(row_ids)
            tokens = torch.full((num_rows, max_new_tokens), self.pad_id, dtype=torch.long, device=self.device)
            lengths = torch.zeros(num_rows, dtype=torch.long)
            total_lp = torch.zeros(num_rows, dtype=torch.float64, device=self.device)
            finished = [False] * num_rows
            stopped = [False] * num_rows
            eos = torch.tensor(self.eos_ids, device=self.device, dtype=torch.long)
            active = torch.arange(num_rows, device=self.device)  # original row of each batch slot
            max_stop = max((len(s) for s in stops), default=0)

            for t in range(max_new_tokens):
                logp = torch.log_softmax(logits, dim=-1)
                next_tok = self._pick(logits, logp, temperature, top_p, generator)
                total_lp[active] += logp.gather(1, next_tok[:, None]).squeeze(1).double()
                tokens[active, t] = next_tok
                done = torch.isin(next_tok, eos) if len(eos) else torch.zeros_like(next_tok, dtype=torch.bool)
                candidates = stop_table[next_tok] & ~done if stop_table is not None else None
                slots_done: list[int] = []
                if done.any() or (candidates is not None and candidates.any()):
                    act = active.tolist()
                    for slot in done.nonzero().flatten().tolist():
                        finished[act[slot]] = True
                        slots_done.append(slot)
                    if candidates is not None:
                        for slot in candidates.nonzero().flatten().tolist():
                            row = act[slot]
                            lo = max(0, t + 1 - (max_stop + 4))
                            context = (list(row_ids[row][-8:]) + tokens[row, max(0, lo - 8) : lo].tolist())[-8:]
                            tail, _ = continuation_text(self.tokenizer, context, tokens[row, lo : t + 1].tolist())
                            if any(s in tail for s in stops):
                                stopped[row] = True
                                slots_done.append(slot)
                lengths[active.cpu()] += 1
                if self.prefix_cache is not None and slots_done:
                    self._remember(cache, mask, active, slots_done, stopped, row_ids, tokens, t)
                if t == max_new_tokens - 1:
                    break
                if slots_done:
                    keep = torch.ones(len(active), dtype=torch.bool, device=self.device)
                    keep[torch.tensor(slots_done, device=self.device)] = False
                    if not keep.any():
                        break
                    keep_idx = keep.nonzero().flatten()
                    active, next_tok, mask, next_pos = (
                        active[keep_idx],
                        next_tok[keep_idx],
                        mask[keep_idx],
                        next_pos[keep_idx],
                    )
                    cache.batch_select_indices(keep_idx)
                mask = torch.cat([mask, mask.new_ones((len(active), 1))], dim=1)
                out = self.model(
                    input_ids=next_tok[:, None],
                    attention_mask=mask,
                    position_ids=next_pos[:, None],
                    past_key_values=cache,
                    use_cache=True,
                )
                self.usage.forward_passes += 1
                logits = out.logits[:, -1, :].float()
                next_pos = next_pos + 1

        lengths_l = lengths.tolist()
        self.usage.generated_tokens += sum(lengths_l)
        generated = [tokens[r, : lengths_l[r]].tolist() for r in range(num_rows)]
        lps = total_lp.tolist()
        out_c = []
        for r in range(num_rows):
            # the whole text of the token that completed a stop string stays: it is part of the document
            text, _ = continuation_text(self.tokenizer, row_ids[r], generated[r])
            out_c.append(
                Completion(text=text, num_tokens=lengths_l[r], logprob=lps[r], finished=finished[r], stopped=stopped[r])
            )
        return out_c, generated

    def _remember_document(self, text: str, prefix_ids, generated: list[int], completion: Completion) -> None:
        """Remember ``text`` (prefix plus completion) as the ids the model wrote it as, when those
        ids are exactly that text: a held-back partial character or a special token inside is not."""
        if completion.finished and generated and generated[-1] in self.eos_ids:
            generated = generated[:-1]
        if any(i in self._special_ids for i in generated):
            return
        if continuation_text(self.tokenizer, prefix_ids, generated) == (completion.text, True):
            self.documents.put(text, list(prefix_ids) + generated)

    def _remember(self, cache, mask, active, slots, stopped, row_ids, tokens, t) -> None:
        """Store the KV state of rows that just stopped at a step boundary, keyed by their tokens.

        The state covers the prefix and generated tokens 0..t-1; token t (the one that ended
        the step) is not fed yet, so the next expansion of this node prefills just that token.
        """
        rows = active.tolist()
        if self.prefix_cache is None:
            return
        for slot in slots:
            row = rows[slot]
            if not stopped[row]:
                continue
            self.prefix_cache.put(list(row_ids[row]) + tokens[row, :t].tolist(), row_states(cache, mask, slot))

    def clear_cache(self) -> None:
        """Drop every cached prefix (e.g. after the model's weights changed); remembered documents stay."""
        if self.prefix_cache is not None:
            self.prefix_cache.clear()

    @staticmethod
    def _pick(logits, logp, temperature: float, top_p: float, generator):
        import torch

        if temperature == 0:
            return logits.argmax(dim=-1)
        probs = torch.softmax(logits / temperature, dim=-1)
        if top_p < 1.0:
            sorted_p, order = probs.sort(dim=-1, descending=True)
            drop = (sorted_p.cumsum(-1) - sorted_p) > top_p
            sorted_p = sorted_p.masked_fill(drop, 0.0)
            probs = torch.zeros_like(probs).scatter(-1, order, sorted_p)
        return torch.multinomial(probs, 1, generator=generator).squeeze(1)

    # ------------------------------------------------------------------ scoring
    def token_logprobs(self, prefixes: Sequence[str], continuations: Sequence[str]) -> list[list[float]]:
        """Per-token log pi of each continuation given its prefix (untempered).

        A continuation the policy wrote after that prefix is scored as the ids it wrote; the LM
        head runs in fp32 chunks (``next_token_logprobs``), never as a [B, T, V] tensor.
        """
        import torch

        from roadmap.core.logits import next_token_logprobs

        if len(prefixes) != len(continuations):
            raise ValueError(
                f"got {len(prefixes)} prefixes but {len(continuations)} continuations; pass one continuation per prefix"
            )
        pre = [self.encode_prefix(p) for p in prefixes]
        cont = [self._continuation_ids(p, ids, c) for p, ids, c in zip(prefixes, pre, continuations)]
        out: list[list[float]] = []
        for start in range(0, len(pre), self.batch_size):
            p_chunk, c_chunk = pre[start : start + self.batch_size], cont[start : start + self.batch_size]
            seqs = [p + c for p, c in zip(p_chunk, c_chunk)]
            with torch.inference_mode():
                ids, mask, pos = self._left_pad(seqs)
                logp = next_token_logprobs(self.model, ids, mask, pos)
            self.usage.prefill_tokens += sum(len(s) for s in seqs)
            self.usage.forward_passes += 1
            width = ids.shape[1]
            for r, c in enumerate(c_chunk):
                # token k of the row sits at column width-len(seq)+k and is predicted by column-1
                out.append(logp[r, width - len(c) - 1 : width - 1].tolist() if c else [])
        return out

    def _continuation_ids(self, prefix: str, prefix_ids: list[int], continuation: str) -> list[int]:
        hit = self.documents.longest_prefix(prefix + continuation) if continuation else None
        if hit is not None and hit[0] == len(prefix) + len(continuation) and list(hit[1][: len(prefix_ids)]) == prefix_ids:
            return list(hit[1][len(prefix_ids) :])
        return self.encode_continuation(continuation)

    def logprobs(self, prefixes: Sequence[str], continuations: Sequence[str]) -> list[float]:
        return [float(sum(lp)) for lp in self.token_logprobs(prefixes, continuations)]
