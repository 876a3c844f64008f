"""Search-and-learn on arith: expert iteration on MCTS data (with and without a PRM filter), tree-DPO
and GRPO, same starting policy.

    python benchmarks/learning_loop.py --policy /tmp/bench/p7/policy --prm-dir /tmp/bench/rewards/prm_binary \
        --out /tmp/bench/loops

Runs (or resumes) `roadmap run` on the recipes of the same names: 3 iterations each, 8,192 fresh
training problems per iteration (GRPO: 5 minutes of training per iteration), greedy accuracy on
the same 500 held-out problems. Writes ``--out``/learning_loop.json and .md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

RECIPES = ("expert_iteration_mcts", "expert_iteration_prm", "tree_dpo", "grpo")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--policy", required=True, help="the warm-started starting policy")
    ap.add_argument("--out", default="/tmp/bench/loops")
    ap.add_argument("--recipes", default=",".join(RECIPES))
    ap.add_argument("--prm-dir", default=None, help="trained PRM for recipes with a PRM filter (expert_iteration_prm)")
    ap.add_argument("--iterations", type=int, default=None, help="override the recipes' iteration count")
    args = ap.parse_args()

    from roadmap.app.loop import load_recipe, run_loop
    from roadmap.core.io import atomic_write_text, format_table, write_json

    root = Path(__file__).resolve().parent.parent / "recipes"
    rows, runs = [], {}
    for name in args.recipes.split(","):
        config = load_recipe(root / f"{name}.yaml", policy=args.policy, iterations=args.iterations,
                             prm_dir=args.prm_dir if name == "expert_iteration_prm" else None)
        result = run_loop(config, Path(args.out) / name)
        runs[name] = result["iterations"]
        for r in result["iterations"]:
            rows.append({"recipe": name, "iteration": r["iteration"], "accuracy": r["accuracy"], "ci95": r["ci95"],
                         "search_accuracy": r.get("search_accuracy"), "learn_tokens": r["learn_tokens"],
                         "data_tokens": r["data_tokens"], "train_compute": r["train_compute"]})
    write_json(Path(args.out) / "learning_loop.json", {"policy": args.policy, "runs": runs})
    md = format_table(rows, ["recipe", "iteration", "accuracy", "ci95", "search_accuracy", "learn_tokens",
                             "data_tokens", "train_compute"], markdown=True)
    atomic_write_text(Path(args.out) / "learning_loop.md", md + "\n")
    print(md)


if __name__ == "__main__":
    main()
