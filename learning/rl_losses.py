"""The RL learner's arithmetic: group advantages, zero-variance filtering, policy losses, aggregation.

Pure torch functions over padded tensors, so that each choice the ScaleRL paper (arXiv
2510.13786) ablates is one argument and can be tested with fakes:

- ``group_advantages``: reward minus its prompt group's mean (GRPO, arXiv 2402.03300), scaled by
  the group's standard deviation (``"group"``), by the batch's (``"batch"``, ScaleRL) or not at all
  (``"none"``, Dr. GRPO); ``zero_variance_filter`` drops groups whose rewards are all equal, from
  the loss and from its normaliser (ScaleRL section 3).
- ``policy_loss``: the per-token surrogate of ``grpo`` (PPO clip), ``dapo`` (clip-higher, arXiv
  2503.14476), ``dr_grpo`` (PPO clip over a constant normaliser, arXiv 2503.20783), ``cispo``
  (REINFORCE with stop-gradient importance weights truncated at ε_max, MiniMax-M1 arXiv
  2506.13585) and ``gspo`` (a sequence-level importance ratio, arXiv 2507.18071). The ratio is
  always learner over *behaviour* policy: the log-probabilities the sampler's weights gave the
  tokens, whatever the lag, so off-policy tokens are corrected.
- ``aggregation_weights``: ``"token"`` (every token of the batch counts the same), ``"sequence"`` (each
  completion's token mean, then the mean over completions), ``"prompt"`` (each prompt group's
  token mean, then the mean over prompts, ScaleRL's prompt-level aggregation) or ``"constant"``
  (token sum over completions x longest completion, Dr. GRPO).

Shapes: ``[N, T]`` per completion and token, ``[N]`` per completion, ``[P, G]`` per prompt and sample.
"""

from __future__ import annotations

from roadmap.core.errors import ConfigError

__all__ = ["LOSS_TYPES", "AGGREGATIONS", "ADVANTAGE_SCALES", "group_advantages", "policy_loss", "aggregation_weights",
           "default_aggregation"]

LOSS_TYPES = ("grpo", "dapo", "dr_grpo", "cispo", "gspo")
AGGREGATIONS = ("token", "sequence", "prompt", "constant")
ADVANTAGE_SCALES = ("group", "batch", "none")


def default_aggregation(loss_type: str) -> str:
    """How each loss aggregates unless prompt-level aggregation is asked for (as its paper does)."""
    return {"grpo": "sequence", "dr_grpo": "constant", "gspo": "sequence"}.get(loss_type, "token")


def group_advantages(rewards, scale: str = "group", *, zero_variance_filter: bool = False, eps: float = 1e-4):
    """``[P, G]`` rewards -> (``[P, G]`` advantages, ``[P]`` bool: the group is kept).

    A group whose rewards are all equal has advantage 0 for every sample; with
    ``zero_variance_filter`` it is also not kept (the caller drops it from the loss's normaliser).
    ``"batch"`` divides by the standard deviation over the kept groups' centred rewards.
    """
    import torch

    if scale not in ADVANTAGE_SCALES:
        raise ConfigError(f"scale={scale!r} is not an advantage normalisation; use one of {ADVANTAGE_SCALES}")
    if rewards.dim() != 2 or rewards.shape[1] < 2:
        raise ValueError(f"rewards have shape {tuple(rewards.shape)}; pass [prompts, group size >= 2]")
    if not torch.isfinite(rewards).all():
        raise ValueError("rewards hold NaN or inf; every sample needs a finite reward")
    centred = rewards - rewards.mean(dim=1, keepdim=True)
    flat = (rewards.max(dim=1).values - rewards.min(dim=1).values) <= 1e-8
    keep = ~flat if zero_variance_filter else torch.ones_like(flat)
    centred = torch.where(flat[:, None], torch.zeros_like(centred), centred)
    if scale == "group":
        return centred / (rewards.std(dim=1, keepdim=True) + eps), keep
    if scale == "batch":
        live = centred[keep]
        std = live.std() if live.numel() > 1 else centred.new_tensor(1.0)
        return centred / (std + eps), keep
    return centred, keep


def aggregation_weights(mask, how: str, group=None):
    """``[N, T]`` weights w such that the loss is ``(per_token * w).sum()``, from the ``[N, T]`` 0/1 ``mask``.

    Every aggregation is a weighted token sum, so a batch split into micro-batches gets the
    weights of the whole batch and the same update. ``group`` (``[N]`` long, the prompt index of
    each completion) is needed for ``"prompt"``. Rows whose mask is all 0 (filtered groups) count
    nowhere, not even in the normaliser.
    """
    import torch

    mask = mask.float()
    lengths = mask.sum(dim=1)
    live = lengths > 0
    if not live.any():
        return mask  # all zero: no token counts
    if how == "token":
        return mask / mask.sum()
    if how == "sequence":
        return mask / (lengths.clamp(min=1)[:, None] * live.sum())
    if how == "constant":
        return mask / (live.sum() * mask.shape[1])
    if how == "prompt":
        if group is None:
            raise ValueError("aggregation 'prompt' needs group=[N] prompt indices")
        n = int(group.max()) + 1
        counts = torch.zeros(n, dtype=mask.dtype, device=mask.device).index_add(0, group, lengths)
        alive = int((counts > 0).sum())
        return mask / (counts[group].clamp(min=1)[:, None] * alive)
    raise ConfigError(f"aggregation={how!r} is unknown; use one of {AGGREGATIONS}")


def policy_loss(logp, behaviour_logp, advantages, mask, loss_type: str, *, epsilon: float = 0.2,
                epsilon_high: float | None = None, aggregation: str | None = None, group=None, weights=None):
    """(loss, stats) of one batch.

    Args:
        logp: ``[N, T]`` learner log pi_theta of the sampled tokens (with gradient).
        behaviour_logp: ``[N, T]`` the sampler's log-probabilities of the same tokens (no gradient).
        advantages: ``[N]`` one advantage per completion.
        mask: ``[N, T]`` 1 on completion tokens that count.
        loss_type: one of ``LOSS_TYPES``.
        epsilon, epsilon_high: the clip range [1 - epsilon, 1 + epsilon_high]; for ``cispo``
            ``epsilon_high`` is ε_max, the truncation of the importance weight (default 4); for
            ``gspo`` the defaults are the paper's 3e-4 / 4e-4; for ``dapo`` epsilon_high defaults to 0.28.
        aggregation: one of ``AGGREGATIONS``; None: the loss's own (``default_aggregation``).
        group: ``[N]`` prompt index of each completion (for ``"prompt"`` aggregation).
        weights: ``[N, T]`` precomputed ``aggregation_weights`` (of the whole batch, when this is
            a micro-batch of it); None: computed here from ``mask``.

    Returns:
        The scalar loss and a dict of floats: ``max_abs_log_ratio``, ``mean_ratio`` and
        ``clipped`` (share of counted tokens whose ratio was clipped or truncated).
    """
    import torch

    if loss_type not in LOSS_TYPES:
        raise ConfigError(f"loss_type={loss_type!r} is not supported; use one of {LOSS_TYPES}")
    m = mask.to(logp.dtype)
    log_ratio = (logp - behaviour_logp) * m
    adv = advantages[:, None].to(logp.dtype)
    if loss_type == "gspo":
        lo, hi = (3e-4 if epsilon == 0.2 else epsilon), (epsilon_high if epsilon_high is not None else 4e-4)
        seq = log_ratio.sum(dim=1) / m.sum(dim=1).clamp(min=1)
        ratio = torch.exp(seq.detach()[:, None] + logp - logp.detach())  # value s_i, gradient of the token mean
        per_token = -torch.min(ratio * adv, ratio.clamp(1 - lo, 1 + hi) * adv)
        clipped = ((ratio < 1 - lo) | (ratio > 1 + hi)).to(logp.dtype)
    elif loss_type == "cispo":
        eps_max = epsilon_high if epsilon_high is not None else 4.0
        ratio = torch.exp(log_ratio)
        weight = ratio.clamp(max=eps_max).detach()
        per_token = -weight * adv * logp
        clipped = (ratio > eps_max).to(logp.dtype)
    else:
        hi = epsilon_high if epsilon_high is not None else (0.28 if loss_type == "dapo" else epsilon)
        ratio = torch.exp(log_ratio)
        per_token = -torch.min(ratio * adv, ratio.clamp(1 - epsilon, 1 + hi) * adv)
        clipped = ((ratio < 1 - epsilon) | (ratio > 1 + hi)).to(logp.dtype)
    if weights is None:
        weights = aggregation_weights(m, aggregation or default_aggregation(loss_type), group)
    loss = (per_token * weights.to(per_token.dtype)).sum()
    count = m.sum().clamp(min=1)
    with torch.no_grad():
        stats = {"max_abs_log_ratio": float(log_ratio.abs().max()) if m.any() else 0.0,
                 "mean_ratio": float((torch.exp(log_ratio) * m).sum() / count),
                 "clipped": float((clipped * m).sum() / count)}
    return loss, stats
