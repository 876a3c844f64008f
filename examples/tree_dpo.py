"""DPO on search trees (solution pairs and MCTS step pairs), reference = the previous policy.

    python examples/tree_dpo.py --policy PATH/TO/warm-start --out runs/dpo
"""

import argparse

from roadmap.app.loop import LoopConfig, run_loop

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--policy", required=True)
ap.add_argument("--out", default="runs/dpo")
ap.add_argument("--iterations", type=int, default=3)
args = ap.parse_args()

config = LoopConfig(
    policy=args.policy,
    iterations=args.iterations,
    train_problems=8192,
    search={"method": "mcts", "budget": 2, "width": 4, "mcts_evaluation": "rollout", "temperature": 0.3,
            "shard_size": 512},
    learn={"algorithm": "tree_dpo", "margin": 0.3, "beta": 0.1, "sft_weight": 1.0, "learning_rate": 1e-5,
           "batch_size": 32},
)
for row in run_loop(config, args.out)["iterations"]:
    print(f"iteration {row['iteration']}: greedy {row['accuracy']:.3f}, training compute {row['train_compute']:,} tokens")
