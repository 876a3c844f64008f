"""The sampler-learner loop of ``learning.rl`` (``trainer="own"``): steps, lag, retirement, checkpoints.

Each step: the sampler (``learning.rl_roles.Sampler``, an ``HFPolicy`` over its own copy of the
weights) draws ``num_generations`` completions for ``prompts_per_step`` prompts; the groups go
through a ``RolloutBuffer`` that refuses any older than ``max_lag`` optimizer steps; the learner
takes one update; every ``max_lag + 1`` steps the sampler receives the learner's weights (an
in-flight weight update: with ``max_lag`` 0 every step is on-policy; with 8 this is ScaleRL's
PipelineRL-8 staleness, here with the roles alternating).

No-positive-resampling (ScaleRL): a prompt whose group pass rate reached ``retire_pass_rate`` is
retired and not drawn again. Compute is counted in tokens: generated and prefilled by the sampler
(including the forward that records the behaviour log-probabilities) plus processed by the
learner, cumulative per step in ``steps_log``.

A checkpoint (model, optimizer, sampler weights, prompt pool, logs) is written after every
``checkpoint_every`` steps under ``checkpoint_dir``, through a temporary file and a rename; a
restarted run loads the last one and goes on from the step after it, so a SIGKILL mid-step
repeats at most that step.

``config.async_sampler`` runs the same roles as two Ray actors at once instead (``learning.rl_async``).
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from learning.rl_roles import RLLearner, RolloutBuffer, Sampler, continuation_ids, progress_postfix
from roadmap.core.errors import ConfigError, DataError, StaleOutputError

logger = logging.getLogger(__name__)

__all__ = ["PromptPool", "run_rl", "greedy_accuracy", "inputs_fingerprint", "check_resume_inputs"]


class PromptPool:
    """Training prompts in seeded epochs, less the retired ones (no-positive-resampling)."""

    def __init__(self, problems: Sequence, *, seed: int, retire_pass_rate: float | None,
                 retired: Sequence[str] = ()) -> None:
        self.problems = {p.id: p for p in problems}
        self.retire_pass_rate = retire_pass_rate
        self.retired: set[str] = set(retired)
        self.seed, self.epoch, self.cursor = seed, 0, 0
        self.order: list[str] = []
        self._shuffle()

    def _shuffle(self) -> None:
        ids = sorted(i for i in self.problems if i not in self.retired)
        if not ids:
            raise DataError("every training problem is retired (its pass rate reached retire_pass_rate); give new "
                            "problems or raise retire_pass_rate")
        random.Random(self.seed * 1_000_003 + self.epoch).shuffle(ids)
        self.order, self.cursor = ids, 0

    def draw(self, n: int) -> list:
        out: list = []
        while len(out) < n:
            if self.cursor >= len(self.order):
                self.epoch += 1
                self._shuffle()
            pid = self.order[self.cursor]
            self.cursor += 1
            if pid not in self.retired:
                out.append(self.problems[pid])
        return out

    def record(self, problem_id: str, pass_rate: float) -> None:
        if self.retire_pass_rate is not None and pass_rate >= self.retire_pass_rate:
            self.retired.add(problem_id)

    def state(self) -> dict[str, Any]:
        return {"retired": sorted(self.retired), "epoch": self.epoch, "cursor": self.cursor, "order": self.order}

    def load(self, state: dict[str, Any]) -> None:
        self.retired, self.epoch = set(state["retired"]), state["epoch"]
        self.order, self.cursor = state["order"], state["cursor"]


def greedy_accuracy(model, tokenizer, task, problems, max_new_tokens: int) -> float:
    """Greedy accuracy of ``model`` on ``problems``, sampled as ``roadmap eval`` samples (HFPolicy, temperature 0)."""
    from roadmap.core import HFPolicy

    was = model.training
    policy = HFPolicy(model, tokenizer, batch_size=256, prefix_cache_tokens=0)
    outs = policy.sample([task.prompt(p) for p in problems], n=1, temperature=0.0, seed=0,
                         max_new_tokens=max_new_tokens)
    model.train(was)
    return sum(task.is_correct(p, o[0].text) for p, o in zip(problems, outs)) / len(problems)


def _save(path: Path, payload: dict) -> None:
    import torch

    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def inputs_fingerprint(problems: Sequence, demonstrations: Sequence[tuple[str, str]] = ()) -> str:
    """A short hash of what an RL run trains from: its problems (id, question, answer, in order) and its
    demonstrations (prompt, completion). A checkpoint records it, so a resume on other inputs is refused."""
    from roadmap.core.io import json_fingerprint

    return json_fingerprint([[(p.id, p.question, p.answer) for p in problems], [list(d) for d in demonstrations]])


def check_resume_inputs(state: dict, fingerprint: str, ckpt: Path) -> None:
    """Refuse to resume the checkpoint ``state`` (read from ``ckpt``) on inputs other than those it was started on;
    a checkpoint from before inputs were recorded resumes as before."""
    saved = state.get("inputs")
    if saved is not None and saved != fingerprint:
        raise StaleOutputError(
            f"{ckpt} was trained on other problems or demonstrations (inputs {saved}, this run's {fingerprint}); "
            "resume with the inputs it was started on, or give an empty checkpoint folder")


def encode_demonstrations(policy, demonstrations: Sequence[tuple[str, str]]) -> list[tuple[list[int], list[int]]]:
    """(prompt ids, completion ids) of (prompt, completion) texts, encoded as the sampler encodes its samples: the
    prompt with BOS, the completion as its continuation, ending with EOS (added unless the text already ends in it)."""
    eos = policy.eos_ids[0] if policy.eos_ids else None
    out = []
    for prompt, completion in demonstrations:
        pids = policy.encode_prefix(prompt)
        comp = continuation_ids(policy, prompt, pids, completion)
        if eos is not None and (not comp or comp[-1] != eos):
            comp = comp + [eos]
        out.append((pids, comp))
    return out


def run_rl(model, tokenizer, task, problems: Sequence, config, reward_fns, reward_weights, *,
           checkpoint_dir: Path | None = None, retired: Sequence[str] = (), optimizer_state=None,
           demonstrations: Sequence[tuple[str, str]] = ()) -> dict[str, Any]:
    """Train ``model`` in place for ``config.max_steps`` steps; return the run's logs (see ``RLResult``)."""
    import copy

    import torch

    from roadmap.core import HFPolicy

    c = config
    if getattr(c, "async_sampler", False):
        from learning.rl_async import run_rl_async

        return run_rl_async(model, tokenizer, task, problems, c, reward_fns, reward_weights,
                            checkpoint_dir=checkpoint_dir, retired=retired, optimizer_state=optimizer_state)
    sampler_model = copy.deepcopy(model).eval()
    policy = HFPolicy(sampler_model, tokenizer, batch_size=max(1, c.prompts_per_step * c.num_generations),
                      prefix_cache_tokens=0)
    sampler = Sampler(policy, task, reward_fns, reward_weights, c.num_generations, c.temperature,
                      c.lengths.rl_completion_tokens, c.fp32_lm_head)
    learner = RLLearner(model, policy.pad_id, c)
    demos = encode_demonstrations(policy, demonstrations) if c.sft_weight else []
    if optimizer_state is not None:
        learner.optimizer.load_state_dict(optimizer_state)
        for group in learner.optimizer.param_groups:
            group["lr"] = c.learning_rate
    buffer = RolloutBuffer(c.max_lag)
    pool = PromptPool(problems, seed=c.seed, retire_pass_rate=c.retire_pass_rate, retired=retired)
    eval_problems = task.problems("test", n=c.eval_problems, seed=c.seed) if c.eval_every else []
    log: dict[str, Any] = {"steps_log": [], "eval_curve": [], "compute": 0, "sample_seconds": 0.0, "learn_seconds": 0.0}
    start = 0
    ckpt = Path(checkpoint_dir) / "rl_checkpoint.pt" if checkpoint_dir is not None else None
    fingerprint = inputs_fingerprint(problems, demonstrations)
    if ckpt is not None and ckpt.exists():
        state = torch.load(ckpt, weights_only=False)
        if state.get("mode") == "async":
            raise ConfigError(f"{ckpt} was written by the asynchronous loop (async_sampler: true); resume it with "
                             "async_sampler: true, or give an empty checkpoint folder")
        check_resume_inputs(state, fingerprint, ckpt)
        model.load_state_dict(state["model"])
        learner.optimizer.load_state_dict(state["optimizer"])
        sampler.load_weights(state["sampler"], state["sampler_version"])
        learner.version, learner.train_tokens = state["version"], state["train_tokens"]
        sampler.tokens = state["sampler_tokens"]
        pool.load(state["pool"])
        log, start = state["log"], state["step"]
        buffer.stale_dropped = state["stale_dropped"]
        logger.info("resuming RL from step %d (%s)", start, ckpt)
    elif c.eval_every:
        acc = greedy_accuracy(model, tokenizer, task, eval_problems, c.lengths.rl_completion_tokens)
        log["eval_curve"].append({"step": 0, "compute": 0, "train_tokens": 0, "accuracy": acc})
    with tqdm(total=c.max_steps, initial=start, desc="RL", unit="step") as bar:
        for step in range(start, c.max_steps):
            if learner.version - sampler.version > c.max_lag:
                sampler.load_weights(model.state_dict(), learner.version)
            t0 = time.perf_counter()
            batch = pool.draw(c.prompts_per_step)
            buffer.put(sampler.rollouts(batch, seed=c.seed * 7919 + step))
            t1 = time.perf_counter()
            groups = buffer.take(learner.version, c.prompts_per_step)
            for g in groups:
                pool.record(g.problem_id, g.pass_rate)
            sft = random.Random(c.seed * 7919 + step).sample(demos, min(c.sft_batch, len(demos))) if demos else None
            stats = learner.step(groups, sft) if groups or sft else {"groups": 0}
            t2 = time.perf_counter()
            compute = learner.train_tokens + sampler.tokens["generated"] + sampler.tokens["prefill"]
            rewards = [r for g in groups for r in g.rewards]
            passes = [x for g in groups for x in g.correct]
            log["sample_seconds"] += t1 - t0
            log["learn_seconds"] += t2 - t1
            log["steps_log"].append({
                "step": step + 1, "reward": sum(rewards) / max(1, len(rewards)), "pass_rate": sum(passes) / max(1, len(passes)),
                "compute": compute, "train_tokens": learner.train_tokens, "sample_seconds": t1 - t0,
                "learn_seconds": t2 - t1, "lag": learner.version - 1 - min((g.version for g in groups), default=0),
                "truncated": sum(not f for g in groups for f in g.finished), "retired": len(pool.retired),
                "reward_terms": dict(sampler.last_terms), **stats})
            progress_postfix(bar, groups, stats)
            if c.eval_every and (step + 1) % c.eval_every == 0:
                acc = greedy_accuracy(model, tokenizer, task, eval_problems, c.lengths.rl_completion_tokens)
                log["eval_curve"].append({"step": step + 1, "compute": compute, "train_tokens": learner.train_tokens,
                                          "accuracy": acc})
                logger.info("RL step %d: greedy accuracy %.3f at %d tokens", step + 1, acc, compute)
            log["compute"] = compute
            if ckpt is not None and ((step + 1) % c.checkpoint_every == 0 or step + 1 == c.max_steps):
                ckpt.parent.mkdir(parents=True, exist_ok=True)
                _save(ckpt, {"model": model.state_dict(), "optimizer": learner.optimizer.state_dict(),
                             "sampler": sampler_model.state_dict(), "sampler_version": sampler.version,
                             "version": learner.version, "train_tokens": learner.train_tokens,
                             "sampler_tokens": dict(sampler.tokens), "pool": pool.state(), "log": log, "step": step + 1,
                             "stale_dropped": buffer.stale_dropped, "inputs": fingerprint})
    log.update(steps=c.max_steps, train_tokens=learner.train_tokens, sampler_tokens=dict(sampler.tokens),
               retired=sorted(pool.retired), stale_dropped=buffer.stale_dropped,
               optimizer_state=learner.optimizer.state_dict())
    return log


def write_step_log(log: dict[str, Any], path: Path) -> None:
    """The per-step log as JSON (the optimizer state left out)."""
    path.write_text(json.dumps({k: v for k, v in log.items() if k != "optimizer_state"}, indent=1))
