"""ScaleRL's sigmoid on a real run: GRPO (ScaleRL preset) from the warm start, evaluated as it trains.

    python benchmarks/scaling_fit.py --policy /tmp/bench/weak/policy --out /tmp/bench/scaling

Trains with `learning.rl.rl_step` (``scalerl_config``), greedy accuracy on 200 held-out problems
every ``--eval-every`` steps, compute = training tokens. Fits R(C) on the first half of the points
(after step 0) and predicts the last point; fits all points for A, B, C_mid; also a power law.
Writes ``--out``/scaling_fit.json, .md and fit.png.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--policy", required=True)
    ap.add_argument("--out", default="/tmp/bench/scaling")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--eval-every", type=int, default=4)
    ap.add_argument("--problems", type=int, default=2048)
    args = ap.parse_args()

    from learning.rl import rl_step, scalerl_config
    from roadmap.app.scaling import fit_power_law, fit_sigmoid, plot_fits
    from roadmap.core import Lengths
    from roadmap.core.io import atomic_write_text, format_table, write_json
    from roadmap.core.tasks import ArithTask

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    task = ArithTask()
    run_file = out / "run.json"
    if run_file.exists():
        run = json.loads(run_file.read_text())
    else:
        config = scalerl_config(output_dir=str(out / "policy"), max_steps=args.steps, eval_every=args.eval_every,
                                eval_problems=200, learning_rate=5e-5, lengths=Lengths(rl_completion_tokens=64))
        run = rl_step(args.policy, task, task.problems("train", n=args.problems, seed=3), config)
        write_json(run_file, run)
    pts = [(p["train_tokens"], p["accuracy"]) for p in run["eval_curve"]]
    r0 = pts[0][1]
    pts = [p for p in pts if p[0] > 0]
    half = pts[: len(pts) // 2]
    c, a = [p[0] for p in pts], [p[1] for p in pts]
    early = fit_sigmoid([p[0] for p in half], [p[1] for p in half], r0=r0)
    full = fit_sigmoid(c, a, r0=r0, bootstrap=200)
    power = fit_power_law(c, a)
    predicted = float(early.predict(c[-1]))
    result = {"r0": r0, "points": [{"compute": x, "accuracy": y} for x, y in pts],
              "first_half_fit": early.to_dict(), "full_fit": full.to_dict(), "power_law": power.to_dict(),
              "last_point": {"compute": c[-1], "accuracy": a[-1], "predicted_from_first_half": predicted,
                             "abs_error": abs(predicted - a[-1])},
              "rl": {k: v for k, v in run.items() if k not in ("eval_curve", "retired")}}
    write_json(out / "scaling_fit.json", result)
    plot_fits(c, a, full, power, out / "fit.png", title="GRPO (ScaleRL preset) on arith: greedy accuracy vs tokens")
    rows = [{"fit": "first half", "points": len(half), "A": early.a, "B": early.b, "C_mid": early.c_mid,
             "last point (pred / actual)": f"{predicted:.3f} / {a[-1]:.3f}"},
            {"fit": "all points", "points": len(pts), "A": f"{full.a:.3f} ± {full.a_err:.3f}",
             "B": f"{full.b:.2f} ± {full.b_err:.2f}", "C_mid": f"{full.c_mid:.3g} ± {full.c_mid_err:.2g}",
             "last point (pred / actual)": f"{float(full.predict(c[-1])):.3f} / {a[-1]:.3f}"}]
    md = format_table(rows, list(rows[0]), markdown=True)
    atomic_write_text(out / "scaling_fit.md", md + "\n")
    print(md)


if __name__ == "__main__":
    main()
