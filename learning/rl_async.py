"""The asynchronous sampler-learner loop (``RLConfig.async_sampler``): the two roles as Ray actors at once.

PipelineRL (arXiv 2509.19128), ScaleRL's largest efficiency gain (arXiv 2510.13786): the sampler
does not wait for the learner. Here the roles of ``learning.rl_roles`` run in two processes, Ray
actors of one core each (``torch.set_num_threads(1)``), on the project's Ray path
(``roadmap.core.distributed.start_ray``: a local Ray, or ``ray_address``'s cluster):

- ``SamplerActor`` holds a ``Sampler`` over its own copy of the weights; ``LearnerActor`` holds
  the ``RLLearner`` (model and optimizer) and evaluates.
- This process only coordinates: as soon as batch s arrives it asks the sampler for batch s+1,
  then the learner trains on batch s while the sampler samples. Sampling and learning overlap.
- After every ``weight_sync_every`` optimizer steps the learner's weights go to the sampler in
  flight: the update is queued behind the batch it is sampling, and the next batch uses them.
  Every group carries the version of the weights that made it; ``RolloutBuffer`` drops (and
  counts) the groups more than ``max_lag`` steps older than the learner, as in the alternating
  loop. With ``weight_sync_every`` 1 each batch is exactly one step old (so ``max_lag >= 1``).
  A step whose whole batch was stale sends the weights at once, so the sampler catches up.
- Retirement (no-positive-resampling) sees a batch's pass rates one step later than the
  alternating loop does, as the next batch is drawn before this one is learned from.
- A dead sampler actor is restarted by Ray (``sampler_restarts``, Ray's ``max_restarts``); it
  gets the weights of the batch it lost and samples it again (same problems, seed, weights, so
  the same groups). When the restarts are spent, or the learner dies, ``RLActorError`` names the
  actor and the last checkpoint, from which a rerun resumes.

Resume: the checkpoint (``rl_checkpoint.pt``, the alternating loop's file, marked
``mode: async``) holds the learner's model and optimizer, the prompt pool, the logs, and the
batch the sampler was sampling (its problems and the weights it used), so a restarted run samples
that batch again, exactly, and goes on from the step after the checkpoint.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from learning.rl_loop import PromptPool, _save, check_resume_inputs, greedy_accuracy, inputs_fingerprint
from learning.rl_roles import RLLearner, RolloutBuffer, Sampler, progress_postfix
from roadmap.core.errors import ConfigError, RLActorError

logger = logging.getLogger(__name__)

__all__ = ["RLActorError", "SamplerActor", "LearnerActor", "run_rl_async"]


def _one_core(threads: int) -> None:
    os.environ["OMP_NUM_THREADS"] = str(threads)
    import torch

    torch.set_num_threads(threads)


def _checksum(model) -> float:
    """A sum over every weight: which weights a batch was sampled with (tests compare it with the learner's)."""
    import torch

    with torch.no_grad():
        return float(sum(p.detach().double().sum() for p in model.parameters()))


def _cpu_state(model) -> dict:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


class SamplerActor:
    """The sampler's process: a ``Sampler`` over its own copy of the weights."""

    def __init__(self, model, tokenizer, task, reward_fns, reward_weights, config, threads: int = 1) -> None:
        _one_core(threads)
        from roadmap.core import HFPolicy

        c = config
        self.model = model.eval()
        policy = HFPolicy(model, tokenizer, batch_size=max(1, c.prompts_per_step * c.num_generations),
                          prefix_cache_tokens=0)
        self.sampler = Sampler(policy, task, reward_fns, reward_weights, c.num_generations, c.temperature,
                               c.lengths.rl_completion_tokens, c.fp32_lm_head)

    def set_weights(self, state_dict, version: int) -> int:
        self.sampler.load_weights(state_dict, version)
        return version

    def rollouts(self, problems, seed: int) -> dict[str, Any]:
        t0 = time.perf_counter()
        before = dict(self.sampler.tokens)
        groups = self.sampler.rollouts(problems, seed=seed)
        return {"groups": groups, "version": self.sampler.version, "terms": dict(self.sampler.last_terms),
                "tokens": {k: v - before[k] for k, v in self.sampler.tokens.items()},
                "seconds": time.perf_counter() - t0, "checksum": _checksum(self.model), "pid": os.getpid()}


class LearnerActor:
    """The learner's process: the trainable model, its optimizer, and the greedy evaluation."""

    def __init__(self, model, tokenizer, task, config, optimizer_state=None, eval_problems=(), threads: int = 1):
        _one_core(threads)
        self.tokenizer, self.task, self.config, self.eval_problems = tokenizer, task, config, list(eval_problems)
        self.learner = RLLearner(model, tokenizer.pad_token_id, config)
        if optimizer_state is not None:
            self.learner.optimizer.load_state_dict(optimizer_state)
            for g in self.learner.optimizer.param_groups:
                g["lr"] = config.learning_rate

    def step(self, groups) -> dict[str, Any]:
        t0 = time.perf_counter()
        version = self.learner.version
        stats = self.learner.step(groups)
        # what this process itself trained on: the oldest weights among its groups, at its own version
        stats.update(seconds=time.perf_counter() - t0, learner_version=version,
                     oldest_version=min(g.version for g in groups), train_tokens=self.learner.train_tokens,
                     checksum=_checksum(self.learner.model))
        return stats

    def weights(self) -> dict:
        return _cpu_state(self.learner.model)

    def evaluate(self) -> float:
        c = self.config
        return greedy_accuracy(self.learner.model, self.tokenizer, self.task, self.eval_problems,
                               c.lengths.rl_completion_tokens)

    def state(self) -> dict[str, Any]:
        return {"model": _cpu_state(self.learner.model), "optimizer": self.learner.optimizer.state_dict(),
                "version": self.learner.version, "train_tokens": self.learner.train_tokens}

    def load(self, state: dict[str, Any]) -> None:
        self.learner.model.load_state_dict(state["model"])
        self.learner.optimizer.load_state_dict(state["optimizer"])
        self.learner.version, self.learner.train_tokens = state["version"], state["train_tokens"]


def run_rl_async(model, tokenizer, task, problems: Sequence, config, reward_fns, reward_weights, *,
                 checkpoint_dir: Path | None = None, retired: Sequence[str] = (),
                 optimizer_state=None) -> dict[str, Any]:
    """``learning.rl_loop.run_rl`` with the sampler and the learner as Ray actors working at once.

    Trains ``model`` (its weights are loaded back at the end) and returns the same logs, each step
    also with ``sampler_version`` (the weights that sampled its batch), ``wall_seconds`` and the
    learner's ``oldest_version``; ``log["sampler_restarts"]`` counts restarts of the sampler.
    """
    import ray
    import torch
    from ray.exceptions import ActorUnavailableError, RayActorError

    from roadmap.core.distributed import ray_installed, start_ray

    c = config
    if not ray_installed():
        from roadmap.core.distributed import RAY_INSTALL

        raise ConfigError(f"async_sampler=True needs Ray, which is not installed; install it with {RAY_INSTALL}, "
                          "or set async_sampler: false")
    ckpt = Path(checkpoint_dir) / "rl_checkpoint.pt" if checkpoint_dir is not None else None
    state = torch.load(ckpt, weights_only=False) if ckpt is not None and ckpt.exists() else None
    if state is not None and state.get("mode") != "async":
        raise ConfigError(f"{ckpt} was written by the alternating loop (async_sampler: false); resume it with "
                          "async_sampler: false, or give an empty checkpoint folder")
    fingerprint = inputs_fingerprint(problems)
    if state is not None:
        check_resume_inputs(state, fingerprint, ckpt)
    pool = PromptPool(problems, seed=c.seed, retire_pass_rate=c.retire_pass_rate, retired=retired)
    buffer = RolloutBuffer(c.max_lag)
    eval_problems = task.problems("test", n=c.eval_problems, seed=c.seed) if c.eval_every else []
    log: dict[str, Any] = {"steps_log": [], "eval_curve": [], "compute": 0, "sample_seconds": 0.0,
                           "learn_seconds": 0.0, "sampler_restarts": 0}
    sampler_tokens = {"generated": 0, "prefill": 0}
    started = start_ray(c.ray_address, num_cpus=2)
    t_start = time.perf_counter()
    sampler = learner = None
    try:
        model_ref = ray.put(model)
        learner = ray.remote(LearnerActor).options(num_cpus=1, max_restarts=0).remote(
            model_ref, tokenizer, task, c, optimizer_state, eval_problems)
        sampler = ray.remote(SamplerActor).options(num_cpus=1, max_restarts=c.sampler_restarts,
                                                   max_task_retries=0).remote(
            model_ref, tokenizer, task, list(reward_fns), list(reward_weights), c)

        def learner_call(method, *args):
            try:
                return ray.get(getattr(learner, method).remote(*args))
            except RayActorError as e:
                raise RLActorError(f"the learner actor died in {method} ({type(e).__name__}: killed, out of memory, "
                                   f"or its node was lost); {_kept(ckpt)}") from None

        if state is not None:
            learner_call("load", {k: state[k] for k in ("model", "optimizer", "version", "train_tokens")})
            pool.load(state["pool"])
            log, start = state["log"], state["step"]
            buffer.stale_dropped = state["stale_dropped"]
            sampler_tokens = dict(state["sampler_tokens"])
            version, published = state["version"], state["published_version"]
            pending = state["pending"]
            logger.info("resuming async RL from step %d (%s)", start, ckpt)
        else:
            start, version, published = 0, 0, 0
            pending = None
            if c.max_steps > 0:
                pending = {"ids": [p.id for p in pool.draw(c.prompts_per_step)], "version": 0,
                           "weights": _cpu_state(model)}
        # the sampler holds `pending`'s weights when it samples it; newer ones follow it in its queue
        weights_ref = ray.put(pending["weights"]) if pending else None
        newest = (weights_ref, pending["version"]) if pending else None
        if pending is not None and published > pending["version"]:
            newest = (learner.weights.remote(), published)

        def submit(step: int):
            """Ask for ``pending``'s batch with its weights, then queue the newest weights behind it."""
            sampler.set_weights.remote(weights_ref, pending["version"])
            ref = sampler.rollouts.remote([pool.problems[i] for i in pending["ids"]], c.seed * 7919 + step)
            if newest[1] != pending["version"]:
                sampler.set_weights.remote(*newest)
            return ref

        batch_ref = submit(start) if pending is not None else None
        if state is None and c.eval_every:
            acc = learner_call("evaluate")
            log["eval_curve"].append({"step": 0, "compute": 0, "train_tokens": 0, "accuracy": acc})
        train_tokens = state["train_tokens"] if state is not None else 0
        last_pid, deaths = None, 0
        with tqdm(total=c.max_steps, initial=start, desc="async RL", unit="step") as bar:
            for step in range(start, c.max_steps):
                t0 = time.perf_counter()
                waited = 0.0
                while True:
                    try:
                        res = ray.get(batch_ref)
                        break
                    except ActorUnavailableError:  # restarting (Ray's max_restarts): ask again once it is up
                        if waited > 300:
                            raise RLActorError(f"the sampler actor did not come back within 300 s of dying at step "
                                               f"{step + 1}; {_kept(ckpt)}") from None
                        time.sleep(0.5)
                        waited += 0.5
                        batch_ref = submit(step)
                    except RayActorError as e:
                        deaths = max(deaths, log["sampler_restarts"]) + 1
                        if deaths > c.sampler_restarts:
                            raise RLActorError(
                                f"the sampler actor died sampling step {step + 1} ({type(e).__name__}) and its "
                                f"sampler_restarts={c.sampler_restarts} are spent; {_kept(ckpt)}") from None
                        logger.warning("the sampler actor died sampling step %d; Ray restarts it (at most %d times) and "
                                       "it samples the batch again", step + 1, c.sampler_restarts)
                        batch_ref = submit(step)
                if last_pid is not None and res["pid"] != last_pid:
                    log["sampler_restarts"] += 1
                last_pid = res["pid"]
                t_sampled = time.perf_counter()
                # the next batch is asked for now: the sampler works on it while the learner trains on this one
                if step + 1 < c.max_steps:
                    pending = {"ids": [p.id for p in pool.draw(c.prompts_per_step)], "version": newest[1],
                               "weights": newest[0]}
                    weights_ref = newest[0]
                    batch_ref = sampler.rollouts.remote([pool.problems[i] for i in pending["ids"]],
                                                        c.seed * 7919 + step + 1)
                else:
                    pending = None
                for k, v in res["tokens"].items():
                    sampler_tokens[k] += v
                buffer.put(res["groups"])
                groups = buffer.take(version, c.prompts_per_step)
                for g in groups:
                    pool.record(g.problem_id, g.pass_rate)
                stats: dict[str, Any] = {"groups": 0}
                if groups:
                    stats = learner_call("step", groups)
                    version += 1
                    train_tokens = stats.pop("train_tokens")
                if version - published >= c.weight_sync_every or (not groups and version > published):
                    newest = (learner.weights.remote(), version)
                    sampler.set_weights.remote(*newest)  # in flight: after the batch being sampled, before the next
                    published = version
                t_learned = time.perf_counter()
                compute = train_tokens + sampler_tokens["generated"] + sampler_tokens["prefill"]
                rewards = [r for g in groups for r in g.rewards]
                passes = [x for g in groups for x in g.correct]
                log["sample_seconds"] += res["seconds"]
                log["learn_seconds"] += stats.get("seconds", 0.0)
                log["steps_log"].append({
                    "step": step + 1, "reward": sum(rewards) / max(1, len(rewards)),
                    "pass_rate": sum(passes) / max(1, len(passes)), "compute": compute, "train_tokens": train_tokens,
                    "sample_seconds": res["seconds"], "learn_seconds": stats.pop("seconds", 0.0),
                    "wait_sample_seconds": t_sampled - t0, "wall_seconds": t_learned - t0,
                    "lag": version - 1 - min((g.version for g in groups), default=version - 1),
                    "sampler_version": res["version"], "sampler_checksum": res["checksum"], "sampler_pid": res["pid"],
                    "stale_dropped": buffer.stale_dropped, "truncated": sum(not f for g in groups for f in g.finished),
                    "retired": len(pool.retired), "reward_terms": res["terms"], **stats})
                progress_postfix(bar, groups, stats)
                if c.eval_every and (step + 1) % c.eval_every == 0:
                    acc = learner_call("evaluate")
                    log["eval_curve"].append({"step": step + 1, "compute": compute, "train_tokens": train_tokens,
                                              "accuracy": acc})
                    logger.info("async RL step %d: greedy accuracy %.3f at %d tokens", step + 1, acc, compute)
                log["compute"] = compute
                if ckpt is not None and ((step + 1) % c.checkpoint_every == 0 or step + 1 == c.max_steps):
                    ckpt.parent.mkdir(parents=True, exist_ok=True)
                    lstate = learner_call("state")
                    if pending is not None and not isinstance(pending["weights"], dict):
                        pending = {**pending, "weights": ray.get(pending["weights"])}
                    _save(ckpt, {**lstate, "mode": "async", "published_version": published, "pending": pending,
                                 "sampler_tokens": dict(sampler_tokens), "pool": pool.state(), "log": log,
                                 "step": step + 1, "stale_dropped": buffer.stale_dropped, "inputs": fingerprint})
        final = learner_call("state")
        model.load_state_dict(final["model"])
        log.update(steps=c.max_steps, train_tokens=final["train_tokens"], sampler_tokens=dict(sampler_tokens),
                   retired=sorted(pool.retired), stale_dropped=buffer.stale_dropped,
                   optimizer_state=final["optimizer"], run_seconds=time.perf_counter() - t_start)
        return log
    finally:
        for actor in (sampler, learner):
            if actor is not None:
                ray.kill(actor, no_restart=True)
        if started:
            ray.shutdown()


def _kept(ckpt: Path | None) -> str:
    if ckpt is None or not ckpt.exists():
        return "no checkpoint was written (give checkpoint_dir to resume a killed run); rerun to start again"
    import torch

    step = torch.load(ckpt, weights_only=False, map_location="cpu")["step"]
    return f"the checkpoint of step {step} ({ckpt}) is kept, rerun to resume from it"
