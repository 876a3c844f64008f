"""Why a PRM made from the policy itself loses to majority vote, and which selection does not (issue 25).

    python benchmarks/self_prm.py --policy P --prm binary=R/prm_binary [--prm NAME=DIR ...] --labels R/labels_binary \
        --out benchmarks/results/self_prm [--n 300] [--pool 64] [--budgets 4,16,64]

For the dev seed and the test seed alike it samples one pool of ``--pool`` solutions per held-out problem (at
``--temperature``, the test-time benchmark's), and scores every step with every scorer: the untrained likelihood of
the policy itself (``init``), each trained PRM, and ``NAME-init``, its ratio readout (``rewards.RatioPRM``: the
sigmoid of the trained PRM's log score minus the initialisation's, what training on the labels added; the
log-ratio of an implicit PRM, arXiv 2412.01981).
Selections at N = each budget read the pool's first N samples, so every rule sees the same candidates:

- ``majority``; ``best`` (the top solution by min, last or ``step``: the weakest step's own factor, s_t / s_(t-1),
  which undoes the cumulative fall of a product readout); ``weighted`` (scores summed per answer);
- ``vote+prm``: each answer scores log(votes) + lambda * mean logit of its solutions' scores; lambda is chosen on
  the dev seed's pool (lambda -> 0 is majority with the PRM breaking ties);
- ``oracle``: the arith step checker as the scorer (the ceiling of any PRM), and pass@N.

Diagnostics, on the test pool: step ROC-AUC against the step checker (all steps, and within problem: the chance
that a right solution outscores a wrong one of the same problem); the same on the policy's *confident* mistakes
(wrong answers that win the vote); expected calibration error; the mean step score by step index along right
solutions; and the labels' agreement with the step checker (``--labels``). Pools are cached in ``--out`` (a rerun
reuses them). Writes ``--out``/self_prm.json and self_prm.md.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from collections import defaultdict
from pathlib import Path

from rewards import aggregate

LAMBDAS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0)


def _logit(p: float) -> float:
    p = min(1 - 1e-6, max(1e-6, p))
    return math.log(p / (1 - p))


def step_factors(scores: list[float]) -> list[float]:
    """Each step's own factor s_t / s_(t-1) of a prefix-product readout (s_0 = 1)."""
    out, prev = [], 1.0
    for s in scores:
        out.append(min(1.0, s / prev) if prev > 0 else 0.0)
        prev = s
    return out


def solution_score(scores: list[float], how: str) -> float:
    """``rewards.aggregate``'s min or last, or ``step``: the weakest step's own factor."""
    return (min(step_factors(scores)) if scores else 0.0) if how == "step" else aggregate(scores, how)


def pick_vote_prm(answers, scores, lam: float):
    """log(votes) + lam * mean logit of the answer's solutions' scores; ties to the higher mean logit."""
    groups = defaultdict(list)
    for a, s in zip(answers, scores):
        if a is not None:
            groups[a].append(_logit(s))
    if not groups:
        return None
    return max(groups, key=lambda a: (math.log(len(groups[a])) + lam * statistics.fmean(groups[a]),
                                      statistics.fmean(groups[a])))


def ece(scores: list[float], labels: list[bool], bins: int = 10) -> float:
    total, err = len(scores), 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        idx = [i for i, s in enumerate(scores) if lo <= s < hi or (b == bins - 1 and s == 1.0)]
        if idx:
            err += len(idx) / total * abs(statistics.fmean(scores[i] for i in idx)
                                          - statistics.fmean(float(labels[i]) for i in idx))
    return err


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--policy", required=True)
    ap.add_argument("--prm", action="append", default=[], help="NAME=FOLDER of a trained PRM (repeatable)")
    ap.add_argument("--labels", default=None, help="label dataset the PRM was trained on, for label accuracy")
    ap.add_argument("--label-seed", type=int, default=102, help="seed of the labelled train problems")
    ap.add_argument("--out", required=True)
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--pool", type=int, default=64)
    ap.add_argument("--budgets", default="4,16,64")
    ap.add_argument("--temperature", type=float, default=0.7)
    ap.add_argument("--dev-seed", type=int, default=1)
    ap.add_argument("--test-seed", type=int, default=918273)
    ap.add_argument("--task-arg", action="append", default=[], help="KEY=VALUE for ArithTask")
    ap.add_argument("--label-task-arg", action="append", default=None,
                    help="KEY=VALUE of the labelled problems' task, if not --task-arg's (e.g. digits=2 for the default)")
    ap.add_argument("--rescore", action="store_true", help="keep the cached pools' samples, score them again")
    args = ap.parse_args(argv)
    budgets = [int(b) for b in args.budgets.split(",")]
    if max(budgets) > args.pool:
        ap.error(f"--budgets {args.budgets} exceeds --pool {args.pool}")
    if args.dev_seed == args.test_seed:
        ap.error("--dev-seed equals --test-seed: report on a seed no tuning touched")

    import yaml

    from rewards import ProcessRewardModel, load_labels
    from rewards.prm_ratio import _sigmoid_log_ratio  # the library's ratio readout (RatioPRM), on cached scores
    from roadmap.core import HFPolicy
    from roadmap.core.io import atomic_write_text, format_table, write_json
    from roadmap.core.stats import roc_auc, wilson_interval, within_group_auc
    from roadmap.core.tasks import ArithTask
    from search.best_of_n import best_answer, majority_vote, weighted_vote

    t0 = time.perf_counter()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    task = ArithTask(**{k: yaml.safe_load(v) for k, v in (a.split("=", 1) for a in args.task_arg)})
    policy = HFPolicy.from_pretrained(args.policy, batch_size=256)
    scorers = {"init": ProcessRewardModel.from_policy(args.policy, step_delimiter=task.step_delimiter, batch_size=256)}
    for spec in args.prm:
        name, folder = spec.split("=", 1)
        scorers[name] = ProcessRewardModel.from_pretrained(folder, batch_size=256)

    def pool_for(seed: int) -> dict:
        path = out / f"pool-{seed}.json"
        problems = task.problems("test", n=args.n, seed=seed)
        if path.exists():
            pool = json.loads(path.read_text())
            if args.rescore:
                pool["scores"] = {}
        else:
            t = time.perf_counter()
            rows = policy.sample([task.prompt(p) for p in problems], n=args.pool, max_new_tokens=256,
                                 temperature=args.temperature, seed=seed + 7)
            pool = {"texts": [[c.text for c in r] for r in rows],
                    "tokens": sum(c.num_tokens for r in rows for c in r),
                    "sample_seconds": time.perf_counter() - t, "scores": {}}
        prompts = [task.prompt(p) for p in problems]
        for name, rm in scorers.items():
            if name not in pool["scores"]:
                t = time.perf_counter()
                flat = rm.step_scores([prompts[i] for i, r in enumerate(pool["texts"]) for _ in r],
                                      [s for r in pool["texts"] for s in r])
                it = iter(flat)
                pool["scores"][name] = [[next(it) for _ in r] for r in pool["texts"]]
                pool.setdefault("score_seconds", {})[name] = time.perf_counter() - t
        write_json(path, pool)
        pool["problems"] = problems
        pool["answers"] = [[task.extract_answer(s) for s in r] for r in pool["texts"]]
        pool["correct"] = [[task.is_correct(p, s) for s in r] for p, r in zip(problems, pool["texts"])]
        pool["truth"] = [[task.step_labels(p, s) for s in r] for p, r in zip(problems, pool["texts"])]
        # what training added: sigmoid(log s_trained - log s_init), step by step (an ORM has one score: none)
        for name in [n for n, rm in scorers.items() if n != "init" and rm.kind != "orm"]:
            pool["scores"][f"{name}-init"] = [
                [[_sigmoid_log_ratio(a, b) for a, b in zip(sa, sb)] for sa, sb in zip(ra, rb)]
                for ra, rb in zip(pool["scores"][name], pool["scores"]["init"])]
        return pool

    pools = {"dev": pool_for(args.dev_seed), "test": pool_for(args.test_seed)}
    names = list(pools["test"]["scores"])
    aggs = ("min", "last", "step")

    def accuracy(pool, picks) -> float:
        return sum(a is not None and task.answers_match(a, p.answer) for a, p in zip(picks, pool["problems"]))

    def picks_for(pool, rule: str, n: int, name: str | None = None, how: str = "min", lam: float = 0.0):
        res = []
        for i, answers in enumerate(pool["answers"]):
            a = answers[:n]
            if rule == "majority":
                res.append(majority_vote(a))
                continue
            if rule == "oracle":
                res.append(best_answer(a, [float(all(t)) if t else 0.0 for t in pool["truth"][i][:n]]))
                continue
            s = [solution_score(x, how) for x in pool["scores"][name][i][:n]]
            res.append(best_answer(a, s) if rule == "best" else weighted_vote(a, s) if rule == "weighted"
                       else pick_vote_prm(a, s, lam))
        return res

    # lambda of vote+prm, per scorer, aggregation and N, chosen on the dev pool only
    chosen = {}
    for name in names:
        for how in aggs:
            for n in budgets:
                accs = [(accuracy(pools["dev"], picks_for(pools["dev"], "vote", n, name, how, lam)), -lam)
                        for lam in LAMBDAS]
                chosen[(name, how, n)] = -max(accs)[1]

    rows = []
    for split in ("dev", "test"):
        pool = pools[split]
        m = len(pool["problems"])

        def row(label, n, picks, split=split, pool=pool, m=m):
            ok = accuracy(pool, picks)
            lo, hi = wilson_interval(ok, m)
            rows.append({"split": split, "N": n, "selection": label, "accuracy": ok / m, "ci95": [lo, hi]})

        for n in budgets:
            row("majority", n, picks_for(pool, "majority", n))
            ok = sum(any(c[:n]) for c in pool["correct"])
            lo, hi = wilson_interval(ok, m)
            rows.append({"split": split, "N": n, "selection": "pass@N", "accuracy": ok / m, "ci95": [lo, hi]})
            row("oracle (step checker) best", n, picks_for(pool, "oracle", n))
            for name in names:
                for how in aggs:
                    row(f"{name} best {how}", n, picks_for(pool, "best", n, name, how))
                    row(f"{name} weighted {how}", n, picks_for(pool, "weighted", n, name, how))
                    lam = chosen[(name, how, n)]
                    row(f"{name} vote+prm {how} (lambda {lam:g})", n, picks_for(pool, "vote", n, name, how, lam))

    # diagnostics on the test pool
    pool = pools["test"]
    diag = []
    for name in names:
        flat_s = [x for prob in pool["scores"][name] for sol in prob for x in sol]
        flat_y = [x for prob in pool["truth"] for sol in prob for x in sol]
        sol = [(i, solution_score(x, "min"), c, a) for i, prob in enumerate(pool["scores"][name])
               for x, c, a in zip(prob, pool["correct"][i], pool["answers"][i])]
        within = within_group_auc([x for _, x, _, _ in sol], [c for _, _, c, _ in sol], [i for i, _, _, _ in sol])
        # right solutions against those with the winning answer, where majority@pool is wrong
        maj = [majority_vote(a) for a in pool["answers"]]
        lost = {i for i, (m, p) in enumerate(zip(maj, pool["problems"]))
                if m is not None and not task.answers_match(m, p.answer)}
        vs = [(i, x, c) for i, x, c, a in sol if i in lost and (c or a == maj[i])]
        conf = within_group_auc([x for _, x, _ in vs], [c for _, _, c in vs], [i for i, _, _ in vs])
        along = defaultdict(list)
        for prob, truth in zip(pool["scores"][name], pool["truth"]):
            for sol, t in zip(prob, truth):
                if t and all(t):
                    for k, x in enumerate(sol):
                        along[k + 1].append(x)
        per_step = len(flat_s) == len(flat_y)  # an ORM scores whole solutions: no step AUC, no step calibration
        diag.append({"scorer": name, "step_auc": roc_auc(flat_s, flat_y) if per_step else None,
                     "within_problem_auc": within[0], "problems_mixed": within[1],
                     "auc_vs_winning_wrong_answer": conf[0], "problems_majority_wrong_pass": conf[1],
                     "ece": ece(flat_s, flat_y) if per_step and not name.endswith("-init") else None,
                     "mean_score_by_step_right_solutions": {k: round(statistics.fmean(v), 3)
                                                            for k, v in sorted(along.items()) if len(v) >= 20}})
    label_check = None
    if args.labels:
        ds = load_labels(args.labels)
        label_task = task if args.label_task_arg is None else ArithTask(
            **{k: yaml.safe_load(v) for k, v in (a.split("=", 1) for a in args.label_task_arg)})
        by_id = {p.id: p for p in label_task.problems("train", n=max(1, len(set(ds["problem_id"]))),
                                                      seed=args.label_seed)}
        agree = total = fn = fp = 0
        for r in ds:
            p = by_id.get(r["problem_id"])
            if p is None:
                continue
            truth = label_task.step_labels(p, label_task.step_delimiter.join(r["steps"]))
            for h, t in zip(r["hard_labels"], truth):
                total += 1
                agree += (h > 0.5) == bool(t)
                fn += t and h <= 0.5
                fp += (not t) and h > 0.5
        label_check = {"problems_found": len({r["problem_id"] for r in ds} & set(by_id)), "steps": total, "agreement": agree / total if total else None,
                       "false_negative_steps": fn, "false_positive_steps": fp,
                       "positive_share": sum(h > 0.5 for r in ds for h in r["hard_labels"]) / max(1, total),
                       "right_solutions_share": sum(ds["correct"]) / len(ds)}
    result = {"args": vars(args), "lambdas_chosen_on_dev": {f"{k[0]} {k[1]} N={k[2]}": v for k, v in chosen.items()},
              "rows": rows, "diagnostics": diag, "labels": label_check,
              "pool_tokens": {k: v.get("tokens") for k, v in pools.items()},
              "wall_seconds": time.perf_counter() - t0}
    write_json(out / "self_prm.json", result)
    md = "### Selection on the test pool\n\n" + format_table(
        [r for r in rows if r["split"] == "test"], ["N", "selection", "accuracy", "ci95"], markdown=True)
    md += "\n\n### Diagnostics (test pool)\n\n" + format_table(
        [{k: v for k, v in d.items() if k != "mean_score_by_step_right_solutions"} for d in diag],
        ["scorer", "step_auc", "within_problem_auc", "problems_mixed", "auc_vs_winning_wrong_answer",
         "problems_majority_wrong_pass", "ece"], markdown=True)
    md += "\n\nMean step score along right solutions:\n\n" + "\n".join(
        f"- {d['scorer']}: {d['mean_score_by_step_right_solutions']}" for d in diag)
    if label_check:
        md += f"\n\nLabels against the step checker: {json.dumps(label_check)}"
    atomic_write_text(out / "self_prm.md", md + "\n")
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
