"""Log-probabilities of given tokens without a [B, T, V] logits tensor.

A causal LM's forward builds logits for every position: at batch 64 x 512 tokens x Qwen's
151,936-token vocabulary that is about 20 GiB in fp32 (37 GiB once log_softmax copies it).
Scoring needs one number per position, log pi(token_t | tokens_<t). ``next_token_logprobs``
runs the decoder once, then applies the LM head to ``chunk_tokens`` positions at a time in
fp32 (the "FP32 head" of ScaleRL), keeps the gathered log-probability and drops the chunk's
logits. Under autograd each chunk is recomputed in backward (activation checkpointing), so
training through it is as frugal as inference.
"""

from __future__ import annotations

from roadmap.core.errors import ConfigError

__all__ = ["next_token_logprobs", "DEFAULT_CHUNK_TOKENS"]

#: positions whose logits exist at once: 4096 x 151,936 x 4 bytes is about 2.3 GiB
DEFAULT_CHUNK_TOKENS = 4096


def _head_logprobs(hidden, targets, head, softcap, temperature=1.0, fp32_head=True):
    import torch

    if getattr(head, "weight", None) is None:  # not a plain Linear head: its own precision
        logits = head(hidden).float()
    elif fp32_head:  # in fp32 even under a bf16 autocast (which would run the matmul in bf16)
        with torch.autocast(device_type=hidden.device.type, enabled=False):
            logits = torch.nn.functional.linear(hidden.float(), head.weight.float(),
                                                None if head.bias is None else head.bias.float())
    else:  # the head in bf16, as without ScaleRL's FP32-head fix; log_softmax itself in fp32
        logits = torch.nn.functional.linear(hidden.bfloat16(), head.weight.bfloat16(),
                                            None if head.bias is None else head.bias.bfloat16()).float()
    if softcap:
        logits = torch.tanh(logits / softcap) * softcap
    if temperature != 1.0:
        logits = logits / temperature
    return torch.log_softmax(logits.float(), dim=-1).gather(-1, targets[:, None]).squeeze(-1).float()


def next_token_logprobs(model, input_ids, attention_mask=None, position_ids=None, *,
                        chunk_tokens: int = DEFAULT_CHUNK_TOKENS, temperature: float = 1.0, fp32_head: bool = True):
    """``[B, T-1]`` fp32 log pi(input_ids[:, t+1] | input_ids[:, :t+1]); 0 where the target is padding.

    ``model`` is any transformers causal LM (``get_decoder`` and ``get_output_embeddings``).
    Only positions whose target token is attended (``attention_mask`` 1) are computed.
    ``temperature`` divides the logits first (the distribution a sampler at that temperature
    draws from); ``fp32_head=False`` computes the head's matmul in bf16 instead of fp32.
    """
    import torch
    from torch.utils.checkpoint import checkpoint

    if chunk_tokens < 1:
        raise ConfigError(f"chunk_tokens={chunk_tokens} must be at least 1")
    if not temperature > 0:
        raise ConfigError(f"temperature={temperature} must be > 0 (greedy has no log-probabilities to score)")
    decoder, head = model.get_decoder(), model.get_output_embeddings()
    if decoder is None or head is None:
        raise TypeError(f"{type(model).__name__} has no decoder/LM head to score tokens with; pass a causal LM")
    hidden = decoder(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids).last_hidden_state
    softcap = getattr(model.config, "final_logit_softcapping", None)
    batch, width = input_ids.shape
    out = hidden.new_zeros((batch, width - 1), dtype=torch.float32)
    keep = (attention_mask[:, 1:] if attention_mask is not None else torch.ones_like(input_ids[:, 1:])).bool()
    rows, cols = keep.nonzero(as_tuple=True)
    if not len(rows):
        return out
    h, targets = hidden[rows, cols], input_ids[rows, cols + 1]
    parts = []
    for start in range(0, len(rows), chunk_tokens):
        piece = (h[start : start + chunk_tokens], targets[start : start + chunk_tokens], head, softcap, temperature,
                 fp32_head)
        if torch.is_grad_enabled() and h.requires_grad:
            parts.append(checkpoint(_head_logprobs, *piece, use_reentrant=False))
        else:
            parts.append(_head_logprobs(*piece))
    return out.index_put((rows, cols), torch.cat(parts).float())
