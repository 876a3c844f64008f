"""Tree-DPO on countdown with exact sibling values, against the same trees' estimated Q-values (issue 30, item 4).

    python benchmarks/countdown_tree_dpo.py --run W [--arms solution,q,exact] [--problems 1024] [--quick]

``W`` is a ``benchmarks/countdown_sft.py`` folder; its optimal-path model ``W/sft_path`` is the policy, and its
level, length cap and test seed are reused. One train-time MCTS (``roadmap search``: rollout leaf values checked by
the exact verifier, ``--budget`` simulations of ``--width`` children, at ``--temperature``) writes the trees once;
every arm learns from those same trees with one DPO update (``learning.tree_dpo``, RPO's NLL term on the chosen
side) from the same start:

- ``solution``: solution pairs only (a verified solution against a wrong one of the same problem);
- ``q``: the solution pairs plus step pairs of siblings whose MCTS Q-values (estimated by rollouts) differ by more
  than ``--margin``, what ``recipes/tree_dpo.yaml`` trains on (a pair needs both siblings searched down to a finished
  solution, so a small ``--budget`` makes few);
- ``exact``: the solution pairs plus step pairs whose values come from countdown's brute-force solver (a sibling is
  1 when its state can still reach the target: ``learning.data.exact_value``).

Before learning, every Q step pair is checked against the exact values: the share whose chosen step is exactly
right and whose rejected step is exactly wrong. Then greedy accuracy on the test problems (``roadmap eval``, the
test seed of ``W``) and on a dev seed (where the learning rate was chosen), with 95% intervals and an exact
McNemar test against the start (``W/eval_path.json``'s problems). Stages are skipped when their output is there.
Everything goes to ``W/tree_dpo/b<budget>w<width>/`` (one folder per search, shared by ``--tag`` runs at other
learning rates): ``tree_dpo<tag>.json`` and ``.md``. Measured: docs/benchmarks/countdown.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from countdown_sft import eval_command, run, task_args  # noqa: E402  (one CLI runner, one eval command)
from headline import commit_id, roadmap_command  # noqa: E402

ARMS = ("solution", "q", "exact")
FULL = {"problems": 1024, "budget": 8, "width": 4, "eval_n": 200, "shard_size": 256}
QUICK = {"problems": 8, "budget": 2, "width": 2, "eval_n": 3, "shard_size": 4}


def q_pair_check(task, problems, pairs) -> dict:
    """How the Q step pairs agree with the exact values: the share whose chosen step leaves a state that can reach
    the target and whose rejected step leaves one that cannot."""
    by_id = {p.id: p for p in problems}
    right = chosen_right = rejected_wrong = 0
    for row in pairs:
        p = by_id[row["id"]]
        prefix = row["prompt"][len(task.prompt(p)):]
        at = len(task.split_steps(prefix)) if prefix.strip() else 0
        c = task.step_labels(p, prefix + row["chosen"])[at]
        r = task.step_labels(p, prefix + row["rejected"])[at]
        chosen_right += c
        rejected_wrong += not r
        right += c and not r
    n = len(pairs)
    return {"pairs": n, "exactly_ordered": right / n if n else None, "chosen_right": chosen_right / n if n else None,
            "rejected_wrong": rejected_wrong / n if n else None}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True, type=Path, help="a benchmarks/countdown_sft.py folder with sft_path")
    ap.add_argument("--arms", default=",".join(ARMS), help=f"comma-separated arms: {', '.join(ARMS)}")
    ap.add_argument("--problems", type=int, default=None, help=f"train problems searched (default {FULL['problems']})")
    ap.add_argument("--budget", type=int, default=None, help=f"MCTS simulations per problem (default {FULL['budget']})")
    ap.add_argument("--width", type=int, default=None, help=f"children per expansion (default {FULL['width']})")
    ap.add_argument("--temperature", type=float, default=0.7, help="sampling temperature of the search")
    ap.add_argument("--margin", type=float, default=0.3, help="step pairs: value gap above which siblings pair")
    ap.add_argument("--lr", type=float, default=1e-4, help="DPO learning rate (chosen on --dev-seed)")
    ap.add_argument("--beta", type=float, default=0.1)
    ap.add_argument("--epochs", type=float, default=2.0)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0, help="seed of the searched train problems and of the search")
    ap.add_argument("--dev-seed", type=int, default=1, help="seed of the dev problems the learning rate was tuned on")
    ap.add_argument("--tag", default="", help="suffix of the arms' folders and the result files (another learning "
                    "rate, say, on the same trees)")
    ap.add_argument("--quick", action="store_true", help="toy sizes, to check the plumbing")
    args = ap.parse_args(argv)

    from datasets import concatenate_datasets

    from learning import TreeDPOConfig, tree_dpo_step
    from learning.data import exact_value, solution_pairs, step_pairs
    from roadmap.core.io import atomic_write_text, format_table, write_json
    from roadmap.core.lengths import Lengths
    from roadmap.core.stats import discordant, mcnemar_exact, wilson_interval
    from roadmap.core.tasks import get_task
    from search import read_trees

    arms = [a for a in args.arms.split(",") if a]
    if unknown := set(arms) - set(ARMS):
        ap.error(f"--arms: unknown {', '.join(sorted(unknown))}; choose from {', '.join(ARMS)}")
    missing = [f for f in ("countdown_sft.json", "eval_path.json", "sft_path") if not (args.run / f).exists()]
    if missing:
        ap.error(f"--run {args.run}: no {', '.join(missing)}; run benchmarks/countdown_sft.py --out {args.run} "
                 "(with the path arm) first")
    sft = json.loads((args.run / "countdown_sft.json").read_text())
    # the run's own cap and test problems: the start's evaluation (eval_path.json) is the paired baseline
    size = {**(QUICK if args.quick else FULL), "trace_max_chars": sft["size"]["trace_max_chars"],
            "eval_n": sft["size"]["eval_n"]}
    for key in ("problems", "budget", "width"):
        size[key] = getattr(args, key) or size[key]
    level, test_seed = sft["level"], sft["test_seed"]
    start = args.run / "sft_path"
    d = args.run / "tree_dpo" / f"b{size['budget']}w{size['width']}"  # one folder per search; --tag per learning rate
    d.mkdir(parents=True, exist_ok=True)
    prov_path = d / "provenance.json"
    prov = json.loads(prov_path.read_text()) if prov_path.exists() else {}
    path_args = task_args(size, level, "path")
    searched = {"problems": size["problems"], "temperature": args.temperature, "seed": args.seed}
    if prov.setdefault("search_settings", searched) != searched:  # the folder names only budget and width
        ap.error(f"{d} holds trees searched with {prov['search_settings']}, not {searched}; pass another --run "
                 "copy or move that folder aside")
    learned = {"lr": args.lr, "beta": args.beta, "epochs": args.epochs, "batch_size": args.batch_size,
               "margin": args.margin, "dev_seed": args.dev_seed}
    for arm in arms:  # an arm's model and evaluations are reused only for the settings that made them
        recorded = prov.get(f"dpo_{arm}{args.tag}", {}).get("settings")
        if recorded is not None and recorded != learned:
            ap.error(f"{d / (arm + args.tag)} was trained with {recorded}, not {learned}; pass another --tag")

    search_dir = d / "search"
    if not (search_dir / "summary.json").exists():
        run(roadmap_command("search", "--policy", str(start), *path_args, "--split", "train",
                            "--n", str(size["problems"]), "--method", "mcts", "--budget", str(size["budget"]),
                            "--width", str(size["width"]), "--mcts-evaluation", "rollout",
                            "--temperature", str(args.temperature), "--shard-size", str(size["shard_size"]),
                            "--seed", str(args.seed), "--out", str(search_dir)), prov, "search")
        write_json(prov_path, prov)
    task = get_task("countdown", min_numbers=level, max_numbers=level, trace_max_chars=size["trace_max_chars"],
                    solution_format="path")
    rows = read_trees(search_dir / "trees.jsonl")
    problems = task.problems("train", n=size["problems"], seed=args.seed)
    sol = solution_pairs(rows)
    steps = {"q": step_pairs(rows, args.margin),
             "exact": step_pairs(rows, args.margin, value=exact_value(task, problems))}
    check = q_pair_check(task, problems, steps["q"])

    def evaluate(name: str, policy: Path, seed: int) -> dict:
        report = d / f"{name}.json"
        if not report.exists():
            run(eval_command(policy, size, level, seed, report), prov, name)
            write_json(prov_path, prov)
        return json.loads(report.read_text())

    base = json.loads((args.run / "eval_path.json").read_text())
    base_ok = {r["id"]: r["correct"] for r in base["records"]}
    table = [{"arm": "start (sft_path)", "solution_pairs": 0, "step_pairs": 0, "steps": 0, "train_seconds": 0.0,
              "dev_accuracy": evaluate("dev_start", start, args.dev_seed)["accuracy"],
              "accuracy": base["accuracy"], "ci95": base["ci95"], "only_start": 0, "only_arm": 0, "mcnemar_p": None}]
    for arm in arms:
        pairs = sol.remove_columns(["level"])
        if arm != "solution" and len(steps[arm]):
            pairs = concatenate_datasets([pairs, steps[arm].remove_columns(["level", "margin"])])
        out = d / f"{arm}{args.tag}"
        if len(pairs) == 0:  # the trees hold no contrast (an untrained --quick policy): nothing to learn
            table.append({"arm": f"{arm}{args.tag}", "solution_pairs": 0, "step_pairs": 0, "steps": 0})
            continue
        t0 = time.perf_counter()
        cfg = TreeDPOConfig(output_dir=str(out), beta=args.beta, sft_weight=1.0, epochs=args.epochs,
                            learning_rate=args.lr, batch_size=args.batch_size, seed=args.seed, margin=args.margin,
                            step_values="exact" if arm == "exact" else "q",
                            lengths=Lengths(train_max_length=size["trace_max_chars"] + 64))
        res = json.loads((out / "dpo_result.json").read_text()) if (out / "dpo_result.json").exists() \
            else tree_dpo_step(start, pairs, cfg).to_dict()
        prov.setdefault(f"dpo_{arm}{args.tag}", {"seconds": round(time.perf_counter() - t0, 1), "commit": commit_id(),
                                                 "lr": args.lr, "epochs": args.epochs, "pairs": len(pairs)})
        prov[f"dpo_{arm}{args.tag}"].setdefault("settings", learned)
        write_json(prov_path, prov)
        dev = evaluate(f"dev_{arm}{args.tag}", out, args.dev_seed)
        test = evaluate(f"eval_{arm}{args.tag}", out, test_seed)
        ok = {r["id"]: r["correct"] for r in test["records"]}
        only_arm, only_start = discordant(ok, base_ok)
        table.append({"arm": f"{arm}{args.tag}", "solution_pairs": len(sol),
                      "step_pairs": len(steps[arm]) if arm != "solution" else 0, "steps": res.get("steps"),
                      "train_seconds": res.get("wall_seconds"), "dev_accuracy": dev["accuracy"], "accuracy": test["accuracy"],
                      "ci95": list(wilson_interval(test["correct"], test["n"])), "only_start": only_start,
                      "only_arm": only_arm, "mcnemar_p": mcnemar_exact(only_start, only_arm)})
    summary = json.loads((search_dir / "summary.json").read_text())
    result = {"args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}, "size": size,
              "level": level, "test_seed": test_seed, "search": summary, "q_pairs_against_exact": check,
              "rows": table, "provenance": prov}
    write_json(d / f"tree_dpo{args.tag}.json", result)
    md = (f"Q step pairs against the exact values: {check['pairs']} pairs, {_pct(check['exactly_ordered'])} "
          f"exactly ordered (chosen right {_pct(check['chosen_right'])}, rejected wrong "
          f"{_pct(check['rejected_wrong'])}).\n\n")
    md += format_table([{**r, "dev": _pct(r.get("dev_accuracy")), "test": _pct(r.get("accuracy")),
                         "ci95": f"{_pct(r['ci95'][0])}-{_pct(r['ci95'][1])}" if "ci95" in r else "no pairs"}
                        for r in table],
                       ["arm", "solution_pairs", "step_pairs", "steps", "train_seconds", "dev", "test", "ci95",
                        "only_start", "only_arm", "mcnemar_p"], markdown=True)
    atomic_write_text(d / f"tree_dpo{args.tag}.md", md + "\n")
    print(md)
    return 0


def _pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


if __name__ == "__main__":
    raise SystemExit(main())
