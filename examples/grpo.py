"""Online RL with TRL's GRPOTrainer and the verifier reward (one update, outside the loop).

    python examples/grpo.py --policy PATH/TO/warm-start --out runs/grpo-policy --loss dapo
"""

import argparse

from learning.rl import RLConfig, rl_step
from roadmap.app.evaluate import evaluate
from roadmap.core import HFPolicy
from roadmap.core.tasks import ArithTask

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--policy", required=True)
ap.add_argument("--out", default="runs/grpo-policy")
ap.add_argument("--loss", default="dapo", choices=["grpo", "dapo", "dr_grpo", "cispo"])
ap.add_argument("--steps", type=int, default=30)
args = ap.parse_args()

task = ArithTask()
result = rl_step(args.policy, task, task.problems("train", n=1024, seed=1),
                 RLConfig(output_dir=args.out, loss_type=args.loss, max_steps=args.steps))
print(f"{result['steps']} steps, reward {result['first_reward']:.3f} -> {result['final_reward']:.3f}")
for name, path in (("before", args.policy), ("after", args.out)):
    report = evaluate(HFPolicy.from_pretrained(path, batch_size=256), task, task.problems("test", n=500), progress=False)
    print(f"greedy accuracy {name}: {report.accuracy:.3f}")
