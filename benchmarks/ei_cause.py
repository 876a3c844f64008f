"""Why does one expert-iteration learn phase lower a weak policy? Its text, its problems, or the phase itself?

    python benchmarks/ei_cause.py --policy W/s2/policy --trees W/s2/expert_iteration/iter_1/search/trees.jsonl \
        --recipe W/s2/expert_iteration.yaml --out OUT [--arms own,perfect_kept,perfect_random] [--lrs 5e-4]

From the policy expert iteration started from, one learn phase on the recipe's schedule (its epochs, batch size and
learning rate, expert iteration's 5% warm-up) per arm, each on as many rows as expert iteration kept from that
search, then greedy on the recipe's evaluation problems (its ``seed``, ``eval_problems``):

* ``own``: the search's first verified solution per problem, the policy's own text (expert iteration's learn phase);
* ``perfect_kept``: perfect worked solutions of the same problems (the text is sound, the problems are the ones
  the policy solved);
* ``perfect_random``: perfect worked solutions of as many problems drawn at random from the search's problems
  (neither the text nor the choice of problems is the policy's).

If ``perfect_random`` falls as far as ``own``, neither the policy's text nor its choice of problems is the cause,
the phase is. ``--lrs`` repeats every arm at other learning rates. Writes ``OUT/ei_cause.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ARMS = ("own", "perfect_kept", "perfect_random")


def arm_rows(task, rows: list[dict], arm: str, seed: int = 0) -> list[tuple[str, str, str]]:
    """(prompt, completion, problem id) rows of one arm, from a search's ``trees.jsonl`` rows."""
    kept = [r for r in rows if any(r["candidate_correct"])]
    if arm == "perfect_random":
        kept = random.Random(seed).sample(rows, len(kept))
    out = []
    for r in kept:
        if arm == "own":
            text = next(t for t, ok in zip(r["candidates"], r["candidate_correct"]) if ok)
        else:
            text = task.reference_solution(task.make_problem(r["question"]))
        prompt, completion = task.training_text(r["prompt"], text)
        out.append((prompt, completion, r["problem_id"]))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--policy", required=True, help="the policy expert iteration started from")
    ap.add_argument("--trees", required=True, help="the trees.jsonl of expert iteration's first search")
    ap.add_argument("--recipe", required=True, help="the expert-iteration recipe (schedule and evaluation)")
    ap.add_argument("--arms", default=",".join(ARMS), help=f"comma-separated, of {','.join(ARMS)}")
    ap.add_argument("--lrs", default="", help="learning rates (default: the recipe's)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    arms = [a for a in args.arms.split(",") if a]
    if set(arms) - set(ARMS):
        ap.error(f"--arms: unknown {sorted(set(arms) - set(ARMS))}; use some of {ARMS}")

    import yaml
    from datasets import Dataset

    from policy_init.sft import SFTWarmStartConfig, warm_start
    from roadmap.app.evaluate import evaluate
    from roadmap.core.backends import load_policy
    from roadmap.core.io import write_json
    from roadmap.core.tasks import get_task
    from search.trees import read_trees

    recipe = yaml.safe_load(Path(args.recipe).read_text())
    learn = recipe["learn"]
    task = get_task(recipe.get("task", "arith"))
    rows = read_trees(args.trees)
    problems = task.problems("test", n=recipe["eval_problems"], seed=recipe["seed"])
    lrs = [float(x) for x in args.lrs.split(",") if x] or [float(learn["learning_rate"])]
    out = Path(args.out)
    results = []
    for lr in lrs:
        for arm in arms:
            data = arm_rows(task, rows, arm)
            ds = Dataset.from_dict({"prompt": [d[0] for d in data], "completion": [d[1] for d in data],
                                    "id": [d[2] for d in data]}).shuffle(seed=recipe["seed"])
            folder = out / f"{arm}_lr{lr:g}"
            t0 = time.perf_counter()
            cfg = SFTWarmStartConfig(output_dir=str(folder), epochs=float(learn["epochs"]), learning_rate=lr,
                                     batch_size=int(learn["batch_size"]), seed=recipe["seed"], warmup_fraction=0.05,
                                     logging_steps=10, overwrite=True)
            sft = warm_start(args.policy, None, cfg, train_dataset=ds).to_dict()
            report = evaluate(load_policy(folder, batch_size=64), task, problems, method="greedy", progress=False)
            results.append({"arm": arm, "learning_rate": lr, "rows": len(data), "steps": sft["steps"],
                            "accuracy": report.accuracy, "ci95": list(report.ci95),
                            "seconds": time.perf_counter() - t0})
            print(results[-1], flush=True)
            write_json(out / "ei_cause.json", {"policy": args.policy, "trees": args.trees, "recipe": recipe,
                                               "results": results})
    write_markdown(results, out / "ei_cause.md")
    return 0


def write_markdown(results: list[dict], path: Path) -> None:
    """The results as a markdown table (learning rates as written, not rounded)."""
    from roadmap.core.io import format_table

    rows = [{**r, "learning_rate": f"{r['learning_rate']:g}"} for r in results]
    path.write_text(format_table(rows, ["arm", "learning_rate", "rows", "steps", "accuracy", "ci95", "seconds"],
                                 markdown=True) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
