"""A verifier made from the policy itself at scale: its own samples, labelled by final answers only (issue 25).

    python benchmarks/self_verifier.py --policy P --out OUT [--n 4000] [--samples 16] [--task-arg KEY=VALUE ...] \
        [--variant NAME=PAIRWISE_WEIGHT ...]

Step labels from rollouts cost a policy that is right 7% of the time most of its compute and come out noisy
(``docs/benchmarks/self_prm.md``), and 1,500 problems x 4 samples hold only a few hundred problems with both a right
and a wrong solution. Answers are cheap: this samples ``--samples`` solutions for each of ``--n`` train problems
(cached in OUT/samples.json), labels each by the task's checker (``rewards.orm_dataset``), and trains one ORM per
``--variant`` from the policy (likelihood readout over the whole solution; ``NAME=W`` adds the within-problem
pairwise term at weight W, and W > 0 also saves the checkpoint with the best held-out within-problem AUC).
Score them with ``benchmarks/self_prm.py --prm NAME=OUT/NAME`` beside majority vote. Writes OUT/summary.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--policy", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--n", type=int, default=4000, help="train problems")
    ap.add_argument("--samples", type=int, default=16, help="solutions sampled per problem")
    ap.add_argument("--temperature", type=float, default=0.7)
    ap.add_argument("--seed", type=int, default=1, help="seed of the train problems and of sampling")
    ap.add_argument("--task-arg", action="append", default=[], help="KEY=VALUE for ArithTask")
    ap.add_argument("--variant", action="append", default=[], help="NAME=PAIRWISE_WEIGHT (repeatable)")
    ap.add_argument("--epochs", type=float, default=2.0)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-4)
    args = ap.parse_args(argv)
    variants = [(v.split("=", 1)[0], float(v.split("=", 1)[1])) for v in args.variant] or [("bce", 0.0), ("pair", 1.0)]

    import yaml

    from rewards import RewardModelConfig, orm_dataset, train_orm
    from roadmap.core import HFPolicy
    from roadmap.core.io import write_json
    from roadmap.core.tasks import ArithTask

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    task = ArithTask(**{k: yaml.safe_load(v) for k, v in (a.split("=", 1) for a in args.task_arg)})
    problems = task.problems("train", n=args.n, seed=args.seed)
    cache = out / "samples.json"
    if cache.exists():
        samples = json.loads(cache.read_text())
    else:
        t = time.perf_counter()
        rows = HFPolicy.from_pretrained(args.policy, batch_size=256).sample(
            [task.prompt(p) for p in problems], n=args.samples, max_new_tokens=256, temperature=args.temperature,
            seed=args.seed)
        samples = {"texts": [[c.text for c in r] for r in rows], "tokens": sum(c.num_tokens for r in rows for c in r),
                   "seconds": time.perf_counter() - t}
        write_json(cache, samples)
    data = orm_dataset(task, problems, samples["texts"])
    verdicts: dict[str, set[bool]] = {}  # the checker's verdicts orm_dataset already gave, by problem
    for pid, ok in zip(data["problem_id"], data["correct"]):
        verdicts.setdefault(pid, set()).add(ok)
    summary = {"policy": args.policy, "task_args": args.task_arg, "problems": len(problems), "samples": args.samples,
               "sampled_tokens": samples["tokens"], "sample_seconds": samples["seconds"],
               "right_fraction": sum(data["correct"]) / len(data),
               "mixed_problems": sum(len(v) == 2 for v in verdicts.values()), "variants": {}}
    for name, weight in variants:
        config = RewardModelConfig(output_dir=str(out / name), labels="hard", readout="likelihood",
                                   epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr,
                                   seed=args.seed, pairwise_weight=weight,
                                   select_by="selection_auc" if weight else "step_auc")
        res = train_orm(data, args.policy, config, step_delimiter=task.step_delimiter)
        summary["variants"][name] = {"pairwise_weight": weight, **{k: res[k] for k in (
            "steps", "wall_seconds", "init_eval_auc", "eval_auc", "eval_selection_auc", "eval_selection_problems",
            "chosen_step", "eval_history")}}
        write_json(out / "summary.json", summary)
        print(name, {k: summary["variants"][name][k] for k in ("eval_auc", "eval_selection_auc", "chosen_step")})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
