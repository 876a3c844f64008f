"""Tokens per second and lag of the asynchronous RL loop against the alternating one, at equal sampled work.

    OMP_NUM_THREADS=1 python benchmarks/rl_async.py [--policy DIR] [--steps 12] [--out /tmp/bench/rl_async]

Without ``--policy`` it builds the tiny arith policy (``policy_init.tiny`` defaults) and gives it
``--sft-steps`` SFT steps, so rewards have variance and the learner has work. Both modes then run
``learning.rl_loop.run_rl`` from that policy with the same settings (ScaleRL preset, ``--max-lag``,
the same seeds, prompts and group size, so the same number of sampled sequences):

- alternate: the roles take turns in this process, each with one thread;
- async: the sampler and the learner are Ray actors of one core each (``async_sampler``).

It prints, per mode: the run's wall seconds (async: Ray and actor start included) and the steps'
own wall seconds after the first (steady state: the first async step waits for the actors),
tokens sampled (generated + prefilled) and trained, tokens per second over both walls, seconds
the sampler and the learner were busy, the lag of the learned batches (steps -> count) and the
groups dropped past ``max_lag``. The JSON of both goes to ``--out``/rl_async.json.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import Counter
from pathlib import Path


def _policy(args, task) -> str:
    if args.policy:
        return args.policy
    from policy_init.sft import SFTWarmStartConfig, warm_start
    from policy_init.tiny import TinyConfig, create_tiny

    out = Path(args.out)
    init, sft = out / "tiny_init", out / "tiny_sft"
    if not (sft / "config.json").exists():
        create_tiny(task, init, TinyConfig(), overwrite=True)
        warm_start(init, task, SFTWarmStartConfig(output_dir=str(sft), max_steps=args.sft_steps, num_problems=4096,
                                                  batch_size=32, logging_steps=1000, overwrite=True))
    return str(sft)


def _run(policy: str, task, problems, async_sampler: bool, args) -> dict:
    import torch

    from learning.rl import rl_rewards, scalerl_config
    from learning.rl_loop import run_rl
    from roadmap.core import Lengths
    from roadmap.core.precision import load_trainable_lm

    torch.set_num_threads(1)
    cfg = scalerl_config(num_generations=args.generations, prompts_per_step=args.prompts, max_steps=args.steps,
                         max_lag=args.max_lag, async_sampler=async_sampler, weight_sync_every=args.sync_every,
                         learning_rate=args.lr, retire_pass_rate=None, lengths=Lengths(rl_completion_tokens=args.tokens),
                         # every group is trained on, its rewards equal or not: the learner has the work of a real step
                         # (a barely warm policy is right nowhere, and the filter would leave the learner idle)
                         zero_variance_filter=False)
    rewards, weights = rl_rewards(task, cfg)
    tok, model, _ = load_trainable_lm(policy)
    t0 = time.perf_counter()
    log = run_rl(model, tok, task, problems, cfg, rewards, weights)
    wall = time.perf_counter() - t0
    steps = log["steps_log"]
    steady = sum(s.get("wall_seconds", s["sample_seconds"] + s["learn_seconds"]) for s in steps[1:])
    sampled = log["sampler_tokens"]["generated"] + log["sampler_tokens"]["prefill"]
    steady_tokens = steps[-1]["compute"] - steps[0]["compute"]
    return {"mode": "async" if async_sampler else "alternate", "wall_seconds": round(wall, 2),
            "steady_seconds": round(steady, 2), "generated_tokens": log["sampler_tokens"]["generated"],
            "sampled_tokens": sampled, "train_tokens": log["train_tokens"],
            "tokens_per_second": round((sampled + log["train_tokens"]) / wall, 1),
            "steady_tokens_per_second": round(steady_tokens / max(steady, 1e-9), 1),
            "sample_busy_seconds": round(log["sample_seconds"], 2), "learn_busy_seconds": round(log["learn_seconds"], 2),
            "lag": dict(sorted(Counter(s["lag"] for s in steps if s["groups"]).items())),
            "stale_dropped": log["stale_dropped"], "final_reward": steps[-1]["reward"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--policy", default=None, help="A policy folder (default: build the tiny one and SFT it).")
    ap.add_argument("--sft-steps", type=int, default=40)
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--generations", type=int, default=8)
    ap.add_argument("--tokens", type=int, default=48)
    ap.add_argument("--max-lag", type=int, default=1)
    ap.add_argument("--sync-every", type=int, default=1)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--out", default="/tmp/bench/rl_async")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    from roadmap.core.tasks import ArithTask

    task = ArithTask()
    Path(args.out).mkdir(parents=True, exist_ok=True)
    policy = _policy(args, task)
    problems = task.problems("train", n=512, seed=3)
    keys = ["mode", "wall_seconds", "steady_seconds", "generated_tokens", "sampled_tokens", "train_tokens",
            "tokens_per_second", "steady_tokens_per_second", "sample_busy_seconds", "learn_busy_seconds", "lag",
            "stale_dropped"]
    rows = []
    print(" | ".join(keys), flush=True)
    for async_sampler in (False, True):
        rows.append(_run(policy, task, problems, async_sampler, args))
        print(" | ".join(str(rows[-1][k]) for k in keys), flush=True)
    (Path(args.out) / "rl_async.json").write_text(json.dumps({"settings": vars(args), "runs": rows}, indent=1))


if __name__ == "__main__":
    main()
