"""The ScaleRL recipe in the loop, then the sigmoid fit of accuracy against training compute.

    python examples/scalerl.py --policy PATH/TO/warm-start --out runs/scalerl
"""

import argparse

from roadmap.app.loop import LoopConfig, run_loop
from roadmap.app.scaling import fit_sigmoid

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--policy", required=True)
ap.add_argument("--out", default="runs/scalerl")
ap.add_argument("--iterations", type=int, default=6)
args = ap.parse_args()

learn = {"algorithm": "grpo", "loss_type": "cispo", "epsilon_high": 5.0, "scale_rewards": "batch", "fp32_lm_head": True,
         "prompt_level_loss": True, "zero_variance_filter": True, "retire_pass_rate": 0.9, "max_steps": 20}
rows = run_loop(LoopConfig(policy=args.policy, iterations=args.iterations, learn=learn), args.out)["iterations"]
points = [(r["train_compute"], r["accuracy"]) for r in rows if r["train_compute"] > 0]
fit = fit_sigmoid([c for c, _ in points], [a for _, a in points], r0=rows[0]["accuracy"])
print(f"ceiling A = {fit.a:.3f} ± {fit.a_err:.3f}, efficiency B = {fit.b:.2f}, C_mid = {fit.c_mid:.3g} tokens")
