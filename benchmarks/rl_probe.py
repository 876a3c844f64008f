"""A short RL probe: a few GRPO steps from the warm start, greedy accuracy before and during.

    python benchmarks/rl_probe.py --policy /tmp/bench/weak/policy --loss dapo --lr 5e-5 --steps 8

``--loss scalerl`` uses ``learning.rl.scalerl_config``. Prints the eval curve (step, greedy
accuracy on 200 held-out problems) and the first and last sampled rewards.
"""

from __future__ import annotations

import argparse


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--policy", required=True)
    ap.add_argument("--loss", default="dapo", choices=["grpo", "dapo", "dr_grpo", "cispo", "scalerl"])
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--out", default="/tmp/bench/rl_probe")
    args = ap.parse_args()

    from learning.rl import RLConfig, rl_step, scalerl_config
    from roadmap.core import Lengths
    from roadmap.core.tasks import ArithTask

    task = ArithTask()
    cfg = dict(output_dir=f"{args.out}/{args.loss}_{args.lr}", max_steps=args.steps, eval_every=4, eval_problems=200,
               learning_rate=args.lr, lengths=Lengths(rl_completion_tokens=64))
    config = scalerl_config(**cfg) if args.loss == "scalerl" else RLConfig(loss_type=args.loss, **cfg)
    res = rl_step(args.policy, task, task.problems("train", n=512, seed=3), config)
    print([(p["step"], p["accuracy"]) for p in res["eval_curve"]], "rewards", res["reward_curve"][:3], "...",
          res["reward_curve"][-3:])


if __name__ == "__main__":
    main()
