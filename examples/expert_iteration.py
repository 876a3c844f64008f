"""Expert iteration on MCTS data: three rounds of search -> keep verified -> fine-tune, from Python.

    python examples/expert_iteration.py --policy PATH/TO/warm-start --out runs/ei

The same run as `roadmap run recipes/expert_iteration_mcts.yaml`; rerun to resume after a kill.
"""

import argparse

from roadmap.loop import LoopConfig, run_loop

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--policy", required=True)
ap.add_argument("--out", default="runs/ei")
ap.add_argument("--iterations", type=int, default=3)
args = ap.parse_args()

config = LoopConfig(
    policy=args.policy,
    iterations=args.iterations,
    train_problems=2048,
    guide="verifier",
    search={"method": "mcts", "budget": 16, "width": 4, "mcts_evaluation": "rollout", "shard_size": 128},
    learn={"algorithm": "expert_iteration", "solutions_per_problem": 8, "epochs": 2, "learning_rate": 1e-4},
)
for row in run_loop(config, args.out)["iterations"]:
    print(f"iteration {row['iteration']}: greedy {row['accuracy']:.3f}, training compute {row['train_compute']:,} tokens")
