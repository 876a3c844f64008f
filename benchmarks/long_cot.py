"""Long chains of thought on arith: SFT on traces from search trees against SFT on clean verified solutions.

    python benchmarks/long_cot.py --policy P7 --out /tmp/bench/long_cot --lock /work/heavy.lock

From one warm start (P7) and at equal training tokens:

1. MCTS on ``--train-problems`` fresh training problems (2 simulations x 4 children at temperature 1,
   leaf values from verified rollouts): the trees hold the policy's own wrong steps, valued low;
2. two datasets from the same trees (``learning.traces``): *traces* (each verified path with a
   self-check after every step; the configured share with a wrong sibling corrected or backtracked
   from) and *clean* (the same verified paths, no checks, no detours);
3. SFT of the warm start on each, the clean arm given as many epochs as make its training tokens
   equal the traces arm's;
4. greedy accuracy and behaviour rates (``rewards.behaviour``) of the warm start and both arms on
   ``--eval-problems`` held-out problems;
5. the test-time bench (``roadmap.app.bench``) of both arms: "sequential" (one greedy chain of thought
   under budget forcing, N x ``--thinking-unit`` tokens) beside majority vote over N samples
   (and best-of-N / beam with ``--prm``), accuracy against generated tokens per problem.

Every phase is resumable (its output is reused when present) and, with ``--lock``, holds that
lock file only while it computes. Writes ``long_cot.json``, ``long_cot.md`` and ``long_cot.png``.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
from collections import Counter
from pathlib import Path


@contextlib.contextmanager
def locked(path: str | None):
    if path is None:
        yield
        return
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def tokens(ds) -> int:
    """Characters of prompt and completion plus BOS and EOS: the char tokenizer's training tokens per epoch."""
    return sum(len(p) + len(c) + 2 for p, c in zip(ds["prompt"], ds["completion"]))


def train(policy: str, ds, out: Path, epochs: float, args) -> dict:
    from policy_init.sft import SFTWarmStartConfig, warm_start

    marker = out / "sft_result.json"
    if marker.exists():
        return json.loads(marker.read_text())
    cfg = SFTWarmStartConfig(output_dir=str(out), epochs=epochs, learning_rate=args.learning_rate,
                             batch_size=args.batch_size, warmup_fraction=0.05, logging_steps=50, seed=args.seed)
    data = ds.select_columns(["prompt", "completion", "id"]).shuffle(seed=args.seed)
    res = warm_start(policy, None, cfg, train_dataset=data).to_dict()
    (out / "sft_result.json").write_text(json.dumps(res))
    return res


def greedy(policy_dir: str, task, problems, path: Path, max_new_tokens: int) -> dict:
    from roadmap.app.evaluate import evaluate
    from roadmap.core import HFPolicy, Lengths
    from roadmap.core.io import write_json

    if path.exists():
        return json.loads(path.read_text())
    report = evaluate(HFPolicy.from_pretrained(policy_dir, batch_size=64), task, problems, method="greedy",
                      lengths=Lengths(max_solution_tokens=max_new_tokens), progress=False).to_dict()
    write_json(path, report)
    return report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--policy", required=True, help="the warm start (P7)")
    ap.add_argument("--out", default="/tmp/bench/long_cot")
    ap.add_argument("--lock", default=None, help="lock file held while each phase computes (shared machines)")
    ap.add_argument("--train-problems", type=int, default=2048)
    ap.add_argument("--eval-problems", type=int, default=500)
    ap.add_argument("--epochs", type=float, default=2.0, help="epochs of the traces arm (clean: equal tokens)")
    ap.add_argument("--learning-rate", type=float, default=5e-4)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--clean", type=float, default=0.4, help="trace mix: weight of clean (checked) paths")
    ap.add_argument("--correction", type=float, default=0.4, help="trace mix: weight of corrected errors")
    ap.add_argument("--backtrack", type=float, default=0.2, help="trace mix: weight of backtracks")
    ap.add_argument("--no-train-on-errors", dest="train_on_errors", action="store_false",
                    help="traces: put the text up to the wrong step in the prompt (the loss skips the error)")
    ap.add_argument("--budgets", default="1,2,3,4,6,8", help="bench budgets N (samples, or thinking units)")
    ap.add_argument("--thinking-unit", type=int, default=24, help="thinking tokens per budget unit (sequential)")
    ap.add_argument("--bench-problems", type=int, default=500)
    ap.add_argument("--prm", default=None, help="a PRM folder: adds best-of-N and beam to the bench")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    from learning.traces import TraceConfig, trace_rows
    from rewards import VerifierScorer
    from roadmap.app.bench import TestTimeConfig, bench_test_time
    from roadmap.app.train_search import TrainSearchConfig, search_train
    from roadmap.core import HFPolicy
    from roadmap.core.io import atomic_write_text, folder_fingerprint, format_table, write_json
    from roadmap.core.tasks import get_task
    from search.trees import read_trees

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    task = get_task("arith")
    tests = task.problems("test", n=args.eval_problems, seed=args.seed)

    with locked(args.lock):
        search = search_train(HFPolicy.from_pretrained(args.policy, batch_size=64), task,
                              task.problems("train", n=args.train_problems, seed=args.seed + 1), out / "search",
                              TrainSearchConfig(method="mcts", budget=2, width=4, mcts_evaluation="rollout",
                                                temperature=1.0, shard_size=256, seed=args.seed),
                              verifier=VerifierScorer(task), progress=False)
    rows = read_trees(out / "search" / "trees.jsonl")
    mix = TraceConfig(clean=args.clean, correction=args.correction, backtrack=args.backtrack, seed=args.seed,
                      train_on_errors=args.train_on_errors)
    arms = {"traces": trace_rows(rows, task, mix),
            "clean": trace_rows(rows, task, TraceConfig(clean=1, correction=0, backtrack=0, check_steps=False))}
    per_epoch = {name: tokens(ds) for name, ds in arms.items()}
    epochs = {"traces": args.epochs, "clean": args.epochs * per_epoch["traces"] / per_epoch["clean"]}
    sft = {}
    for name, ds in arms.items():
        with locked(args.lock):
            sft[name] = train(args.policy, ds, out / name, epochs[name], args)
    dirs = {"warm": args.policy, "clean": str(out / "clean"), "traces": str(out / "traces")}
    evals = {}
    for name, d in dirs.items():
        with locked(args.lock):
            evals[name] = greedy(d, task, tests, out / f"eval_{name}.json", max_new_tokens=240)
    budgets = tuple(int(b) for b in args.budgets.split(","))
    methods = ("greedy", "majority", "sequential") + (("bon", "beam") if args.prm else ())
    benches = {}
    for name in ("clean", "traces"):
        scorer = None
        if args.prm:
            from rewards import load_step_scorer

            scorer = load_step_scorer(args.prm, task, "min")
        with locked(args.lock):
            benches[name] = bench_test_time(
                HFPolicy.from_pretrained(dirs[name], batch_size=64), task, tests[: args.bench_problems],
                out / f"bench_{name}", TestTimeConfig(methods=methods, budgets=budgets, seeds=(args.seed,),
                                                      thinking_unit=args.thinking_unit),
                scorer=scorer, progress=False, inputs={"policy": folder_fingerprint(dirs[name])},
                scorer_inputs={"prm": folder_fingerprint(args.prm)} if args.prm else None)

    rows_out = []
    for name in dirs:
        ev, b = evals[name], evals[name]["behaviour"]
        rows_out.append({"policy": name, "accuracy": ev["accuracy"], "ci95": ev["ci95"],
                         "tokens_per_problem": ev["generated_tokens"] / ev["n"],
                         "train_tokens": sft[name]["train_tokens"] if name in sft else 0,
                         **{k: b.get(k) for k in ("first_step_accuracy", "self_check_accuracy", "no_after_wrong",
                                                  "no_after_right", "self_correction_rate", "backtrack_rate",
                                                  "right_after_wrong", "wrong_steps", "corrections", "backtracks")}})
    curves = [{"policy": name, **{k: r[k] for k in ("method", "budget", "accuracy", "tokens_per_problem")}}
              for name, res in benches.items() for r in res["summary"]]
    result = {"args": vars(args), "search": {k: v for k, v in search.items() if k != "config"},
              "data": {name: {"examples": len(ds), "kinds": dict(Counter(ds["kind"])), "tokens_per_epoch":
                              per_epoch[name], "epochs": epochs[name]} for name, ds in arms.items()},
              "sft": sft, "greedy": rows_out, "curves": curves,
              "goals": {"traces_minus_clean": evals["traces"]["accuracy"] - evals["clean"]["accuracy"],
                        "self_correction_rate": evals["traces"]["behaviour"].get("self_correction_rate")}}
    write_json(out / "long_cot.json", result)
    md = ["# Long chains of thought vs clean solutions (arith)", "",
          format_table(rows_out, list(rows_out[0]), markdown=True), "",
          format_table(curves, ["policy", "method", "budget", "tokens_per_problem", "accuracy"], markdown=True), "",
          "![curves](long_cot.png)"]
    atomic_write_text(out / "long_cot.md", "\n".join(md) + "\n")
    plot(curves, out / "long_cot.png")
    print("\n".join(md[:5]))
    print(json.dumps(result["data"], indent=1), json.dumps(result["goals"]))


def plot(curves: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from roadmap.core.io import save_figure

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for key in dict.fromkeys((c["policy"], c["method"]) for c in curves):
        pts = sorted((c["tokens_per_problem"], c["accuracy"]) for c in curves if (c["policy"], c["method"]) == key)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=f"{key[0]}: {key[1]}",
                linestyle="-" if key[0] == "traces" else "--")
    ax.set_xscale("log")
    ax.set_xlabel("generated tokens per problem")
    ax.set_ylabel("accuracy")
    ax.set_title("arith: sequential (budget forcing) vs parallel (majority) at matched tokens")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)


if __name__ == "__main__":
    main()
