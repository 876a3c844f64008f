"""Stream of Search's comparison on countdown (issue 30, item 3, first part): SFT a tiny model from scratch on
the solver's optimal paths, or on DFS search traces (dead ends and backtracks included), at equal training
tokens, then greedy solve rate on held-out test problems with the exact checker (arXiv 2404.03683).

    python benchmarks/countdown_sft.py --out W [--arms path,trace] [--level 4] [--steps 1500] [--quick]

Every stage is one CLI command whose output is its marker, so a rerun skips what is done:
1. ``tiny``: one tiny Llama with the char tokenizer (a trace of c characters is c tokens) and
   ``trace_max_chars + 64`` positions, shared by both arms (``roadmap tiny --max-positions``);
2. ``sft_<arm>``: ``roadmap sft --task countdown --task-arg solution_format=<arm>`` on the same ``--problems``
   train problems of exactly ``--level`` numbers. The trace arm runs ``--steps`` steps; the path arm runs as many
   steps as give it the same training tokens (steps x batch x mean tokens of a row, rows tokenized here with the
   tiny tokenizer; it cycles over the problems as often as that takes). Each arm's measured ``train_tokens``
   is in the table. The trace data is every trace as the search wrote it, a capped or failed search ending
   "Answer: none" included (the task's ``reference_solution``; Stream of Search's released ``train.py`` also
   trains on every search trace, and its "oft" arm on the optimal paths);
3. ``eval_<arm>``: ``roadmap eval`` greedy on ``--eval-n`` test problems of the test seed, with room for a
   whole trace (``--max-new-tokens trace_max_chars + 16``) for both arms.

``W/countdown_sft.json`` (and ``.md``) holds per arm: steps, measured training tokens and seconds, greedy accuracy
with its 95% interval, generated and truncated outputs, and ``countdown_traces.search_metrics`` of the model's
own outputs (backtracks per trace, share of solved problems with a backtrack, solved problems whose first
branch was a dead end, illegal lines), with every command and the commit.

``--star`` then adds two rows from the trace arm: ``star``, one STaR round (``roadmap run
recipes/countdown_star.yaml``: 4 samples of its own traces per fresh train problem, one verified trace kept per
problem, expert iteration on them; its sampled tokens are in the table), and ``trace_more``, the control that
spends the same optimizer steps on more SFT on the solver's search traces. ``--quick`` runs toy sizes to check
the plumbing (about a minute); its numbers mean nothing. Measured at level 3: docs/benchmarks/countdown.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from headline import commit_id, roadmap_command  # noqa: E402  (one provenance and CLI-command builder)

ARMS = ("path", "trace")
FULL = {"steps": 1500, "batch_size": 16, "problems": 24_000, "eval_n": 200, "trace_max_chars": 2048}
QUICK = {"steps": 3, "batch_size": 4, "problems": 12, "eval_n": 3, "trace_max_chars": 256}


def task_args(size: dict, level: int, arm: str | None = None) -> list[str]:
    args = {"min_numbers": level, "max_numbers": level, "trace_max_chars": size["trace_max_chars"]}
    if arm is not None:
        args["solution_format"] = arm
    return ["--task", "countdown", *[x for k, v in args.items() for x in ("--task-arg", f"{k}={v}")]]


def mean_row_tokens(tiny: Path, size: dict, level: int, seed: int, max_length: int) -> dict[str, float]:
    """Mean tokens of one SFT row (prompt + solution + EOS, cut at ``max_length``) per arm, on the train problems
    ``roadmap sft`` draws."""
    from transformers import AutoTokenizer

    from roadmap.app.sos import mean_row_tokens as row_tokens
    from roadmap.core.tasks import get_task

    task = get_task("countdown", min_numbers=level, max_numbers=level, trace_max_chars=size["trace_max_chars"])
    problems = task.problems("train", n=size["problems"], seed=seed)
    return row_tokens(AutoTokenizer.from_pretrained(tiny), task, problems, ARMS, max_length)


def run(cmd: list[str], prov: dict, name: str) -> None:
    print(f"{name}: {' '.join(cmd[1:])}", flush=True)
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True)
    prov[name] = {"command": cmd[2:], "seconds": round(time.perf_counter() - t0, 1), "commit": commit_id()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, type=Path, help="working folder (a rerun resumes it)")
    ap.add_argument("--arms", default="path,trace", help="comma-separated arms: path, trace")
    ap.add_argument("--level", type=int, default=4, help="numbers per problem (countdown level_task, 2..6)")
    ap.add_argument("--steps", type=int, default=None, help=f"SFT steps of the trace arm (default {FULL['steps']})")
    ap.add_argument("--batch-size", type=int, default=None, help=f"default {FULL['batch_size']}")
    ap.add_argument("--problems", type=int, default=None, help=f"train problems of both arms (default "
                    f"{FULL['problems']}: one epoch of the trace arm)")
    ap.add_argument("--eval-n", type=int, default=None, help=f"test problems (default {FULL['eval_n']})")
    ap.add_argument("--trace-max-chars", type=int, default=None,
                    help=f"trace length cap in characters = tokens (default {FULL['trace_max_chars']})")
    ap.add_argument("--lr", type=float, default=None, help="peak learning rate (default: roadmap sft's)")
    ap.add_argument("--seed", type=int, default=0, help="model initialisation and data seed")
    ap.add_argument("--test-seed", type=int, default=918273, help="seed of the held-out test problems")
    ap.add_argument("--star", action="store_true",
                    help="then one STaR iteration from the trace arm (recipes/countdown_star.yaml) and its control: "
                         "the same optimizer steps of more trace SFT")
    ap.add_argument("--quick", action="store_true", help="toy sizes, to check the plumbing")
    args = ap.parse_args(argv)
    arms = [a for a in args.arms.split(",") if a]
    if not arms or any(a not in ARMS for a in arms):
        ap.error(f"--arms {args.arms!r}: name arms from {ARMS}, comma-separated")
    size = dict(QUICK if args.quick else FULL)
    for key in ("steps", "batch_size", "problems", "eval_n", "trace_max_chars"):
        if getattr(args, key) is not None:
            if getattr(args, key) < 1:
                ap.error(f"--{key.replace('_', '-')} {getattr(args, key)} must be at least 1")
            size[key] = getattr(args, key)
    from roadmap.core.errors import ConfigError
    from roadmap.core.tasks import get_task

    try:  # the level and the cap are checked here, before any model is built
        get_task("countdown", trace_max_chars=size["trace_max_chars"]).level_task(args.level)
    except ConfigError as err:
        ap.error(str(err))
    positions = size["trace_max_chars"] + 64
    d = args.out
    d.mkdir(parents=True, exist_ok=True)
    prov_path = d / "provenance.json"
    prov = json.loads(prov_path.read_text()) if prov_path.exists() else {}
    settings = {"level": args.level, "size": size, "seed": args.seed, "test_seed": args.test_seed, "lr": args.lr}
    if prov.setdefault("settings", settings) != settings:  # a stale folder's models are never reused
        ap.error(f"--out {d} holds a run made with {prov['settings']}, not {settings}; pass another --out")
    prov_path.write_text(json.dumps(prov, indent=1))
    tiny = d / "tiny"
    if not (tiny / "config.json").exists():
        run(roadmap_command("tiny", *task_args(size, args.level), "--seed", str(args.seed), "--max-positions",
                     str(positions), "--out", str(tiny)), prov, "tiny")
    means = mean_row_tokens(tiny, size, args.level, args.seed, positions)
    steps = {"trace": size["steps"],
             "path": max(1, round(size["steps"] * means["trace"] / means["path"]))}
    rows = []
    for arm in arms:
        policy = d / f"sft_{arm}"
        if not (policy / "sft_result.json").exists():
            run(roadmap_command("sft", "--policy", str(tiny), *task_args(size, args.level, arm), "--out", str(policy),
                         "--problems", str(size["problems"]), "--max-steps", str(steps[arm]),
                         "--batch-size", str(size["batch_size"]), "--max-length", str(positions),
                         "--seed", str(args.seed), *(["--lr", str(args.lr)] if args.lr else [])), prov, f"sft_{arm}")
        evaluate_arm(arm, policy, d, size, args, prov)
        prov_path.write_text(json.dumps(prov, indent=1))
        rows.append(arm_row(arm, d, size, args))
    if args.star:
        rows += star_rows(d, size, args, prov, prov_path)
    result = {"level": args.level, "size": size, "seed": args.seed, "test_seed": args.test_seed,
              "mean_row_tokens": means, "arms": rows, "provenance": prov, "quick": args.quick,
              "commit": commit_id()}
    (d / "countdown_sft.json").write_text(json.dumps(result, indent=1))
    (d / "countdown_sft.md").write_text(markdown(result))
    print(markdown(result))
    return 0


def eval_command(policy: Path, size: dict, level: int, seed: int, report: Path) -> list[str]:
    """``roadmap eval`` greedy of ``policy`` on ``size["eval_n"]`` test problems of ``seed`` into ``report``, with
    room for a whole trace."""
    return roadmap_command("eval", "--policy", str(policy), *task_args(size, level), "--split", "test",
                           "--n", str(size["eval_n"]), "--seed", str(seed),
                           "--max-new-tokens", str(size["trace_max_chars"] + 16), "--out", str(report))


def evaluate_arm(name: str, policy: Path, d: Path, size: dict, args, prov: dict) -> None:
    """``roadmap eval`` greedy of ``policy`` on the test problems into ``d/eval_<name>.json``, unless it is there."""
    report = d / f"eval_{name}.json"
    if not report.exists():
        run(eval_command(policy, size, args.level, args.test_seed, report), prov, f"eval_{name}")


def star_recipe(d: Path, size: dict, args) -> tuple[Path, dict]:
    """``recipes/countdown_star.yaml`` at this run's level, length cap and seed (toy sizes under ``--quick``),
    written to ``d/star_recipe.yaml``; returns the file and the recipe."""
    import yaml

    recipe = yaml.safe_load((ROOT / "recipes" / "countdown_star.yaml").read_text())
    cap = size["trace_max_chars"]
    recipe["task_args"] = {**recipe["task_args"], "min_numbers": args.level, "max_numbers": args.level,
                           "trace_max_chars": cap}
    recipe["lengths"] = {"max_solution_tokens": cap + 16, "rollout_tokens": cap + 16, "train_max_length": cap + 64}
    recipe["eval_problems"] = size["eval_n"]
    recipe["seed"] = args.seed
    if args.quick:
        recipe.update(train_problems=8, batch_size=4)
        recipe["search"] = {**recipe["search"], "shard_size": 4}
    path = d / "star_recipe.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path, recipe


def star_rows(d: Path, size: dict, args, prov: dict, prov_path: Path) -> list[dict]:
    """STaR (one expert-iteration round on the trace model's own verified traces, ``roadmap run``) and its control,
    the same optimizer steps of more SFT on the search traces from the trace model, both evaluated like the arms."""
    star = d / "star"
    recipe_path, recipe = star_recipe(d, size, args)
    if not (star / "metrics.json").exists():
        run(roadmap_command("run", str(recipe_path), "--policy", str(d / "sft_trace"), "--out", str(star)), prov, "star")
    it = json.loads((star / "metrics.json").read_text())["iterations"][-1]
    policies = {"star": star / f"iter_{it['iteration']}" / "policy", "trace_more": d / "sft_trace_more"}
    if not (policies["trace_more"] / "sft_result.json").exists():
        run(roadmap_command("sft", "--policy", str(d / "sft_trace"), *task_args(size, args.level, "trace"),
                            "--out", str(policies["trace_more"]), "--problems", str(size["problems"]),
                            "--max-steps", str(it["learn_steps"] or 1),
                            "--batch-size", str(size["batch_size"]), "--max-length", str(size["trace_max_chars"] + 64),
                            "--lr", str(recipe["learn"]["learning_rate"]), "--seed", str(args.seed + 1)),
            prov, "sft_trace_more")
    rows = []
    for name, policy in policies.items():
        evaluate_arm(name, policy, d, size, args, prov)
        prov_path.write_text(json.dumps(prov, indent=1))
        if name == "star":
            trained = {"steps": it["learn_steps"], "train_tokens": it["learn_tokens"], "wall_seconds": None,
                       "data_tokens": it["data_tokens"], "search_accuracy": it["search_accuracy"]}
        else:
            trained = json.loads((policy / "sft_result.json").read_text())
        rows.append(arm_row(name, d, size, args, trained=trained))
    return rows


def arm_row(arm: str, d: Path, size: dict, args, trained: dict | None = None) -> dict:
    from roadmap.core.tasks import get_task
    from roadmap.core.tasks.countdown_traces import search_metrics

    if trained is None:
        trained = json.loads((d / f"sft_{arm}" / "sft_result.json").read_text())
    report = json.loads((d / f"eval_{arm}.json").read_text())
    task = get_task("countdown", min_numbers=args.level, max_numbers=args.level,
                    trace_max_chars=size["trace_max_chars"])
    problems = task.problems("test", n=size["eval_n"], seed=args.test_seed)
    metrics = search_metrics(task, problems, [r["solution"] for r in report["records"]])
    return {"arm": arm, "steps": trained["steps"], "train_tokens": trained["train_tokens"],
            "train_seconds": trained["wall_seconds"], "data_tokens": trained.get("data_tokens"),
            "search_accuracy": trained.get("search_accuracy"), "accuracy": report["accuracy"], "ci95": report["ci95"],
            "n": report["n"], "generated_tokens": report["generated_tokens"], "truncated": report["truncated"],
            "eval_seconds": report["wall_seconds"], "search": metrics}


def _pct(x) -> str:
    return "-" if x is None else f"{x:.1%}"


def markdown(result: dict) -> str:
    from roadmap.app.sos import BEHAVIOUR_COLUMNS, behaviour_cells

    lines = [f"Countdown level {result['level']} (numbers per problem), {result['size']}, seed {result['seed']}, "
             f"test seed {result['test_seed']}{' (QUICK: plumbing only)' if result['quick'] else ''}", "",
             "| arm | SFT steps | train tokens | train s | sampled for training | greedy | 95% CI | generated tokens "
             f"| truncated | {BEHAVIOUR_COLUMNS} |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in result["arms"]:
        secs = "-" if r["train_seconds"] is None else f"{r['train_seconds']:,.0f}"
        sampled = "-" if not r.get("data_tokens") else f"{r['data_tokens']:,}"
        lines.append(f"| {r['arm']} | {r['steps']:,} | {r['train_tokens']:,} | {secs} | {sampled} | "
                     f"{_pct(r['accuracy'])} | "
                     f"{_pct(r['ci95'][0])}-{_pct(r['ci95'][1])} | {r['generated_tokens']:,} | {r['truncated']} | "
                     f"{behaviour_cells(r['search'])} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
