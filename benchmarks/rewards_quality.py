"""PRM quality and best-of-N selection, with automatic labels only (arith by default; any task with exact step
labels, e.g. ``--task countdown``).

1. Sample solutions of train problems with the warm-started policy.
2. Label their steps automatically: Monte Carlo (soft and hard labels from the same rollouts)
   and first-error binary search, with rollouts of a completer (the policy itself, or a
   stronger one: ``--completer``). No ground truth is used: only the final-answer verifier.
3. Train one PRM per label kind, and an ORM on the same solutions' verified outcomes.
4. On held-out problems, sample 16 solutions each; measure each PRM's step ROC-AUC against the
   task's exact step checker (``task.step_labels``: arith's step arithmetic, countdown's solvability of every
   state by brute force), and best-of-16 accuracy by PRM (min, last), ORM and majority vote. Every selection is
   judged by the task's whole check on the solution it chose (``task.is_correct``).
5. The labels themselves against the exact step checker: how often the completer's rollouts label a step as
   the checker does (``label_check``).

    python benchmarks/rewards_quality.py --policy ~/.cache/o1-roadmap/quickstart-<key>/policy
    python benchmarks/rewards_quality.py --policy P --task countdown --task-arg min_numbers=3 \
        --task-arg max_numbers=3 --task-arg solution_format=path ...

Writes ``--out``/rewards_quality.json and .md; docs/benchmarks/rewards.md quotes the table.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--policy", required=True, help="warm-started policy folder")
    ap.add_argument("--task", default="arith", help="a registered task whose step_labels are exact")
    ap.add_argument("--task-arg", action="append", default=[], help="KEY=VALUE option of --task (repeatable)")
    ap.add_argument("--out", default="benchmarks/results/rewards")
    ap.add_argument("--n-train", type=int, default=600, help="train problems whose samples get labelled")
    ap.add_argument("--train-samples", type=int, default=4)
    ap.add_argument("--rollouts", type=int, default=8)
    ap.add_argument("--n-test", type=int, default=500)
    ap.add_argument("--n-best", type=int, default=16)
    ap.add_argument("--temperature", type=float, default=1.0, help="sampling temperature of labelled solutions and rollouts")
    ap.add_argument("--test-temperature", type=float, default=None, help="of the held-out samples (default: --temperature)")
    ap.add_argument("--minutes", type=float, default=2.0, help="training budget per reward model")
    ap.add_argument("--epochs", type=float, default=4.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--test-seed", type=int, default=None,
                    help="seed of the held-out problems (default: --seed; give a test seed no tuning touched)")
    ap.add_argument("--prm-init", default=None,
                    help="folder whose weights start the reward models (default: --completer)")
    ap.add_argument("--completer", default=None,
                    help="policy whose rollouts label the steps (Math-Shepherd's completer; default: --policy)")
    ap.add_argument("--label-methods", default="mc,binary", help="labelling methods to run (mc, binary)")
    ap.add_argument("--reuse-labels", action="store_true", help="load the labels of an earlier run in --out")
    ap.add_argument("--models", default="mc_soft,mc_hard,binary,orm", help="which reward models to train")
    ap.add_argument("--reuse-models", action="store_true",
                    help="load the reward models (and labels) of an earlier run in --out; only re-evaluate")
    ap.add_argument("--tag", default="", help="suffix of this run's model folders and result files")
    ap.add_argument("--readout", default="likelihood", choices=["likelihood", "tokens", "step_end"], help="the PRMs' readout")
    ap.add_argument("--prm-lr", type=float, default=None, help="PRM learning rate (default: by readout)")
    args = ap.parse_args()
    init = args.prm_init or args.completer or args.policy

    from rewards import (
        LabelConfig,
        ProcessRewardModel,
        RewardModelConfig,
        aggregate,
        label_solutions,
        orm_dataset_from_labels,
        rollout_summary,
        sample_solutions,
        save_labels,
        train_orm,
        train_prm,
    )
    from roadmap.app.cli_checks import parse_task_args
    from roadmap.core import HFPolicy
    from roadmap.core.io import atomic_write_text, format_table, write_json
    from roadmap.core.stats import roc_auc, wilson_interval
    from roadmap.core.tasks import get_task, selection_correct
    from search.best_of_n import majority_vote

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    task = get_task(args.task, **parse_task_args(args.task_arg))
    policy = HFPolicy.from_pretrained(args.policy, batch_size=256)
    completer = HFPolicy.from_pretrained(args.completer, batch_size=256) if args.completer else policy
    t0 = time.perf_counter()

    train = task.problems("train", n=args.n_train, seed=args.seed + 101)
    args.reuse_labels = args.reuse_labels or args.reuse_models
    sols = [] if args.reuse_labels else sample_solutions(policy, task, train, args.train_samples,
                                                        temperature=args.temperature, seed=args.seed)
    labels, label_cost = {}, {}
    if args.reuse_labels:
        from rewards import load_labels

        label_cost = json.loads((out / "label_cost.json").read_text())
        labels = {m: load_labels(out / f"labels_{m}") for m in args.label_methods.split(",")}
    for method in () if args.reuse_labels else args.label_methods.split(","):
        t = time.perf_counter()
        cfg = LabelConfig(method=method, rollouts=args.rollouts, temperature=args.temperature, seed=args.seed)
        ds = label_solutions(completer, task, train, sols, cfg)
        save_labels(ds, out / f"labels_{method}")
        labels[method] = ds
        label_cost[method] = {**rollout_summary(ds), "seconds": time.perf_counter() - t}
    (out / "label_cost.json").write_text(json.dumps(label_cost, indent=1))
    label_check = {m: check_labels(task, train, ds) for m, ds in labels.items()}

    models = {}

    def fit(name: str, folder: Path, train_fn) -> None:
        done = folder / "train_result.json"
        models[name] = json.loads(done.read_text()) if args.reuse_models and done.exists() else train_fn()

    specs = [("mc_soft", "mc", "soft"), ("mc_hard", "mc", "hard"), ("binary", "binary", "hard")]
    wanted = set(args.models.split(","))
    for name, method, kind in (spec for spec in specs if spec[0] in wanted):
        cfg = RewardModelConfig(output_dir=str(out / f"prm_{name}{args.tag}"), labels=kind, max_minutes=args.minutes,
                                epochs=args.epochs, seed=args.seed, readout=args.readout, learning_rate=args.prm_lr)
        fit(name, Path(cfg.output_dir),
            lambda cfg=cfg, method=method: train_prm(labels[method], init, cfg, step_delimiter=task.step_delimiter))
    if "orm" in wanted:
        cfg = RewardModelConfig(output_dir=str(out / f"orm{args.tag}"), labels="hard", max_minutes=args.minutes,
                                epochs=args.epochs, seed=args.seed, readout="step_end")
        fit("orm", Path(cfg.output_dir),
            lambda cfg=cfg: train_orm(orm_dataset_from_labels(next(iter(labels.values()))), init, cfg))

    test = task.problems("test", n=args.n_test, seed=args.seed if args.test_seed is None else args.test_seed)
    test_t = args.test_temperature if args.test_temperature is not None else args.temperature
    cands = sample_solutions(policy, task, test, args.n_best, temperature=test_t, seed=args.seed + 1)
    correct = [[task.is_correct(p, s) for s in row] for p, row in zip(test, cands)]
    truth = [[task.step_labels(p, s) for s in row] for p, row in zip(test, cands)]
    flat_prompts = [task.prompt(p) for p, row in zip(test, cands) for _ in row]
    flat_sols = [s for row in cands for s in row]

    def accuracy_row(name: str, picks: list[int | None], answers: list[str | None] | None = None) -> dict:
        """Accuracy of a selection: of the picked solutions (indices), or of chosen answers, each judged on the
        first solution carrying it (``selection_correct``)."""
        if answers is not None:
            ok = sum(selection_correct(task, p, a, row) for a, p, row in zip(answers, test, cands))
        else:
            ok = sum(c[i] for c, i in zip(correct, picks) if i is not None)
        lo, hi = wilson_interval(ok, len(test))
        return {"selector": name, "n": len(test), "accuracy": ok / len(test), "ci95": [lo, hi]}

    rows = [
        accuracy_row(f"majority@{args.n_best}", [], [majority_vote([task.extract_answer(s) for s in r]) for r in cands]),
        accuracy_row(f"oracle pass@{args.n_best}", [r.index(True) if any(r) else None for r in correct]),
        accuracy_row("first sample (no selection)", [0] * len(test)),
    ]
    auc_rows = []
    reference = {}
    if args.readout == "likelihood":
        # what BCE training adds: the initialising model's own likelihood at the initial calibration
        reference["untrained"] = ProcessRewardModel.from_policy(init, step_delimiter=task.step_delimiter,
                                                                batch_size=256)
    for name in [*reference, *models]:
        rm = reference.get(name) or ProcessRewardModel.from_pretrained(
            out / (f"orm{args.tag}" if name == "orm" else f"prm_{name}{args.tag}"), batch_size=256)
        flat = rm.step_scores(flat_prompts, flat_sols)
        scores, k = [], 0
        for row in cands:
            scores.append(flat[k : k + len(row)])
            k += len(row)
        if name != "orm":
            s = [x for prob in scores for sol in prob for x in sol]
            y = [x for prob in truth for sol in prob for x in sol]
            auc_rows.append({"prm": name, "steps_scored": len(s), "positives": sum(y),
                             "auc": roc_auc(s, y) if 0 < sum(y) < len(y) else None,  # None: one class only
                             "rollouts": label_cost.get("binary" if name == "binary" else "mc", {}).get("rollouts", 0)
                             if name in models else 0,
                             "train_seconds": models[name]["wall_seconds"] if name in models else 0.0})
        answers = [[task.extract_answer(s) for s in row] for row in cands]
        for how in (("min", "last") if name != "orm" else ("last",)):
            agg = [[aggregate(sol, how) for sol in prob] for prob in scores]
            picks = [best_index(a, s) for a, s in zip(answers, agg)]
            rows.append(accuracy_row(f"{name} {how}" if name != "orm" else "orm", picks))
        del rm
    result = {"args": vars(args), "label_cost": label_cost, "label_check": label_check, "auc": auc_rows,
              "best_of_n": rows,
              "models": {k: {kk: vv for kk, vv in v.items() if kk != "losses"} for k, v in models.items()},
              "wall_seconds": time.perf_counter() - t0}
    write_json(out / f"rewards_quality{args.tag}.json", result)
    md = f"### Step ROC-AUC against the {task.name} step checker\n\n"
    md += format_table(auc_rows, ["prm", "steps_scored", "positives", "auc", "rollouts", "train_seconds"],
                       markdown=True)
    md += f"\n\n### The labels against the {task.name} step checker\n\n"
    md += format_table([{"labels": m, **v} for m, v in label_check.items()],
                       ["labels", "steps", "agreement", "false_negative_steps", "false_positive_steps",
                        "soft_label_auc"], markdown=True)
    md += f"\n\n### Best-of-{args.n_best} on {len(test)} held-out problems\n\n"
    md += format_table(rows, ["selector", "n", "accuracy", "ci95"], markdown=True)
    atomic_write_text(out / f"rewards_quality{args.tag}.md", md + "\n")
    print(md)
    print(json.dumps(label_cost, indent=1))


def best_index(answers, scores) -> int | None:
    """The highest-scoring solution that states an answer (ties to the first); None when none does."""
    return max((i for i, a in enumerate(answers) if a is not None), key=lambda i: scores[i], default=None)


def check_labels(task, problems, ds) -> dict:
    """How the automatic labels of ``ds`` agree with the task's exact step checker, over the labelled steps of
    ``problems``: agreement of the hard labels, their false negatives and positives, and the ROC-AUC of the soft
    labels (Monte Carlo fractions; None when the exact labels hold one class)."""
    from roadmap.core.stats import roc_auc

    by_id = {p.id: p for p in problems}
    agree = fn = fp = 0
    soft, truth = [], []
    for r in ds:
        p = by_id.get(r["problem_id"])
        if p is None:
            continue
        exact = task.step_labels(p, task.step_delimiter.join(r["steps"]))
        for h, s, t in zip(r["hard_labels"], r["soft_labels"], exact):
            agree += (h > 0.5) == bool(t)
            fn += bool(t) and h <= 0.5
            fp += (not t) and h > 0.5
            soft.append(s)
            truth.append(bool(t))
    n = len(truth)
    return {"steps": n, "agreement": agree / n if n else None, "false_negative_steps": fn,
            "false_positive_steps": fp, "exact_positive_share": sum(truth) / n if n else None,
            "soft_label_auc": roc_auc(soft, truth) if 0 < sum(truth) < n else None}


if __name__ == "__main__":
    main()
