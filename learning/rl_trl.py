"""``learning.rl`` through TRL's GRPOTrainer (``RLConfig.trainer = "trl"``), kept beside the project's own loop.

TRL generates inside its training step with ``model.generate``; ``ScaleRLTrainer`` adds
prompt-level loss aggregation and zero-variance filtering to its batch. The project's own
sampler-learner loop (``learning.rl_loop``) is the default; this path stays for TRL's KL term
(``beta`` > 0) and for comparison (benchmarks/rl_cause.py measures both).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["rl_step_trl"]


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

        def __init__(self, trainer, task, config, curve: list) -> None:
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


def _trainer_class(config):
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




def rl_step_trl(src: Path, task, pool: Sequence, config, rewards: list, weights: list[float],
                retired: set[str] | frozenset[str]):
    """``rl_step`` through TRL's GRPOTrainer (``config.trainer == "trl"``): generation inside TRL's step."""
    from trl import GRPOConfig

    from learning.data import grpo_rows
    from learning.rl import RLResult
    from roadmap.core.precision import cast_to, load_trainable_lm, memory_args
    from roadmap.core.training import run_staged_training, training_args

    data = grpo_rows(task, pool)
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
