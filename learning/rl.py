"""Online RL: GRPO, DAPO, Dr. GRPO, CISPO and GSPO losses, a sampler-learner loop, and a ScaleRL preset.

``rl_step`` runs the project's own loop by default (``trainer="own"``, ``learning.rl_loop``): the
sampler is an ``HFPolicy`` (the same sampling code as search and evaluation), the learner a
compact loss over chunked fp32-head log-probabilities (``learning.rl_losses``), with a bounded
lag ``max_lag`` between the weights that sampled and the weights that learn (PipelineRL, arXiv
2509.19128). ``trainer="trl"`` runs TRL's GRPOTrainer instead (``learning.rl_trl``).

Rewards come from ``rewards``: the verifier (1 for a right final answer), optionally plus a
PRM's score of the completion (``prm_weight``), the shaping rewards named in ``shaping``
(``SHAPING_REWARDS``: a format reward, DAPO's soft overlong punishment, arXiv 2503.14476) and any
other TRL reward function passed in; TRL sums them with their weights before the group-relative
advantages. Potential-based shaping and PRIME's implicit step rewards (``rewards.shaping``) are
not offered here: they are per-step rewards, and GRPO's advantage is one number per
completion. Summed over a completion, the potential-based term telescopes to -Phi(s_0), the
same for every sample of a prompt, which group normalisation removes (the policy invariance of
Ng et al. 1999, seen from the sequence level).

The ScaleRL preset (arXiv 2510.13786, section 3) is:

- CISPO loss (truncated importance-sampling REINFORCE, MiniMax-M1) with ε_max = 5;
- FP32 logits at the LM head;
- batch-level advantage normalisation;
- prompt-level loss aggregation: every prompt's tokens are averaged first, then prompts are averaged;
- zero-variance filtering: prompts whose samples all got the same reward carry no signal and
  are removed from the loss and from its normaliser;
- no-positive-resampling: prompts the policy already solves (pass rate at least 0.9) are not
  sampled again, as the ``retired`` set that ``rl_step`` returns and accepts;
- PipelineRL-8 staleness (``max_lag=8``) where sampler and learner run apart.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from learning.rl_losses import LOSS_TYPES
from rewards.shaping import get_format_reward, get_soft_overlong_reward
from roadmap.core.errors import ConfigError, DataError
from roadmap.core.lengths import Lengths
from roadmap.core.precision import (
    check_memory_fields,
    gradient_checkpointing_field,
    mixed_precision_field,
)
from roadmap.core.training import TrainResult, overwrite_field, time_cap_field

__all__ = ["RLConfig", "RLResult", "rl_step", "rl_rewards", "scalerl_config", "LOSS_TYPES", "SHAPING_REWARDS",
           "TRAINERS"]

TRAINERS = ("own", "trl")


def _format_reward(task, config: RLConfig):
    """1 for a completion with steps and a parsable final answer, else 0."""
    return get_format_reward(task)


def _overlong_reward(task, config: RLConfig):
    """DAPO's soft overlong punishment: 0, then down to -1 over the last ``overlong_cache`` tokens."""
    longest = config.lengths.rl_completion_tokens
    return get_soft_overlong_reward(longest, config.overlong_cache or max(1, longest // 4))


#: shaping rewards by name: ``factory(task, config)`` -> a TRL reward function
SHAPING_REWARDS = {"format": _format_reward, "overlong": _overlong_reward}


@dataclass
class RLConfig:
    """Knobs of one online-RL run; ``scalerl_config`` gives the ScaleRL preset."""

    output_dir: str = field(default="rl-policy", metadata={"help": "Where the updated policy is written."})
    overwrite: bool = overwrite_field()
    trainer: str = field(default="own", metadata={
        "help": "own: the project's sampler-learner loop (HFPolicy sampler); trl: TRL's GRPOTrainer."})
    loss_type: str = field(default="dapo", metadata={"help": "grpo | dapo | dr_grpo | cispo | gspo (gspo: own only)."})
    num_generations: int = field(default=8, metadata={"help": "Samples per prompt (the group)."})
    prompts_per_step: int = field(default=16, metadata={"help": "Prompts per optimizer step."})
    max_steps: int = field(default=50, metadata={"help": "Optimizer steps."})
    max_minutes: float | None = time_cap_field()
    learning_rate: float = field(default=5e-5, metadata={"help": "Peak learning rate."})
    beta: float = field(default=0.0, metadata={"help": "KL weight to the reference (0: no reference model)."})
    epsilon: float = field(default=0.2, metadata={"help": "Lower clip of the importance ratio (1 - epsilon)."})
    epsilon_high: float | None = field(default=None, metadata={"help": "Upper clip (ε_max for CISPO)."})
    max_lag: int = field(default=0, metadata={
        "help": "Most optimizer steps between the weights that sampled a group and the weights that learn from it; "
                "older groups are dropped (0: on-policy; 8: ScaleRL's PipelineRL-8). Own trainer."})
    async_sampler: bool = field(default=False, metadata={
        "help": "Own trainer: run the sampler and the learner as two Ray actors (one core each) that work at once, "
                "the sampler drawing the next batch while the learner trains on this one (PipelineRL); false: the "
                "roles take turns in this process. Needs max_lag >= 1 (learning.rl_async)."})
    weight_sync_every: int = field(default=1, metadata={
        "help": "async_sampler: optimizer steps between the learner's weights being sent to the running sampler "
                "(1: after every step; k: batches are up to k steps old, those past max_lag are dropped)."})
    sampler_restarts: int = field(default=1, metadata={
        "help": "async_sampler: times a dead sampler actor is restarted (Ray max_restarts) before the run stops."})
    ray_address: str | None = field(default=None, metadata={
        "help": "async_sampler: a Ray cluster to join (HOST:PORT, as --ray-address); None: a local Ray of 2 CPUs."})
    warmup_steps: int = field(default=0, metadata={
        "help": "Steps of linear learning-rate warm-up (own trainer; 0: none). Adam's first steps move every weight "
                "by about the learning rate, whatever its gradient's noise."})
    decay_steps: int = field(default=0, metadata={
        "help": "Last steps of max_steps over which the learning rate falls linearly (k/decay_steps of the peak at the k-th "
                "step from the end; warmup-stable-decay; "
                "0: constant after the warm-up). Own trainer."})
    max_grad_norm: float = field(default=1.0, metadata={"help": "Gradient-norm clip. Own trainer."})
    checkpoint_every: int = field(default=1, metadata={
        "help": "Steps between resumable checkpoints (own trainer, when the caller gives a checkpoint folder)."})
    temperature: float = field(default=1.0, metadata={"help": "Sampling temperature."})
    scale_rewards: str = field(default="group", metadata={"help": "Advantage normalisation: group | batch | none."})
    fp32_lm_head: bool = field(default=False, metadata={"help": "Compute logits in FP32."})
    prompt_level_loss: bool = field(default=False, metadata={"help": "Average tokens per prompt, then over prompts."})
    zero_variance_filter: bool = field(default=False, metadata={"help": "Drop prompts whose rewards are all equal."})
    verifier: str = field(default="answer", metadata={
        "help": "The reward: answer (the final answer is right) | steps (and the task's step checker accepts every "
                "step; arith: an outcome reward also pays for right answers reached through wrong steps)."})
    negative_weight: float = field(default=1.0, metadata={
        "help": "Scale of the negative advantages (below-mean samples): 1 is the policy gradient; 0 learns only from "
                "better-than-average samples (RAFT++ / Reinforce-Rej, arXiv 2504.11343). Own trainer."})
    sft_weight: float = field(default=0.0, metadata={
        "help": "Weight of a supervised term added to every RL step: the mean token NLL of sft_batch demonstrations "
                "(rl_step's demonstrations=; the ladder passes its seed set), as InstructGPT's PPO-ptx keeps "
                "pretraining data in the loss. 0: pure RL. Own trainer, alternating loop."})
    sft_batch: int = field(default=16, metadata={"help": "Demonstrations drawn for the supervised term per step."})
    retire_pass_rate: float | None = field(default=None, metadata={
        "help": "No-positive-resampling: stop sampling prompts whose pass rate reached this (ScaleRL: 0.9)."})
    prm_weight: float = field(default=0.0, metadata={"help": "Weight of the PRM-shaped reward (needs a scorer)."})
    shaping: dict[str, float] = field(default_factory=dict, metadata={
        "help": "Shaping rewards added beside the verifier, name -> weight, e.g. {'format': 0.1}: 'format' (1 for "
                "steps and a parsable final answer, else 0), 'overlong' (DAPO's soft overlong punishment, 0 to -1)."})
    overlong_cache: int | None = field(default=None, metadata={
        "help": "Last tokens before lengths.rl_completion_tokens over which 'overlong' falls to -1 (None: a quarter)."})
    eval_every: int = field(default=0, metadata={
        "help": "Greedy held-out accuracy every this many steps (0: never): the points of a compute-performance fit."})
    eval_problems: int = field(default=200, metadata={"help": "Held-out problems of each evaluation."})
    seed: int = field(default=0, metadata={"help": "Seed."})
    lengths: Lengths = field(default_factory=Lengths, metadata={
        "help": "Length limits; a sampled completion is at most lengths.rl_completion_tokens long (in a recipe: "
                "top-level lengths:)."})
    mixed_precision: str = mixed_precision_field()
    gradient_checkpointing: bool = gradient_checkpointing_field()
    gradient_accumulation_steps: int = field(default=1, metadata={
        "help": "Micro-batches per optimizer step: the prompts_per_step x num_generations completions of a step are "
                "trained in this many forward/backward passes (less memory, the same update)."})

    def __post_init__(self) -> None:
        if self.trainer not in TRAINERS:
            raise ConfigError(f"trainer={self.trainer!r} is unknown; use one of {TRAINERS}")
        if self.loss_type not in LOSS_TYPES:
            raise ConfigError(f"loss_type={self.loss_type!r} is not supported here; use one of {LOSS_TYPES}")
        if self.trainer == "trl" and self.loss_type == "gspo":
            raise ConfigError("loss_type='gspo' runs on trainer='own'; set trainer: own")
        if self.trainer == "own" and self.beta:
            raise ConfigError(f"beta={self.beta}: the own trainer has no reference model; set beta: 0 or trainer: trl")
        if self.verifier not in ("answer", "steps"):
            raise ConfigError(f"verifier={self.verifier!r} is unknown; use 'answer' or 'steps'")
        if self.trainer == "trl" and self.negative_weight != 1.0:
            raise ConfigError(f"negative_weight={self.negative_weight} runs on trainer='own'; set trainer: own")
        if not 0.0 <= self.negative_weight <= 1.0:
            raise ConfigError(f"negative_weight={self.negative_weight} must lie in [0, 1] (1: plain policy gradient; "
                              "0: positive advantages only)")
        if not self.sft_weight >= 0:
            raise ConfigError(f"sft_weight={self.sft_weight} must be >= 0 (0: pure RL)")
        if self.sft_batch < 1:
            raise ConfigError(f"sft_batch={self.sft_batch} must be at least 1")
        if self.sft_weight and (self.trainer != "own" or self.async_sampler):
            raise ConfigError(f"sft_weight={self.sft_weight} runs on trainer='own' with async_sampler: false; set "
                              "those, or sft_weight: 0")
        if self.max_lag < 0:
            raise ConfigError(f"max_lag={self.max_lag} must be >= 0 (0: on-policy; 8: PipelineRL-8)")
        if self.async_sampler and self.trainer != "own":
            raise ConfigError("async_sampler=True runs on trainer='own'; set trainer: own or async_sampler: false")
        if self.async_sampler and self.max_lag < 1:
            raise ConfigError(f"async_sampler=True with max_lag={self.max_lag}: the sampler draws the next batch while "
                             "the learner trains, so every batch is at least one step old; set max_lag: 1 or more, or "
                             "async_sampler: false for on-policy (max_lag 0) training")
        if self.weight_sync_every < 1:
            raise ConfigError(f"weight_sync_every={self.weight_sync_every} must be >= 1 (1: send the weights after every "
                             "optimizer step)")
        if self.sampler_restarts < 0:
            raise ConfigError(f"sampler_restarts={self.sampler_restarts} must be >= 0 (0: a dead sampler stops the run)")
        if not self.temperature > 0:
            raise ConfigError(f"temperature={self.temperature} must be > 0: RL samples (greedy has no exploration)")
        if self.warmup_steps < 0:
            raise ConfigError(f"warmup_steps={self.warmup_steps} must be >= 0")
        if not 0 <= self.decay_steps <= self.max_steps:
            raise ConfigError(f"decay_steps={self.decay_steps} must lie in [0, max_steps={self.max_steps}]")
        if self.checkpoint_every < 1:
            raise ConfigError(f"checkpoint_every={self.checkpoint_every} must be at least 1")
        if self.num_generations < 2:
            raise ConfigError(f"num_generations={self.num_generations} must be at least 2 (advantages need a group)")
        if self.scale_rewards not in ("group", "batch", "none"):
            raise ConfigError(f"scale_rewards={self.scale_rewards!r} must be 'group', 'batch' or 'none'")
        _check_shaping(self.shaping)
        longest = self.lengths.rl_completion_tokens
        if self.overlong_cache is not None and not 0 < self.overlong_cache <= longest:
            raise ConfigError(f"overlong_cache={self.overlong_cache} must lie in (0, lengths.rl_completion_tokens="
                              f"{longest}], or be None for a quarter of it")
        check_memory_fields(self, self.prompts_per_step * self.num_generations, "prompts_per_step x num_generations")


def _check_shaping(shaping) -> None:
    known = sorted(SHAPING_REWARDS)
    if not isinstance(shaping, dict):
        raise ConfigError(f"shaping={shaping!r} must map shaping reward names to weights, e.g. {{'format': 0.1}}; "
                              f"known names: {known}")
    unknown = sorted(str(k) for k in set(shaping) - set(SHAPING_REWARDS))
    if unknown:
        raise ConfigError(f"shaping has unknown reward name(s) {unknown}; known names: {known}")
    for name, weight in shaping.items():
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight):
            raise ConfigError(f"shaping[{name!r}]={weight!r} must be a finite number: the weight of that reward")


@dataclass(kw_only=True)
class RLResult(TrainResult):
    """What an RL run produced: the ``TrainResult`` fields plus the rewards, evaluations and retired prompts."""

    prompts_used: int = field(metadata={"help": "Training prompts not retired."})
    reward_curve: list[float] = field(default_factory=list, metadata={"help": "Mean reward of every step."})
    first_reward: float | None = field(default=None, metadata={"help": "Mean reward of the first step."})
    final_reward: float | None = field(default=None, metadata={"help": "Mean reward of the last step."})
    eval_curve: list[dict] = field(default_factory=list, metadata={
        "help": "Greedy held-out accuracy points {step, train_tokens, accuracy} (eval_every)."})
    zero_variance_dropped: int = field(default=0, metadata={"help": "Prompt groups dropped for zero variance."})
    groups_seen: int = field(default=0, metadata={"help": "Prompt groups seen."})
    retired: list[str] = field(default_factory=list, metadata={"help": "Problem ids not to sample again."})
    reward_terms: dict[str, list[float]] = field(default_factory=dict, metadata={
        "help": "Each reward function's own mean per logged step, by name."})
    steps_log: list[dict] = field(default_factory=list, metadata={
        "help": "Own trainer: per step reward, pass rate, cumulative compute, seconds sampling and learning, "
                "zero-variance groups, importance-ratio statistics."})
    sampling_tokens: int = field(default=0, metadata={
        "help": "Tokens the sampler generated and prefilled (the data side of compute; 0 under TRL, which counts "
                "its generation nowhere)."})
    sample_seconds: float = field(default=0.0, metadata={"help": "Own trainer: seconds spent sampling."})
    learn_seconds: float = field(default=0.0, metadata={"help": "Own trainer: seconds spent learning."})
    stale_dropped: int = field(default=0, metadata={"help": "Groups dropped for being older than max_lag."})


def scalerl_config(**overrides) -> RLConfig:
    """The ScaleRL recipe's choices (see the module docstring); keyword arguments override them."""
    base = dict(loss_type="cispo", epsilon_high=5.0, scale_rewards="batch", fp32_lm_head=True,
                prompt_level_loss=True, zero_variance_filter=True, retire_pass_rate=0.9)
    return RLConfig(**{**base, **overrides})


class _PassRates:
    """A TRL reward function wrapper that also records each prompt's rewards (for retiring prompts)."""

    def __init__(self, reward) -> None:
        self.reward = reward
        self.__name__ = getattr(reward, "__name__", "verifier")
        self.seen: dict[str, list[float]] = defaultdict(list)

    def __call__(self, prompts, completions, **kwargs):
        out = self.reward(prompts, completions, **kwargs)
        ids = kwargs.get("id") or [None] * len(prompts)
        for pid, r in zip(ids, out):
            if pid is not None and r is not None:
                self.seen[pid].append(float(r))
        return out

    def pass_rates(self) -> dict[str, float]:
        return {k: sum(v) / len(v) for k, v in self.seen.items() if v}


def rl_rewards(task, config: RLConfig, *, scorer=None, extra_rewards: Sequence = ()) -> tuple[list, list[float]]:
    """The TRL reward functions of a run and their weights, in order.

    The verifier first (weight 1; it records pass rates, ``rewards[0].pass_rates()``), then the
    scorer's reward (``config.prm_weight``, when non-zero), the shaping rewards of
    ``config.shaping`` (their weights), then ``extra_rewards`` (weight 1 each).
    """
    from rewards.shaping import get_scorer_reward
    from rewards.verifier import get_step_verifier_reward, get_verifier_reward

    verify = get_step_verifier_reward if config.verifier == "steps" else get_verifier_reward
    rewards: list = [_PassRates(verify(task))]
    weights = [1.0]
    if config.prm_weight:
        if scorer is None:
            raise ConfigError("prm_weight > 0 needs scorer=... (a PRM StepScorer)")
        rewards.append(get_scorer_reward(scorer, task))
        weights.append(config.prm_weight)
    for name, weight in config.shaping.items():
        rewards.append(SHAPING_REWARDS[name](task, config))
        weights.append(float(weight))
    rewards += list(extra_rewards)
    weights += [1.0] * len(extra_rewards)
    return rewards, weights




def rl_step(
    policy_dir: str | Path, task, problems: Sequence, config: RLConfig | None = None, *, scorer=None,
    extra_rewards: Sequence = (), retired: set[str] | frozenset[str] = frozenset(),
    checkpoint_dir: str | Path | None = None, optimizer_state: str | Path | None = None,
    demonstrations: Sequence[tuple[str, str]] = (),
) -> RLResult:
    """Run online RL from ``policy_dir`` on ``problems``; write the policy to ``config.output_dir``.

    Args:
        task: the task; its checker is the verifier reward.
        problems: training problems (their prompts and reference answers).
        scorer: a ``StepScorer`` (a PRM) for a shaped reward when ``config.prm_weight > 0``.
        extra_rewards: more TRL-signature reward functions.
        retired: problem ids not to sample (no-positive-resampling from an earlier run).
        checkpoint_dir: own trainer: where a resumable checkpoint is kept every
            ``config.checkpoint_every`` steps (a restart resumes from it), and where the
            optimizer state is left at the end (``optimizer.pt``).
        demonstrations: (prompt, completion) texts, as ``Task.training_pair`` gives them, for the
            supervised term of ``config.sft_weight`` (needed when it is above 0).
        optimizer_state: own trainer: an ``optimizer.pt`` of an earlier call, so that Adam's
            moments carry over between calls (the loop's iterations).

    Returns:
        An ``RLResult``: steps, wall seconds, training and sampling tokens, the reward curve,
        ``steps_log`` (own trainer: per-step compute, timing and ratio statistics), the greedy
        ``eval_curve`` (``eval_every``), zero-variance and stale groups dropped, and ``retired``
        (to pass to the next call). The policy folder is written through ``StagedOutput``.
    """
    from roadmap.core.training import check_model_dir

    config = config or RLConfig()
    src = check_model_dir(policy_dir)
    pool = [p for p in problems if p.id not in retired]
    if not pool:
        raise DataError("every problem is retired (already solved); give new problems or lower retire_pass_rate")
    if config.sft_weight and not demonstrations:
        raise ConfigError(f"sft_weight={config.sft_weight} needs demonstrations (rl_step(..., demonstrations=[(prompt, "
                          "completion), ...])); pass them or set sft_weight: 0")
    rewards, weights = rl_rewards(task, config, scorer=scorer, extra_rewards=extra_rewards)
    if config.trainer == "trl":
        from learning.rl_trl import rl_step_trl

        return rl_step_trl(src, task, pool, config, rewards, weights, retired)
    return _rl_step_own(src, task, pool, config, rewards, weights, retired, checkpoint_dir, optimizer_state,
                        demonstrations)


def _rl_step_own(src, task, pool, config: RLConfig, rewards, weights, retired, checkpoint_dir, optimizer_state,
                 demonstrations=()):
    import time

    import torch
    from transformers import set_seed

    from learning.rl_loop import run_rl
    from roadmap.core.outputs import StagedOutput
    from roadmap.core.precision import cast_to, load_trainable_lm

    with StagedOutput(config.output_dir, "policy", overwrite=config.overwrite, config=asdict(config),
                      inputs={"policy_dir": src}) as stage:
        set_seed(config.seed)
        tokenizer, model, dtype = load_trainable_lm(src)
        if config.gradient_checkpointing:
            model.gradient_checkpointing_enable()
        opt = torch.load(optimizer_state, weights_only=False) if optimizer_state and Path(optimizer_state).exists() else None
        t0 = time.perf_counter()
        log = run_rl(model, tokenizer, task, pool, config, rewards, weights,
                     checkpoint_dir=Path(checkpoint_dir) if checkpoint_dir else None, retired=sorted(retired),
                     optimizer_state=opt, demonstrations=demonstrations)
        wall = time.perf_counter() - t0
        if checkpoint_dir:
            torch.save(log["optimizer_state"], Path(checkpoint_dir) / "optimizer.pt")
        cast_to(model, dtype).save_pretrained(stage.path)
        tokenizer.save_pretrained(stage.path)
        steps = log["steps_log"]
        curve = [s["reward"] for s in steps]
        losses = [s["loss"] for s in steps if "loss" in s]
        learn = log["learn_seconds"]
        res = RLResult(
            output_dir=str(config.output_dir), steps=len(steps), max_steps=config.max_steps,
            train_tokens=log["train_tokens"], wall_seconds=wall, tokens_per_second=log["train_tokens"] / max(learn, 1e-9),
            stopped_by="budget", completed=len(steps) == config.max_steps, first_loss=losses[0] if losses else None,
            final_loss=losses[-1] if losses else None, losses=losses, prompts_used=len(pool), reward_curve=curve,
            first_reward=curve[0] if curve else None, final_reward=curve[-1] if curve else None,
            eval_curve=log["eval_curve"], zero_variance_dropped=sum(s.get("zero_variance_dropped", 0) for s in steps),
            groups_seen=sum(s.get("groups", 0) for s in steps), retired=log["retired"],
            reward_terms={k: [s["reward_terms"][k] for s in steps] for k in (steps[0]["reward_terms"] if steps else {})},
            steps_log=steps,
            sampling_tokens=log["sampler_tokens"]["generated"] + log["sampler_tokens"]["prefill"],
            sample_seconds=log["sample_seconds"], learn_seconds=learn, stale_dropped=log["stale_dropped"])
        stage.finish(res, "rl_result.json")
    return res
