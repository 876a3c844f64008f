"""The two roles of online RL: a sampler that writes rollouts, a learner that trains on them.

As in PipelineRL (arXiv 2509.19128) and ScaleRL (arXiv 2510.13786) the roles are separate
objects that meet only through ``RolloutGroup`` records and weight updates:

- ``Sampler`` draws a group of completions per prompt from a ``Policy`` (the project's own
  ``HFPolicy``; any policy whose ``model`` is a torch module can take weight updates), scores
  them with TRL-signature reward functions, and tags every group with the weight ``version`` it
  was sampled with and the sampler's log-probabilities of its tokens (the behaviour policy).
- ``RolloutBuffer`` hands the learner only groups at most ``max_lag`` optimizer steps old; an
  older group is dropped and counted, never trained on.
- ``RLLearner`` owns the trainable model and its optimizer; one ``step`` turns groups into
  advantages (``learning.rl_losses``) and one optimizer update, importance-weighted against the
  behaviour log-probabilities, so off-policy tokens are corrected.

The roles alternate in one process (``learning.rl_loop``), or run at once as two Ray actors
(``learning.rl_async``, ``RLConfig.async_sampler``) with the same records and the same lag rule.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from learning.rl_losses import aggregation_weights, default_aggregation, group_advantages, policy_loss
from roadmap.core.errors import ConfigError

__all__ = ["RolloutGroup", "RolloutBuffer", "Sampler", "RLLearner", "combine_rewards", "padded"]


@dataclass
class RolloutGroup:
    """The G completions the sampler drew for one prompt.

    Attributes:
        problem_id: the problem's id (pass rates and retirement are counted by it).
        prompt: the prompt text.
        prompt_ids: its token ids, as the sampler encoded them (BOS included).
        completion_ids: G lists of generated ids, EOS included where the sample finished.
        behaviour_logps: G lists, the sampler's log-probability of each completion token at the
            sampling temperature, one per id of ``completion_ids``.
        sampler_logprob: G sums of untempered log-probabilities the decode loop reported.
        rewards: G weighted reward sums.
        correct: G verifier rewards (1 right, 0 wrong): the pass rate.
        finished: G flags: the sample ended with EOS (else it was cut at the length limit).
        version: optimizer steps the sampler's weights had taken.
        exact: G flags: the ids are the ones generated (the policy remembered the document). A
            sample whose text does not encode back to its ids (a special token inside) is not
            trained on: its re-encoded ids are not what the sampler's log-probabilities are of.
    """

    problem_id: str
    prompt: str
    prompt_ids: list[int]
    completion_ids: list[list[int]]
    behaviour_logps: list[list[float]]
    sampler_logprob: list[float]
    rewards: list[float]
    correct: list[float]
    finished: list[bool]
    version: int
    exact: list[bool] = field(default_factory=list)

    @property
    def pass_rate(self) -> float:
        return sum(self.correct) / len(self.correct)


class RolloutBuffer:
    """Groups waiting for the learner; ``take`` drops every group older than ``max_lag`` steps."""

    def __init__(self, max_lag: int) -> None:
        if max_lag < 0:
            raise ConfigError(f"max_lag={max_lag} must be >= 0 (0: on-policy; 8: PipelineRL-8)")
        self.max_lag = max_lag
        self.groups: list[RolloutGroup] = []
        self.stale_dropped = 0

    def put(self, groups: Sequence[RolloutGroup]) -> None:
        self.groups.extend(groups)

    def take(self, learner_version: int, n: int) -> list[RolloutGroup]:
        """Up to ``n`` groups, oldest first, none more than ``max_lag`` versions behind ``learner_version``."""
        fresh = [g for g in self.groups if learner_version - g.version <= self.max_lag]
        self.stale_dropped += len(self.groups) - len(fresh)
        out, self.groups = fresh[:n], fresh[n:]
        return out


def combine_rewards(reward_fns: Sequence, weights: Sequence[float], prompts: list[str], completions: list[str],
                    **columns) -> tuple[list[float], list[float], dict[str, float]]:
    """(weighted sums, first function's rewards, each function's mean by name) over TRL-signature reward functions.

    A reward of None means "this function does not apply to that sample" and adds 0 (as TRL's
    nansum does); a NaN or infinite reward, or a list of the wrong length, is an error that
    names the function. The first function is the verifier; its rewards are the pass rate.
    """
    total = [0.0] * len(prompts)
    first: list[float] = []
    terms: dict[str, float] = {}
    for k, (fn, w) in enumerate(zip(reward_fns, weights)):
        name = getattr(fn, "__name__", type(fn).__name__)
        out = list(fn(prompts, completions, **columns))
        if len(out) != len(prompts):
            raise ValueError(f"reward function {name!r} returned {len(out)} rewards for {len(prompts)} completions; "
                             "return one per completion (None where it does not apply)")
        for i, r in enumerate(out):
            if r is None:
                continue
            r = float(r)
            if not math.isfinite(r):
                raise ValueError(f"reward function {name!r} returned {r} for completion {i} "
                                 f"({completions[i][:60]!r}); return a finite number, or None where it does not apply")
            total[i] += w * r
        if k == 0:
            first = [0.0 if r is None else float(r) for r in out]
        given = [float(r) for r in out if r is not None]
        terms[name] = sum(given) / len(given) if given else float("nan")
    return total, first, terms


def padded(seqs: Sequence[Sequence[int]], pad_id: int, device=None):
    """Right-padded ``[B, T]`` ids, attention mask and position ids (0.. per row)."""
    import torch

    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(list(s), dtype=torch.long)
        mask[i, : len(s)] = 1
    pos = torch.arange(width).expand(len(seqs), width).contiguous()
    return ids.to(device), mask.to(device), pos.to(device)


def _completion_logps(model, prompt_lens, seqs, pad_id, *, temperature, fp32_head, device):
    """``[B, T]`` log-probs of each row's completion tokens (row r's token k at column k) and their mask."""
    import torch

    from roadmap.core.logits import next_token_logprobs

    ids, mask, pos = padded(seqs, pad_id, device)
    lp = next_token_logprobs(model, ids, mask, pos, temperature=temperature, fp32_head=fp32_head)  # [B, W-1]
    width = max(len(s) - p for s, p in zip(seqs, prompt_lens))
    idx = torch.tensor([[min(p - 1 + k, ids.shape[1] - 2) for k in range(width)] for p in prompt_lens], device=device)
    cmask = torch.tensor([[1 if k < len(s) - p else 0 for k in range(width)] for s, p in zip(seqs, prompt_lens)],
                         device=device)
    return lp.gather(1, idx) * cmask, cmask


def continuation_ids(policy, prompt: str, prompt_ids: list[int], text: str) -> list[int]:
    """The ids of ``text`` after ``prompt`` (encoded ``prompt_ids``), as the prompt and text encode together; a
    tokenizer whose merges cross the boundary gets the text encoded on its own."""
    if not text:
        return []
    full = policy.encode_prefix(prompt + text)
    return full[len(prompt_ids):] if full[: len(prompt_ids)] == prompt_ids else policy.encode_continuation(text)


def progress_postfix(bar, groups, stats: dict) -> None:
    """One RL step on the progress bar: its mean reward and the groups kept past the zero-variance filter."""
    rewards = [r for g in groups for r in g.rewards]
    bar.set_postfix(reward=f"{sum(rewards) / max(1, len(rewards)):.3f}",
                    kept=f"{len(groups) - stats.get('zero_variance_dropped', 0)}/{len(groups)}")
    bar.update(1)


@dataclass
class Sampler:
    """Draws ``group_size`` completions per prompt from ``policy`` and scores them.

    Attributes:
        policy: a ``Policy`` with ``model`` (a torch module taking ``load_state_dict``) and ``tokenizer``.
        task: the task (its ``prompt``).
        reward_fns, reward_weights: TRL-signature reward functions (the verifier first) and their weights.
        group_size, temperature, max_new_tokens, fp32_head: sampling settings.
        version: optimizer steps of the weights it holds.
    """

    policy: Any
    task: Any
    reward_fns: Sequence
    reward_weights: Sequence[float]
    group_size: int
    temperature: float
    max_new_tokens: int
    fp32_head: bool = True
    version: int = 0
    tokens: dict[str, int] = field(default_factory=lambda: {"generated": 0, "prefill": 0})
    last_terms: dict[str, float] = field(default_factory=dict)

    def load_weights(self, state_dict, version: int) -> None:
        """An in-flight weight update: the learner's weights after ``version`` steps."""
        model = getattr(self.policy, "model", None)
        if model is None or not hasattr(model, "load_state_dict"):
            raise TypeError(f"{type(self.policy).__name__} has no torch model to update; the sampler needs a policy "
                            "whose .model takes load_state_dict (HFPolicy), or a backend with its own weight sync")
        model.load_state_dict(state_dict)
        if hasattr(self.policy, "clear_cache"):
            self.policy.clear_cache()  # cached prefixes hold the old weights' keys and values
        self.version = version

    def rollouts(self, problems: Sequence, seed: int) -> list[RolloutGroup]:
        import torch

        p = self.policy
        prompts = [self.task.prompt(x) for x in problems]
        before = (p.usage.generated_tokens, p.usage.prefill_tokens)
        outs = p.sample(prompts, n=self.group_size, temperature=self.temperature, max_new_tokens=self.max_new_tokens,
                        seed=seed)
        eos = p.eos_ids[0] if p.eos_ids else None
        flat_prompts, flat_texts, seqs, plens, meta = [], [], [], [], []
        for prob, prompt, group in zip(problems, prompts, outs):
            pids = p.encode_prefix(prompt)
            for c in group:
                hit = p.documents.longest_prefix(prompt + c.text) if hasattr(p, "documents") else None
                exact = not c.text or (hit is not None and hit[0] == len(prompt + c.text))
                comp = continuation_ids(p, prompt, pids, c.text)
                if c.finished and eos is not None:
                    comp = comp + [eos]
                if not comp:
                    comp = [eos if eos is not None else p.pad_id]
                flat_prompts.append(prompt)
                flat_texts.append(c.text)
                seqs.append(pids + comp)
                plens.append(len(pids))
                meta.append((prob, pids, comp, c, exact))
        with torch.inference_mode():
            blp, bmask = _completion_logps(p.model, plens, seqs, p.pad_id, temperature=self.temperature,
                                           fp32_head=self.fp32_head, device=p.device)
        self.tokens["generated"] += p.usage.generated_tokens - before[0]
        self.tokens["prefill"] += p.usage.prefill_tokens - before[1] + sum(len(s) for s in seqs)
        rewards, correct, self.last_terms = combine_rewards(
            self.reward_fns, self.reward_weights, flat_prompts, flat_texts,
            answer=[m[0].answer for m in meta], question=[m[0].question for m in meta], id=[m[0].id for m in meta])
        groups = []
        g = self.group_size
        for i, prob in enumerate(problems):
            rows = range(i * g, (i + 1) * g)
            groups.append(RolloutGroup(
                problem_id=prob.id, prompt=prompts[i], prompt_ids=meta[i * g][1],
                completion_ids=[meta[r][2] for r in rows],
                behaviour_logps=[blp[r, : int(bmask[r].sum())].tolist() for r in rows],
                sampler_logprob=[meta[r][3].logprob for r in rows], rewards=[rewards[r] for r in rows],
                correct=[correct[r] for r in rows], finished=[meta[r][3].finished for r in rows],
                version=self.version, exact=[meta[r][4] for r in rows]))
        return groups


class RLLearner:
    """The trainable model, its AdamW optimizer, and one RL update per ``step``."""

    def __init__(self, model, pad_id: int, config) -> None:
        import torch

        self.model, self.pad_id, self.config = model, pad_id, config
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, betas=(0.9, 0.99),
                                           weight_decay=0.0)
        self.version = 0
        self.train_tokens = 0

    @property
    def device(self):
        return next(self.model.parameters()).device

    def step(self, groups: Sequence[RolloutGroup], demos: Sequence[tuple[list[int], list[int]]] | None = None
             ) -> dict[str, float]:
        """One optimizer update on ``groups``, plus ``config.sft_weight`` x the mean token NLL of ``demos``
        ((prompt ids, completion ids) pairs) when given; returns its statistics."""
        import torch

        c = self.config
        how = "prompt" if c.prompt_level_loss else default_aggregation(c.loss_type)
        adv, rows, dropped = None, [], 0
        if groups:
            rewards = torch.tensor([gr.rewards for gr in groups], dtype=torch.float32)
            adv, keep = group_advantages(rewards, c.scale_rewards, zero_variance_filter=c.zero_variance_filter)
            adv = torch.where(adv < 0, adv * c.negative_weight, adv)
            rows = [(i, j) for i, gr in enumerate(groups) if keep[i] for j in range(len(gr.rewards))
                    if not gr.exact or gr.exact[j]]
            dropped = int((~keep).sum())
        stats = {"groups": len(groups), "inexact": sum(not e for gr in groups for e in gr.exact),
                 "zero_variance_dropped": dropped, "loss": 0.0, "max_abs_log_ratio": 0.0, "mean_ratio": 1.0,
                 "clipped": 0.0, "rows": len(rows)}
        self.version += 1
        demos = list(demos or []) if c.sft_weight else []
        if not rows and not demos:
            return stats  # nothing carries signal; the step is spent, as its samples were
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        dev = self.device
        if demos:  # the mean token NLL over all demonstrations, in gradient_accumulation_steps passes
            tokens = max(1, sum(len(q) for _, q in demos))
            per = math.ceil(len(demos) / max(1, c.gradient_accumulation_steps))
            nll = 0.0
            for s in range(0, len(demos), per):
                part = demos[s:s + per]
                lp, m = _completion_logps(self.model, [len(p) for p, _ in part], [p + q for p, q in part],
                                          self.pad_id, temperature=1.0, fp32_head=c.fp32_lm_head, device=dev)
                part_nll = -(lp * m).sum()
                (c.sft_weight * part_nll / tokens).backward()
                nll += float(part_nll.detach())
            stats["sft_loss"] = nll / tokens
            self.train_tokens += sum(len(p) + len(q) for p, q in demos)
        if rows:
            self._policy_gradient(groups, rows, adv, how, stats)
        stats["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), c.max_grad_norm))
        # linear warm-up: Adam's first updates are about lr * sign(g) in every weight, noise included
        lr = c.learning_rate * min(1.0, self.version / max(1, c.warmup_steps))
        if c.decay_steps:  # warmup-stable-decay: the last decay_steps steps anneal to 0
            lr *= min(1.0, max(0, c.max_steps - self.version + 1) / c.decay_steps)
        for g in self.optimizer.param_groups:
            g["lr"] = lr
        stats["lr"] = lr
        self.optimizer.step()
        return stats

    def _policy_gradient(self, groups, rows, adv, how: str, stats: dict) -> None:
        """Accumulate the policy-gradient loss of ``rows`` ((group, sample) pairs) into the gradients."""
        import torch

        c, dev = self.config, self.device
        seqs = [groups[i].prompt_ids + groups[i].completion_ids[j] for i, j in rows]
        plens = [len(groups[i].prompt_ids) for i, _ in rows]
        width = max(len(groups[i].completion_ids[j]) for i, j in rows)
        beh = torch.zeros((len(rows), width))
        for r, (i, j) in enumerate(rows):
            b = groups[i].behaviour_logps[j]
            beh[r, : len(b)] = torch.tensor(b)
        cmask = torch.tensor([[1.0 if k < len(groups[i].completion_ids[j]) else 0.0 for k in range(width)]
                              for i, j in rows])
        group_idx = torch.tensor([i for i, _ in rows])
        weights = aggregation_weights(cmask, how, group_idx)
        a = torch.tensor([float(adv[i, j]) for i, j in rows])
        chunks = max(1, c.gradient_accumulation_steps)
        per = math.ceil(len(rows) / chunks)
        for s in range(0, len(rows), per):
            sl = slice(s, s + per)
            lp, m = _completion_logps(self.model, plens[sl], seqs[sl], self.pad_id, temperature=c.temperature,
                                      fp32_head=c.fp32_lm_head, device=dev)
            w = weights[sl, : lp.shape[1]].to(dev)
            loss, st = policy_loss(lp, beh[sl, : lp.shape[1]].to(dev), a[sl].to(dev), m, c.loss_type,
                                   epsilon=c.epsilon, epsilon_high=c.epsilon_high, weights=w, group=group_idx[sl])
            loss.backward()
            stats["loss"] += float(loss.detach())
            stats["max_abs_log_ratio"] = max(stats["max_abs_log_ratio"], st["max_abs_log_ratio"])
            stats["mean_ratio"], stats["clipped"] = st["mean_ratio"], st["clipped"]
        self.train_tokens += sum(len(s) for s in seqs)
