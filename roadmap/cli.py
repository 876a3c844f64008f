"""The ``roadmap`` command: quickstart, tiny, SFT, eval, labels, PRM/ORM, search, bench, run (the loop), fit.

Heavy libraries are imported inside the sub-commands, so ``roadmap --help`` starts fast.
Results print as tables; ``--out`` writes JSON.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from roadmap.core.io import format_table, write_json

__all__ = ["main", "parse_task_args"]


def parse_task_args(pairs: Sequence[str]) -> dict[str, Any]:
    """Turn ["min_operands=3", "source=data.jsonl"] into keyword arguments (numbers parsed)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise SystemExit(f"--task-arg {pair!r} is not KEY=VALUE; write e.g. --task-arg min_operands=3")
        key, value = pair.split("=", 1)
        for cast in (int, float):
            try:
                out[key] = cast(value)
                break
            except ValueError:
                continue
        else:
            out[key] = value
    return out


def _scorer(args: argparse.Namespace, task):
    if not args.prm:
        return None
    from rewards import PRMScorer, ProcessRewardModel

    return PRMScorer(ProcessRewardModel.from_pretrained(args.prm, device=args.device), task, args.aggregation)


def _cmd_eval(args: argparse.Namespace) -> int:
    from roadmap.core import HFPolicy
    from roadmap.core.tasks import get_task
    from roadmap.evaluate import METHODS, evaluate, evaluate_search

    task = get_task(args.task, **parse_task_args(args.task_arg))
    scorer = _scorer(args, task)
    policy = HFPolicy.from_pretrained(args.policy, device=args.device, batch_size=args.batch_size)
    problems = task.problems(args.split, n=args.n, seed=args.seed)
    if args.method in METHODS:
        report = evaluate(
            policy,
            task,
            problems,
            method=args.method,
            samples=args.samples,
            temperature=args.temperature,
            max_new_tokens=args.max_new_tokens,
            seed=args.seed,
        )
    else:
        if scorer is None:
            raise SystemExit(f"--method {args.method} needs a scorer: pass --prm DIR (from `roadmap train-prm`)")
        report = evaluate_search(policy, task, problems, method=args.method, budget=args.budget, scorer=scorer,
                                 seed=args.seed, temperature=args.temperature)
    row = report.to_dict(with_records=False)
    print(format_table([row], ["task", "method", "samples", "n", "accuracy", "ci95", "generated_tokens", "wall_seconds"]))
    if args.out:
        write_json(args.out, report.to_dict())
        print(f"wrote {args.out}")
    return 0


def _cmd_tiny(args: argparse.Namespace) -> int:
    from policy_init.tiny import TinyConfig, create_tiny
    from roadmap.core.tasks import get_task

    task = get_task(args.task, **parse_task_args(args.task_arg))
    out = create_tiny(task, args.out, TinyConfig(tokenizer=args.tokenizer, seed=args.seed))
    print(f"wrote a tiny {task.name} policy to {out}")
    return 0


def _cmd_sft(args: argparse.Namespace) -> int:
    from policy_init.sft import SFTWarmStartConfig, warm_start
    from roadmap.core.tasks import get_task

    task = get_task(args.task, **parse_task_args(args.task_arg))
    given = {"num_problems": args.problems, "learning_rate": args.lr, "batch_size": args.batch_size}
    config = SFTWarmStartConfig(
        output_dir=args.out,
        max_minutes=args.minutes,
        max_steps=args.max_steps,
        lora=args.lora,
        seed=args.seed,
        **{k: v for k, v in given.items() if v is not None},
    )
    result = warm_start(args.policy, task, config)
    print(format_table([result.to_dict()], ["output_dir", "steps", "train_tokens", "wall_seconds",
                                            "tokens_per_second", "first_loss", "final_loss"]))
    return 0


def _cmd_label(args: argparse.Namespace) -> int:
    from rewards import LabelConfig, label_solutions, rollout_summary, sample_solutions, save_labels
    from roadmap.core import HFPolicy
    from roadmap.core.tasks import get_task

    task = get_task(args.task, **parse_task_args(args.task_arg))
    policy = HFPolicy.from_pretrained(args.policy, device=args.device, batch_size=args.batch_size)
    problems = task.problems("train", n=args.n, seed=args.seed)
    solutions = sample_solutions(policy, task, problems, args.samples, temperature=args.temperature, seed=args.seed)
    config = LabelConfig(method=args.method, rollouts=args.rollouts, temperature=args.temperature, seed=args.seed)
    completer = policy
    if args.completer:
        completer = HFPolicy.from_pretrained(args.completer, device=args.device, batch_size=args.batch_size)
    dataset = label_solutions(completer, task, problems, solutions, config)
    save_labels(dataset, args.out)
    summary = {"out": args.out, "method": args.method, **rollout_summary(dataset),
               "correct_fraction": sum(dataset["correct"]) / max(1, len(dataset))}
    print(format_table([summary], list(summary)))
    return 0


def _reward_model_config(args: argparse.Namespace):
    from rewards import RewardModelConfig

    return RewardModelConfig(output_dir=args.out, labels=args.label_type, epochs=args.epochs,
                             max_minutes=args.minutes, learning_rate=args.lr, batch_size=args.batch_size,
                             seed=args.seed, readout=args.readout)


def _cmd_train_prm(args: argparse.Namespace) -> int:
    from rewards import load_labels, train_prm
    from roadmap.core.tasks import get_task

    task = get_task(args.task, **parse_task_args(args.task_arg))
    result = train_prm(load_labels(args.labels), args.init, _reward_model_config(args),
                       step_delimiter=task.step_delimiter)
    print(format_table([result], ["kind", "labels", "steps", "wall_seconds", "first_loss", "final_loss", "eval_auc"]))
    return 0


def _cmd_train_orm(args: argparse.Namespace) -> int:
    from rewards import load_labels, orm_dataset_from_labels, train_orm
    from roadmap.core.tasks import get_task

    task = get_task(args.task, **parse_task_args(args.task_arg))
    rows = orm_dataset_from_labels(load_labels(args.labels), task.step_delimiter)
    result = train_orm(rows, args.init, _reward_model_config(args), step_delimiter=task.step_delimiter)
    print(format_table([result], ["kind", "labels", "steps", "wall_seconds", "first_loss", "final_loss", "eval_auc"]))
    return 0


def _cmd_search(args: argparse.Namespace) -> int:
    from rewards import VerifierScorer
    from roadmap.core import HFPolicy
    from roadmap.core.tasks import get_task
    from roadmap.train_search import TrainSearchConfig, search_train

    task = get_task(args.task, **parse_task_args(args.task_arg))
    config = TrainSearchConfig(method=args.method, budget=args.budget, width=args.width,
                               mcts_evaluation=args.mcts_evaluation, shard_size=args.shard_size, seed=args.seed)
    scorer = _scorer(args, task)
    policy = HFPolicy.from_pretrained(args.policy, device=args.device, batch_size=args.batch_size)
    problems = task.problems(args.split, n=args.n, seed=args.seed)
    summary = search_train(policy, task, problems, args.out, config, scorer=scorer, verifier=VerifierScorer(task))
    print(format_table([summary], ["method", "budget", "problems", "accuracy", "any_correct", "verified_candidates",
                                   "wall_seconds"]))
    print(f"wrote {args.out}/trees.jsonl")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from roadmap.bench import TestTimeConfig, bench_test_time
    from roadmap.core import HFPolicy
    from roadmap.core.tasks import get_task

    task = get_task(args.task, **parse_task_args(args.task_arg))
    config = TestTimeConfig(methods=tuple(args.methods.split(",")), budgets=tuple(int(b) for b in args.budgets.split(",")),
                            seeds=tuple(int(s) for s in args.seeds.split(",")), width=args.width,
                            temperature=args.temperature)
    scorer = _scorer(args, task)
    policy = HFPolicy.from_pretrained(args.policy, device=args.device, batch_size=args.batch_size)
    problems = task.problems("test", n=args.n, seed=args.problem_seed)
    result = bench_test_time(policy, task, problems, args.out, config, scorer=scorer)
    if result["skipped_no_scorer"]:
        print(f"skipped {result['skipped_no_scorer']}: they need --prm DIR")
    print((Path(args.out) / "test_time.md").read_text())
    print(f"wrote {args.out}/test_time.json, test_time.md, test_time.png")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from roadmap.loop import load_recipe, run_loop

    config = load_recipe(args.recipe, policy=args.policy, iterations=args.iterations, prm_dir=args.prm_dir)
    result = run_loop(config, args.out)
    print(format_table(result["iterations"], ["iteration", "accuracy", "ci95", "search_accuracy", "learn_tokens",
                                              "train_compute"]))
    print(f"wrote {args.out}/report.md")
    return 0


def _cmd_fit(args: argparse.Namespace) -> int:
    from roadmap.scaling import fit_power_law, fit_sigmoid, plot_fits, predict_last, read_points

    compute, accuracy, start = read_points(args.points)
    r0 = args.r0 if args.r0 is not None else start
    fit = fit_sigmoid(compute, accuracy, r0=r0, warmup_fraction=args.warmup, bootstrap=args.bootstrap)
    power = fit_power_law(compute, accuracy, warmup_fraction=args.warmup)
    far = max(compute) * args.extrapolate
    rows = [{"model": "sigmoid", "A": fit.a, "B": fit.b, "C_mid": fit.c_mid, "R0": fit.r0, "rmse": fit.rmse,
             f"R({far:.3g})": float(fit.predict(far))},
            {"model": "power law", "A": None, "B": power.exponent, "C_mid": None, "R0": None, "rmse": power.rmse,
             f"R({far:.3g})": float(power.predict(far))}]
    print(format_table(rows, list(rows[0])))
    print(f"A = {fit.a:.4f} ± {fit.a_err:.4f}, B = {fit.b:.3f} ± {fit.b_err:.3f}, "
          f"C_mid = {fit.c_mid:.4g} ± {fit.c_mid_err:.3g} (standard errors)")
    check = None
    if args.predict_last:
        check = predict_last(compute, accuracy, r0=r0, warmup_fraction=args.warmup)
        print(f"fitted on the first {check['points_fitted']} of {len(compute)} points: last point predicted "
              f"{check['predicted']:.3f}, measured {check['last_accuracy']:.3f} (error {check['abs_error']:.3f})")
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "fit.json", {"sigmoid": fit.to_dict(), "power_law": power.to_dict(), "predict_last": check,
                                      "points": [{"compute": c, "accuracy": a} for c, a in zip(compute, accuracy)]})
        plot_fits(compute, accuracy, fit, power, out / "fit.png", extrapolate=args.extrapolate)
        print(f"wrote {out}/fit.json and fit.png")
    return 0


def _cmd_quickstart(args: argparse.Namespace) -> int:
    from roadmap.quickstart import QuickstartConfig, run_quickstart

    run_quickstart(QuickstartConfig(out=args.out, minutes=args.minutes, retrain=args.retrain, n_eval=args.n_eval))
    return 0


def build_parser() -> argparse.ArgumentParser:
    from roadmap.bench import bench_methods  # greedy, majority and the search registry's methods
    from search.registry import search_method_names

    parser = argparse.ArgumentParser(prog="roadmap", description="o1-roadmap: search and learning for reasoning.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True)

    def task_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--task", default="arith", help="arith | gsm_symbolic | gsm8k | math500")
        p.add_argument("--task-arg", action="append", default=[], metavar="KEY=VALUE",
                       help="task option, repeatable (e.g. source=data/gsm8k.jsonl, max_operands=5)")

    p = sub.add_parser("eval", help="evaluate a policy on held-out problems")
    p.add_argument("--policy", required=True, help="checkpoint folder (save_pretrained layout)")
    task_options(p)
    p.add_argument("--split", default="test", choices=["train", "test"])
    p.add_argument("--n", type=int, default=500, help="problems to evaluate")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--method", default="greedy", choices=bench_methods())
    p.add_argument("--samples", type=int, default=8, help="solutions per problem for --method majority")
    p.add_argument("--budget", type=int, default=16, help="sampled sequences per problem for search methods")
    p.add_argument("--prm", default=None, help="reward model folder (roadmap train-prm/train-orm) for search")
    p.add_argument("--aggregation", default="min", choices=["min", "prod", "last", "mean"],
                   help="how the PRM's step scores make one score")
    p.add_argument("--temperature", type=float, default=1.0, help="sampling temperature of majority and every search method")
    p.add_argument("--max-new-tokens", type=int, default=192)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default=None, help="cpu, cuda, ... (default: where the model loads)")
    p.add_argument("--out", default=None, help="write the report (with per-problem records) as JSON")
    p.set_defaults(func=_cmd_eval)

    p = sub.add_parser("tiny", help="build a tiny from-scratch policy and its tokenizer")
    task_options(p)
    p.add_argument("--out", required=True)
    p.add_argument("--tokenizer", default="auto", choices=["auto", "char", "bpe"])
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_tiny)

    p = sub.add_parser("sft", help="SFT warm-start on a task's reference solutions")
    p.add_argument("--policy", required=True, help="starting checkpoint folder")
    task_options(p)
    p.add_argument("--out", required=True)
    p.add_argument("--problems", type=int, default=None, help="training problems (default: the config's)")
    p.add_argument("--minutes", type=float, default=None, help="wall-time budget")
    p.add_argument("--max-steps", type=int, default=-1)
    p.add_argument("--lr", type=float, default=None, help="peak learning rate (default: the config's)")
    p.add_argument("--batch-size", type=int, default=None, help="sequences per step (default: the config's)")
    p.add_argument("--lora", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_sft)

    p = sub.add_parser("label", help="sample solutions and label their steps automatically (MC or binary search)")
    p.add_argument("--policy", required=True, help="policy folder that samples the solutions (and rolls out)")
    p.add_argument("--completer", default=None, help="policy folder that rolls out instead (default: --policy)")
    task_options(p)
    p.add_argument("--out", required=True, help="folder for the label dataset (datasets.save_to_disk)")
    p.add_argument("--n", type=int, default=500, help="train problems")
    p.add_argument("--samples", type=int, default=4, help="solutions sampled per problem")
    p.add_argument("--method", default="mc", choices=["mc", "binary"])
    p.add_argument("--rollouts", type=int, default=8, help="rollouts per probed step prefix")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--device", default=None)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_label)

    for name, kind, helptext in (("train-prm", "prm", "train a process reward model on step labels"),
                                 ("train-orm", "orm", "train an outcome reward model on the labelled solutions")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--labels", required=True, help="label dataset folder from `roadmap label`")
        p.add_argument("--init", required=True, help="policy folder whose weights start the reward model")
        task_options(p)
        p.add_argument("--out", required=True)
        p.add_argument("--label-type", default="soft" if kind == "prm" else "hard", choices=["soft", "hard"])
        p.add_argument("--epochs", type=float, default=2.0)
        p.add_argument("--minutes", type=float, default=None, help="wall-time budget")
        p.add_argument("--lr", type=float, default=None, help="peak learning rate (default: by readout)")
        p.add_argument("--batch-size", type=int, default=32)
        p.add_argument("--readout", default="likelihood" if kind == "prm" else "step_end",
                       choices=["likelihood", "tokens", "step_end"],
                       help="step score: calibrated likelihood of each token, a new per-token head, or the "
                            "step end's score alone (rewards.prm)")
        p.add_argument("--seed", type=int, default=0)
        p.set_defaults(func=_cmd_train_prm if kind == "prm" else _cmd_train_orm)

    p = sub.add_parser("search", help="train-time search over training problems; writes trees for learning")
    p.add_argument("--policy", required=True, help="policy folder")
    task_options(p)
    p.add_argument("--out", required=True, help="folder for shards/, trees.jsonl and summary.json (resumable)")
    p.add_argument("--split", default="train", choices=["train", "test"])
    p.add_argument("--n", type=int, default=256, help="problems to search")
    p.add_argument("--method", default="mcts", choices=search_method_names())
    p.add_argument("--budget", type=int, default=16, help="sampled sequences per problem")
    p.add_argument("--width", type=int, default=4, help="beam width, or children per MCTS expansion")
    p.add_argument("--mcts-evaluation", default="rollout", choices=["scorer", "rollout", "both"],
                   help="MCTS leaf values: PRM, verified rollout, or both")
    p.add_argument("--prm", default=None, help="reward model folder guiding the search (default: the verifier)")
    p.add_argument("--aggregation", default="min", choices=["min", "prod", "last", "mean"])
    p.add_argument("--shard-size", type=int, default=64, help="problems per resumable shard")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--device", default=None)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_search)

    p = sub.add_parser("bench", help="benchmarks; `roadmap bench test-time`: accuracy vs compute per method")
    p.add_argument("which", choices=["test-time"], help="which benchmark")
    p.add_argument("--policy", required=True, help="policy folder")
    task_options(p)
    p.add_argument("--out", required=True, help="folder for cells.jsonl (resumable), test_time.json/.md/.png")
    p.add_argument("--n", type=int, default=200, help="held-out problems")
    p.add_argument("--methods", default=",".join(bench_methods()), help="comma-separated methods")
    p.add_argument("--budgets", default="1,4,16,64", help="comma-separated N")
    p.add_argument("--seeds", default="0,1", help="comma-separated seeds")
    p.add_argument("--width", type=int, default=4)
    p.add_argument("--temperature", type=float, default=1.0, help="sampling temperature of every sampled method")
    p.add_argument("--prm", default=None, help="reward model folder for bon, weighted, beam, dvts, mcts")
    p.add_argument("--aggregation", default="min", choices=["min", "prod", "last", "mean"])
    p.add_argument("--problem-seed", type=int, default=0, help="seed choosing the held-out problems")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--device", default=None)
    p.set_defaults(func=_cmd_bench)

    p = sub.add_parser("run", help="the search-and-learn loop of a YAML recipe (resumable run directory)")
    p.add_argument("recipe", help="YAML recipe (see recipes/)")
    p.add_argument("--out", required=True, help="run directory; rerun the same command to resume")
    p.add_argument("--policy", default=None, help="starting policy folder (overrides the recipe's)")
    p.add_argument("--iterations", type=int, default=None, help="iterations K (overrides the recipe's)")
    p.add_argument("--prm-dir", default=None, help="a trained PRM folder (overrides the recipe's prm_dir)")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("fit", help="ScaleRL sigmoid (and power-law) fit of accuracy against compute")
    p.add_argument("points", help="JSON list of {compute, accuracy} (or a run's metrics.json) or CSV")
    p.add_argument("--warmup", type=float, default=0.0, help="share of the compute range left out at the start")
    p.add_argument("--bootstrap", type=int, default=0, help="bootstrap resamples for percentile intervals")
    p.add_argument("--extrapolate", type=float, default=4.0, help="predict at this multiple of the largest compute")
    p.add_argument("--r0", type=float, default=None,
                   help="starting accuracy R0 (default: a metrics.json's iteration 0, else the lowest-compute point)")
    p.add_argument("--predict-last", action="store_true",
                   help="also fit the first half of the points and report how well it predicts the last one")
    p.add_argument("--out", default=None, help="folder for fit.json and fit.png")
    p.set_defaults(func=_cmd_fit)

    p = sub.add_parser("quickstart", help="tiny model -> SFT warm-start -> evaluation -> one search-and-learn iteration")
    p.add_argument("--out", default="quickstart", help="folder for the report, plots and JSON")
    p.add_argument("--minutes", type=float, default=None, help="SFT wall-time budget (default: the recipe's)")
    p.add_argument("--n-eval", type=int, default=500, help="held-out problems to evaluate")
    p.add_argument("--retrain", action="store_true", help="ignore the cached warm-started policy")
    p.set_defaults(func=_cmd_quickstart)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.command != "quickstart":
        logging.getLogger("roadmap").setLevel(logging.INFO)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
