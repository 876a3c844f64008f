"""Expert iteration on MCTS data: three rounds of search -> keep verified -> fine-tune, from Python.

    python examples/expert_iteration.py --policy PATH/TO/warm-start --out runs/ei [--prm-dir PATH/TO/prm]

The same run as `roadmap run recipes/expert_iteration_mcts.yaml` (with --prm-dir:
recipes/expert_iteration_prm.yaml, whose PRM drops verified solutions with a weak step); rerun
to resume after a kill.
"""

import argparse

from roadmap.app.loop import LoopConfig, run_loop

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--policy", required=True)
ap.add_argument("--out", default="runs/ei")
ap.add_argument("--iterations", type=int, default=3)
ap.add_argument("--prm-dir", default="", help="a trained PRM: filter the verified solutions by their weakest step")
args = ap.parse_args()

learn = {"algorithm": "expert_iteration", "solutions_per_problem": 1, "epochs": 2, "learning_rate": 5e-4,
         "batch_size": 64}
if args.prm_dir:
    learn["min_step_score"] = 0.5

config = LoopConfig(
    policy=args.policy,
    iterations=args.iterations,
    train_problems=8192,
    guide="verifier",
    prm_dir=args.prm_dir,
    # many problems, a cheap search, a low temperature (fewer verified solutions with cancelling errors)
    search={"method": "mcts", "budget": 2, "width": 4, "mcts_evaluation": "rollout", "temperature": 0.3,
            "shard_size": 512},
    learn=learn,
)
for row in run_loop(config, args.out)["iterations"]:
    print(f"iteration {row['iteration']}: greedy {row['accuracy']:.3f}, training compute {row['train_compute']:,} tokens")
