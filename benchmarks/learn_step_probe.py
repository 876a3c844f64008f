"""What one expert-iteration update does to a warm-started policy: held-out reference loss and greedy accuracy.

    python benchmarks/learn_step_probe.py --policy WARM_START --out /tmp/bench/learn_probe

The quickstart's search-and-learn step once lowered held-out greedy accuracy (80.0% to 74.0% in
two optimizer steps). This probe separates what the update is fed (MCTS at temperature 1 on 128
problems against temperature 0.3 on many problems) from how it learns (learning rate), and for
each variant reports: the mean negative log-likelihood per completion token of 500 held-out
*reference* solutions (a steadier signal than accuracy), greedy accuracy on the same problems,
the share of the training examples with a wrong step (arith's ground-truth step check), steps,
tokens and seconds. Writes ``probe.json`` and ``probe.md`` in ``--out``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

#: (name, search settings, problems, solutions kept per problem, epochs, learning rates)
VARIANTS = [
    ("T=1.0, 128 problems, budget 4", {"budget": 4, "temperature": 1.0}, 128, 2, 1.0, [1e-4, 3e-5, 1e-5]),
    ("T=0.3, 1024 problems, budget 2", {"budget": 2, "temperature": 0.3}, 1024, 1, 2.0, [5e-4, 1e-4, 3e-5]),
]


def reference_nll(policy, task, problems) -> float:
    """Mean -log pi per completion token of the reference solutions of ``problems``."""
    lps = policy.token_logprobs([task.prompt(p) for p in problems], [task.reference_solution(p) for p in problems])
    return -sum(sum(x) for x in lps) / sum(len(x) for x in lps)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--policy", required=True, help="warm-started policy folder")
    ap.add_argument("--out", default="/tmp/bench/learn_probe")
    ap.add_argument("--n-eval", type=int, default=500)
    args = ap.parse_args()

    from learning.expert_iteration import ExpertIterationConfig, expert_iteration_data, expert_iteration_step
    from rewards import VerifierScorer
    from roadmap.app.evaluate import evaluate
    from roadmap.app.train_search import TrainSearchConfig, search_train
    from roadmap.core.io import write_json
    from roadmap.core.policy import HFPolicy
    from roadmap.core.tasks import ArithTask
    from search.trees import read_trees

    task = ArithTask()
    out = Path(args.out)
    held_out = task.problems("test", n=args.n_eval, seed=0)

    def measure(folder) -> dict:
        policy = HFPolicy.from_pretrained(folder, batch_size=256)
        t0 = time.perf_counter()
        acc = evaluate(policy, task, held_out, method="greedy", progress=False)
        return {"ref_nll": reference_nll(policy, task, held_out), "accuracy": acc.accuracy, "ci95": list(acc.ci95),
                "eval_seconds": time.perf_counter() - t0}

    rows = [{"variant": "warm start", "lr": None, **measure(args.policy)}]
    print(rows[-1], flush=True)
    for name, search, n, k, epochs, lrs in VARIANTS:
        tag = f"T{search['temperature']}_n{n}_b{search['budget']}"
        problems = task.problems("train", n=n, seed=1)
        t0 = time.perf_counter()
        search_train(HFPolicy.from_pretrained(args.policy, batch_size=256), task, problems, out / tag / "search",
                     TrainSearchConfig(method="mcts", width=4, mcts_evaluation="rollout", shard_size=512, seed=1,
                                       **search),
                     verifier=VerifierScorer(task), progress=False)
        search_s = time.perf_counter() - t0
        trees = read_trees(out / tag / "search" / "trees.jsonl")
        by_id = {p.id: p for p in problems}
        for lr in lrs:
            cfg = ExpertIterationConfig(output_dir=str(out / tag / f"lr{lr:g}"), solutions_per_problem=k,
                                        epochs=epochs, learning_rate=lr)
            data = expert_iteration_data(trees, cfg, task=task)
            bad = sum(not all(task.step_labels(by_id[i], c)) for i, c in zip(data["id"], data["completion"]))
            res = expert_iteration_step(args.policy, trees, cfg, data=data)
            rows.append({"variant": name, "lr": lr, "examples": len(data), "wrong_step_share": bad / len(data),
                         "steps": res["steps"], "train_tokens": res["train_tokens"], "search_seconds": search_s,
                         "learn_seconds": res["wall_seconds"], **measure(cfg.output_dir)})
            print(rows[-1], flush=True)
    write_json(out / "probe.json", rows)
    print(write_table(rows, out / "probe.md"))


def write_table(rows: list[dict], path: Path) -> str:
    """The markdown table of ``rows`` (learning rates and losses written with their significant digits)."""
    from roadmap.core.io import format_table

    shown = [{**r, "lr": "" if r["lr"] is None else f"{r['lr']:g}", "ref_nll": f"{r['ref_nll']:.4f}"} for r in rows]
    cols = ["variant", "lr", "examples", "wrong_step_share", "steps", "ref_nll", "accuracy", "ci95",
            "search_seconds", "learn_seconds"]
    table = format_table(shown, cols, markdown=True)
    path.write_text(table + "\n")
    return table


if __name__ == "__main__":
    main()
