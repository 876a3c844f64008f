"""Online RL through TRL's GRPOTrainer: GRPO, DAPO, Dr. GRPO and CISPO losses, and a ScaleRL preset.

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

- CISPO loss (truncated importance-sampling REINFORCE, MiniMax-M1) with ε_max = 5; TRL has it;
- FP32 logits at the LM head; TRL has it (``cast_lm_head_to_fp32``);
- batch-level advantage normalisation; TRL has it (``scale_rewards="batch"``);
- prompt-level loss aggregation: every prompt's tokens are averaged first, then prompts are
  averaged; written here, by weighting each sequence's advantage by the inverse of its prompt
  group's token count (TRL aggregates over all tokens of the batch);
- zero-variance filtering: prompts whose samples all got the same reward carry no signal and
  are removed from the loss and from its normaliser; written here;
- no-positive-resampling: prompts the policy already solves (pass rate at least 0.9) are not
  sampled again in later epochs; written here, as the ``retired`` set that ``rl_step`` returns
  and accepts.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rewards.shaping import get_format_reward, get_soft_overlong_reward
from roadmap.core.lengths import Lengths
from roadmap.core.precision import (
    check_memory_fields,
    gradient_checkpointing_field,
    mixed_precision_field,
)
from roadmap.core.training import TrainResult, overwrite_field, time_cap_field

__all__ = ["RLConfig", "RLResult", "rl_step", "rl_rewards", "scalerl_config", "LOSS_TYPES", "SHAPING_REWARDS"]

LOSS_TYPES = ("grpo", "dapo", "dr_grpo", "cispo")


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
    loss_type: str = field(default="dapo", metadata={"help": "grpo | dapo | dr_grpo | cispo."})
    num_generations: int = field(default=8, metadata={"help": "Samples per prompt (the group)."})
    prompts_per_step: int = field(default=16, metadata={"help": "Prompts per optimizer step."})
    max_steps: int = field(default=50, metadata={"help": "Optimizer steps."})
    max_minutes: float | None = time_cap_field()
    learning_rate: float = field(default=5e-5, metadata={"help": "Peak learning rate."})
    beta: float = field(default=0.0, metadata={"help": "KL weight to the reference (0: no reference model)."})
    epsilon_high: float | None = field(default=None, metadata={"help": "Upper clip (ε_max for CISPO)."})
    temperature: float = field(default=1.0, metadata={"help": "Sampling temperature."})
    scale_rewards: str = field(default="group", metadata={"help": "Advantage normalisation: group | batch | none."})
    fp32_lm_head: bool = field(default=False, metadata={"help": "Compute logits in FP32."})
    prompt_level_loss: bool = field(default=False, metadata={"help": "Average tokens per prompt, then over prompts."})
    zero_variance_filter: bool = field(default=False, metadata={"help": "Drop prompts whose rewards are all equal."})
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
        if self.loss_type not in LOSS_TYPES:
            raise ValueError(f"loss_type={self.loss_type!r} is not supported here; use one of {LOSS_TYPES}")
        if self.num_generations < 2:
            raise ValueError(f"num_generations={self.num_generations} must be at least 2 (advantages need a group)")
        if self.scale_rewards not in ("group", "batch", "none"):
            raise ValueError(f"scale_rewards={self.scale_rewards!r} must be 'group', 'batch' or 'none'")
        _check_shaping(self.shaping)
        longest = self.lengths.rl_completion_tokens
        if self.overlong_cache is not None and not 0 < self.overlong_cache <= longest:
            raise ValueError(f"overlong_cache={self.overlong_cache} must lie in (0, lengths.rl_completion_tokens="
                             f"{longest}], or be None for a quarter of it")
        check_memory_fields(self, self.prompts_per_step * self.num_generations, "prompts_per_step x num_generations")


def _check_shaping(shaping) -> None:
    known = sorted(SHAPING_REWARDS)
    if not isinstance(shaping, dict):
        raise TypeError(f"shaping={shaping!r} must map shaping reward names to weights, e.g. {{'format': 0.1}}; "
                        f"known names: {known}")
    unknown = sorted(str(k) for k in set(shaping) - set(SHAPING_REWARDS))
    if unknown:
        raise ValueError(f"shaping has unknown reward name(s) {unknown}; known names: {known}")
    for name, weight in shaping.items():
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight):
            raise ValueError(f"shaping[{name!r}]={weight!r} must be a finite number: the weight of that reward")


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


def _reward_terms(logs: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Each reward function's mean per logged step, by name, from TRL's ``rewards/<name>/mean`` logs."""
    terms: dict[str, list[float]] = defaultdict(list)
    for h in logs:
        for key, value in h.items():
            if key.startswith("rewards/") and key.endswith("/mean"):
                terms[key[len("rewards/"):-len("/mean")]].append(value)
    return dict(terms)


def _eval_callback_class():
    from transformers import TrainerCallback

    class EvalCallback(TrainerCallback):
        """Greedy held-out accuracy of the live policy before training and every ``eval_every`` steps."""

        def __init__(self, trainer, task, config: RLConfig, curve: list) -> None:
            self.trainer, self.task, self.config, self.curve = trainer, task, config, curve
            self.problems = task.problems("test", n=config.eval_problems, seed=config.seed)

        def _eval(self, step: int) -> None:
            from roadmap.core import HFPolicy

            model = self.trainer.model
            was_training = model.training
            policy = HFPolicy(model, self.trainer.processing_class, batch_size=256)
            outs = policy.sample([self.task.prompt(p) for p in self.problems], n=1, temperature=0.0, seed=0,
                                 max_new_tokens=self.config.lengths.rl_completion_tokens)
            model.train(was_training)
            right = sum(self.task.is_correct(p, o[0].text) for p, o in zip(self.problems, outs))
            self.curve.append({"step": step, "train_tokens": self.trainer.train_tokens,
                               "accuracy": right / len(self.problems)})

        def on_train_begin(self, args, state, control, **kwargs):
            self._eval(0)

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step % self.config.eval_every == 0:
                self._eval(state.global_step)

    return EvalCallback


def _trainer_class(config: RLConfig):
    import torch
    from trl import GRPOTrainer

    from roadmap.core.training import BudgetMixin

    class ScaleRLTrainer(BudgetMixin, GRPOTrainer):
        """GRPOTrainer plus prompt-level loss aggregation and zero-variance filtering."""

        def __init__(self, *a, max_seconds=None, **kw):
            super().__init__(*a, **kw)
            self.init_budget(max_seconds)
            self.zero_variance_dropped = 0
            self.groups_seen = 0

        def _generate_and_score_completions(self, inputs):
            out = super()._generate_and_score_completions(inputs)
            # training compute: every token of the batch goes through forward and backward
            # (BudgetMixin.training_step sees the raw batch here, before tokenisation)
            self.train_tokens += int(out["completion_mask"].sum()) * self.args.num_iterations
            if "prompt_mask" in out:
                self.train_tokens += int(out["prompt_mask"].sum()) * self.args.num_iterations
            if not (config.zero_variance_filter or config.prompt_level_loss):
                return out
            adv, mask = out["advantages"], out["completion_mask"]
            g = self.num_generations
            if adv.shape[0] % g:
                return out  # not whole groups on this process; leave the batch as TRL made it
            groups = adv.view(-1, g)
            self.groups_seen += groups.shape[0]
            if config.zero_variance_filter:
                flat = torch.isclose(groups, torch.zeros_like(groups)).all(dim=1)
                self.zero_variance_dropped += int(flat.sum())
                keep = (~flat).repeat_interleave(g).to(mask.dtype)
                mask = mask * keep.unsqueeze(1)
                out["completion_mask"] = mask
                out["num_items_in_batch"] = mask.sum().to(out["num_items_in_batch"].dtype).clamp(min=1)
            if config.prompt_level_loss:
                tokens = mask.sum(dim=1).view(-1, g).sum(dim=1)  # per prompt group
                live = tokens > 0
                if live.any():
                    # token-mean over the batch, reweighted to a mean over prompts of their token-means
                    weight = torch.where(live, mask.sum() / (live.sum() * tokens.clamp(min=1)), torch.zeros_like(tokens,
                                         dtype=torch.float))
                    out["advantages"] = adv * weight.repeat_interleave(g).to(adv.dtype)
            return out

    return ScaleRLTrainer


def rl_rewards(task, config: RLConfig, *, scorer=None, extra_rewards: Sequence = ()) -> tuple[list, list[float]]:
    """The TRL reward functions of a run and their weights, in order.

    The verifier first (weight 1; it records pass rates, ``rewards[0].pass_rates()``), then the
    scorer's reward (``config.prm_weight``, when non-zero), the shaping rewards of
    ``config.shaping`` (their weights), then ``extra_rewards`` (weight 1 each).
    """
    from rewards.shaping import get_scorer_reward
    from rewards.verifier import get_verifier_reward

    rewards: list = [_PassRates(get_verifier_reward(task))]
    weights = [1.0]
    if config.prm_weight:
        if scorer is None:
            raise ValueError("prm_weight > 0 needs scorer=... (a PRM StepScorer)")
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
) -> RLResult:
    """Run online RL from ``policy_dir`` on ``problems``; write the policy to ``config.output_dir``.

    Args:
        task: the task; its checker is the verifier reward.
        problems: training problems (their prompts and reference answers).
        scorer: a ``StepScorer`` (a PRM) for a shaped reward when ``config.prm_weight > 0``.
        extra_rewards: more TRL reward functions.
        retired: problem ids not to sample (no-positive-resampling from an earlier run).

    Returns:
        An ``RLResult``: steps, wall seconds, training tokens, ``completed``, the mean reward curve
        (weighted sum of the rewards), each reward function's own mean per step (``reward_terms``),
        the share of prompt groups dropped for zero variance, and ``retired`` (ids whose pass rate
        reached ``config.retire_pass_rate``, to pass to the next call). The policy folder is written
        through the library's staged-output skeleton (``roadmap.core.training.run_staged_training``).
    """
    from trl import GRPOConfig

    from learning.data import grpo_rows
    from roadmap.core.precision import cast_to, load_trainable_lm, memory_args
    from roadmap.core.training import check_model_dir, run_staged_training, training_args

    config = config or RLConfig()
    src = check_model_dir(policy_dir)
    pool = [p for p in problems if p.id not in retired]
    if not pool:
        raise ValueError("every problem is retired (already solved); give new problems or lower retire_pass_rate")
    data = grpo_rows(task, pool)
    rewards, weights = rl_rewards(task, config, scorer=scorer, extra_rewards=extra_rewards)
    verifier = rewards[0]

    def build(scratch: Path):
        tokenizer, model, dtype = load_trainable_lm(src)
        tokenizer.padding_side = "left"
        args = GRPOConfig(**training_args(
            scratch, config.seed, **memory_args(config, config.prompts_per_step * config.num_generations),
            num_generations=config.num_generations, max_steps=config.max_steps, learning_rate=config.learning_rate,
            beta=config.beta, loss_type=config.loss_type, epsilon_high=config.epsilon_high,
            temperature=config.temperature, max_completion_length=config.lengths.rl_completion_tokens,
            scale_rewards=config.scale_rewards, cast_lm_head_to_fp32=config.fp32_lm_head, reward_weights=weights,
            logging_steps=1, log_completions=False, disable_tqdm=False,  # LR: warm-up then cosine (BudgetMixin)
        ))
        trainer = _trainer_class(config)(model=model, reward_funcs=rewards, args=args, train_dataset=data,
                                          processing_class=tokenizer,
                                          max_seconds=config.max_minutes * 60 if config.max_minutes else None)
        if config.eval_every:
            trainer.add_callback(_eval_callback_class()(trainer, task, config, curve))
        trainer.source_dtype = dtype  # the trained policy is saved in the checkpoint's own dtype
        return trainer

    def save(trainer, folder: Path) -> None:
        cast_to(trainer.model, trainer.source_dtype).save_pretrained(folder)
        trainer.processing_class.padding_side = "right"
        trainer.processing_class.save_pretrained(folder)

    def result(trainer, stats) -> RLResult:
        rewards_logged = [h["reward"] for h in trainer.state.log_history if "reward" in h]
        rates = verifier.pass_rates()
        newly = {k for k, v in rates.items() if config.retire_pass_rate is not None and v >= config.retire_pass_rate}
        return RLResult(
            output_dir=str(config.output_dir), prompts_used=len(pool), reward_curve=rewards_logged,
            first_reward=rewards_logged[0] if rewards_logged else None,
            final_reward=rewards_logged[-1] if rewards_logged else None, eval_curve=curve,
            zero_variance_dropped=trainer.zero_variance_dropped, groups_seen=trainer.groups_seen,
            retired=sorted(set(retired) | newly), reward_terms=_reward_terms(trainer.state.log_history), **stats,
        )

    curve: list[dict[str, float]] = []
    return run_staged_training(config.output_dir, "policy", config=config, build=build, save=save, result=result,
                               result_file="rl_result.json", inputs={"policy_dir": src})
