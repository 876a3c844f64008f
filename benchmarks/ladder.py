"""The self-improvement ladder and its controls at equal learn steps (issue 24), from one shared warm start.

    python benchmarks/ladder.py --out benchmarks/results/ladder --arms ladder,more_sft [--seed 0] [--set key=value ...]

Arms (each a ``roadmap.app.ladder.LadderConfig`` of ``recipes/ladder.yaml`` with overrides):
- ladder: the recipe (best-of-n sampling with the outcome filter, agreement selection);
- more_sft: the same learn steps on the seed set alone, no search (is the gain just more training?);
- verified: the first right-answer sample, no agreement (what agreement adds to the step-checked share);
- majority: the majority answer's sample, the reference unseen (how much the verifier carries);
- unfiltered: greedy self-labels, no filter (the error avalanche);
- mcts: MCTS with verified rollouts as the source of data (does search make better data than sampling?);
- bon8: best-of-8 sampling, about the mcts arm's search tokens (the equal-token control of that question);
- tree_dpo: the same search, learning by DPO (kept solution against a wrong sample; roadmap.app.ladder_learners);
- rl: no search; each iteration runs the project's own RL loop (ScaleRL's defaults, ``roadmap.app.ladder_rl``) on the
  chosen levels' answer-only problems, ``learn_steps`` optimizer steps of 16 prompts x 8 samples (issue 27);
- long_cot: the same search, SFT on wrong-attempt-then-kept traces. Its traces are two solutions long: run every
  arm with ``--set 'lengths={max_solution_tokens: 448, train_max_length: 512}'`` so that they still share the
  warm start (lengths are part of it) and the long-CoT policy's greedy eval is not cut off.

Every arm starts from the same warm start: the first arm run trains it (iteration 0) and the others copy its
``iter_0``, ``tiny`` and ``seed.jsonl`` (the warm start depends only on the keys in ``WARM_KEYS``). Results:
``OUT/<arm>-s<seed>/`` run folders and ``OUT/summary-s<seed>.json`` with each arm's per-level table. ``--tag T``
names the run ``<arm>-T-s<seed>`` (an arm's variant, e.g. ``--arms rl --tag lr3e-5 --set 'rl={learning_rate: 3e-5}'``).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import time
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from roadmap.app.cli_checks import parse_task_args  # noqa: E402
from roadmap.app.ladder import load_ladder_recipe, run_ladder  # noqa: E402
from roadmap.app.ladder_config import LEARNER_SECTIONS  # noqa: E402

ARMS = {
    "ladder": {},
    "more_sft": {"control": "more_sft"},
    "verified": {"selection": "verified"},
    "majority": {"selection": "majority"},
    "unfiltered": {"selection": "unfiltered", "search": {"method": "bon", "budget": 1, "temperature": 0.0}},
    "mcts": {"search": {"method": "mcts", "budget": 4, "width": 4, "mcts_evaluation": "rollout", "temperature": 0.7}},
    "bon8": {"search": {"method": "bon", "budget": 8, "temperature": 0.7}},
    "rl": {"learner": "rl"},
    "tree_dpo": {"learner": "tree_dpo"},
    "long_cot": {"learner": "long_cot"},
}
#: the keys iteration 0 (tiny model, seed set, warm start, its evaluation) depends on
WARM_KEYS = ("task", "task_args", "levels", "seed_levels", "seed_problems", "seed_task_args", "policy", "tiny", "warm_start_steps",
             "warm_start_learning_rate", "batch_size", "eval_problems", "eval_seed", "seed", "lengths")


def _warm_settings(run: Path) -> dict | None:
    """The WARM_KEYS settings a run folder was made with (its config.yaml), or None when it has none."""
    import yaml

    path = run / "config.yaml"
    if not path.exists():
        return None
    from roadmap.app.ladder import LadderConfig

    config = yaml.safe_load(path.read_text()) or {}
    default = asdict(LadderConfig())  # a key newer than the run folder: the run had its default
    return yaml.safe_load(yaml.safe_dump({k: config.get(k, default[k]) for k in WARM_KEYS}))


def _same_warm_start(run: Path, config) -> bool:
    """Whether ``run``'s finished warm start is the one ``config`` would train (its WARM_KEYS agree)."""
    import yaml

    if not (run / "iter_0" / "eval.done.json").exists():
        return False
    mine = yaml.safe_load(yaml.safe_dump({k: asdict(config)[k] for k in WARM_KEYS}))  # as config.yaml spells them
    return _warm_settings(run) == mine


def _share_warm_start(src: Path, dst: Path) -> None:
    if (dst / "iter_0" / "eval.done.json").exists() or not (src / "iter_0" / "eval.done.json").exists():
        return
    from roadmap.app.loop import legacy_run_dir
    from roadmap.core.outputs import claim_output_dir

    # claimed first, as run_ladder would: the copied warm start is then this run folder's own files
    claim_output_dir(dst, "run", legacy=legacy_run_dir)
    for name in ("iter_0", "tiny", "seed.jsonl"):
        if (src / name).is_dir():
            shutil.copytree(src / name, dst / name, dirs_exist_ok=True)
        elif (src / name).exists():
            shutil.copy2(src / name, dst / name)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipe", default="recipes/ladder.yaml")
    ap.add_argument("--out", default="benchmarks/results/ladder")
    ap.add_argument("--arms", default="ladder,more_sft")
    ap.add_argument("--seed", type=int, default=0, help="initialisation seed (model, seed set, search)")
    ap.add_argument("--set", action="append", default=[],
                    help="recipe override KEY=VALUE (YAML value), all arms (a learner's own section, rl: or dpo:, "
                         "only with that learner's arms)")
    ap.add_argument("--tag", default="", help="a variant's name: runs go to OUT/<arm>-<tag>-s<seed>")
    args = ap.parse_args()
    if args.tag and not re.fullmatch(r"[A-Za-z0-9_.]+", args.tag):
        ap.error(f"--tag {args.tag!r}: use letters, digits, '_' and '.' only (it names a run folder)")
    import yaml

    overrides = {k: yaml.safe_load(str(v)) for k, v in parse_task_args(args.set).items()}
    out = Path(args.out)
    path = out / f"summary-s{args.seed}.json"
    summary = json.loads(path.read_text()) if path.exists() else {}
    for arm in args.arms.split(","):
        if arm not in ARMS:
            ap.error(f"unknown arm {arm!r}; use some of {sorted(ARMS)}")
        # the learner's own sections (rl:, dpo:, long_cot:) are refused by a recipe of another learner
        base = load_ladder_recipe(args.recipe, seed=args.seed,
                                  **{k: v for k, v in overrides.items() if k not in LEARNER_SECTIONS})
        config = load_ladder_recipe(args.recipe, seed=args.seed, **{**overrides, **ARMS[arm]})
        assert {k: asdict(base)[k] for k in WARM_KEYS} == {k: asdict(config)[k] for k in WARM_KEYS}
        name = f"{arm}-{args.tag}" if args.tag else arm
        run = out / f"{name}-s{args.seed}"
        # a finished warm start of the same WARM_KEYS settings, from any run folder of this seed here
        warm_from = next((r for r in sorted(out.glob(f"*-s{args.seed}")) if r != run and _same_warm_start(r, config)),
                         None)
        if warm_from is not None:
            _share_warm_start(warm_from, run)
        t0 = time.perf_counter()
        result = run_ladder(config, run)
        summary[name] = {"seconds": time.perf_counter() - t0, "overrides": {**overrides, **ARMS[arm]},
                        "iterations": [{"iteration": r["iteration"], "train_compute": r["train_compute"],
                                        "chosen": r["chosen"], "kept": r["kept"],
                                        "kept_steps_right": r["kept_steps_right"],
                                        **{x: r[x] for x in ("pairs", "no_wrong", "traces", "backtrack") if x in r},
                                        "levels": r["levels"]}
                                       for r in result["iterations"]]}
        summary = {**(json.loads(path.read_text()) if path.exists() else {}), name: summary[name]}  # other processes'
        path.write_text(json.dumps(summary, indent=1))
        print(f"{name}: wrote {run}/report.md", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
