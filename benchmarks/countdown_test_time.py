"""Sequential against parallel test-time compute on countdown (issue 30, item 3, last part): one long greedy trace
of a model trained on search traces against N short samples of a model trained on optimal paths, each checked by
the task's exact checker, at equal generated tokens.

    python benchmarks/countdown_test_time.py --run W [--arms path,trace] [--samples 16] [--temperature 0.7]

``W`` is a ``benchmarks/countdown_sft.py`` folder; its level, length cap, test problems and test seed are reused.
A countdown answer can be checked from the prompt alone (the numbers and the target), so checking candidates at
test time needs no reference: the exact checker is a legitimate outcome verifier here, and "best of N by it"
(the first of N samples it accepts) is the best any outcome reward could do with those samples. Per arm (its
policy ``W/sft_<arm>``, or ``W/star/iter_1/policy`` for ``star``) it samples ``--samples`` solutions of each test
problem at ``--temperature`` and writes ``W/test_time/<arm>.jsonl`` (a rerun reuses it); then
``W/test_time.json``/``.md``/``.png``: per arm and N (powers of 2) the share of problems solved by checking the
first N samples, with its 95% interval and the mean generated tokens of those N samples, beside each arm's greedy
point from ``W/eval_<arm>.json`` (one sample, sequential compute).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from headline import commit_id  # noqa: E402

#: sequences sampled together (a tiny model's per-token overhead dominates at 64)
BATCH = 256


def policy_dir(run: Path, arm: str) -> Path:
    return run / "star" / "iter_1" / "policy" if arm == "star" else run / f"sft_{arm}"


def sample_arm(run: Path, arm: str, task, problems, samples: int, temperature: float, max_new_tokens: int,
               seed: int) -> list[dict]:
    """Per problem: each sample's exact verdict, generated tokens and whether a length limit cut it, stored in
    ``W/test_time/<arm>.jsonl`` and reused by a rerun with the same settings (``roadmap.app.sos.checked_samples``)."""
    from roadmap.app.sos import checked_samples

    return checked_samples(policy_dir(run, arm), task, problems, samples, temperature, max_new_tokens, seed,
                           run / "test_time" / f"{arm}.jsonl", batch=BATCH)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True, type=Path, help="a benchmarks/countdown_sft.py folder")
    ap.add_argument("--arms", default="path,trace", help="comma-separated: path, trace, star")
    ap.add_argument("--samples", type=int, default=16, help="samples per problem (the largest N)")
    ap.add_argument("--temperature", type=float, default=0.7)
    ap.add_argument("--seed", type=int, default=1, help="sampling seed")
    args = ap.parse_args(argv)
    summary_path = args.run / "countdown_sft.json"
    if not summary_path.exists():
        ap.error(f"--run {args.run} holds no countdown_sft.json; run benchmarks/countdown_sft.py --out {args.run} first")
    if args.samples < 1 or args.temperature <= 0:
        ap.error(f"--samples {args.samples} must be at least 1 and --temperature {args.temperature} above 0")
    arms = [a for a in args.arms.split(",") if a]
    missing = [a for a in arms if not (policy_dir(args.run, a) / "config.json").exists()]
    if missing:
        ap.error(f"--arms {args.arms}: no trained policy for {missing} in {args.run}")
    from roadmap.app.sos import checked_curve
    from roadmap.core.tasks import get_task

    run = json.loads(summary_path.read_text())
    cap = run["size"]["trace_max_chars"]
    task = get_task("countdown", min_numbers=run["level"], max_numbers=run["level"], trace_max_chars=cap)
    problems = task.problems("test", n=run["size"]["eval_n"], seed=run["test_seed"])
    result = {"run": str(args.run), "level": run["level"], "test_seed": run["test_seed"], "samples": args.samples,
              "temperature": args.temperature, "seed": args.seed, "arms": {}, "commit": commit_id()}
    for arm in arms:
        rows = sample_arm(args.run, arm, task, problems, args.samples, args.temperature, cap + 16, args.seed)
        greedy = json.loads((args.run / f"eval_{arm}.json").read_text())
        result["arms"][arm] = {"greedy": {"accuracy": greedy["accuracy"], "ci95": greedy["ci95"],
                                          "tokens_per_problem": greedy["generated_tokens"] / greedy["n"]},
                               "checked": checked_curve(rows, args.samples)}
    (args.run / "test_time.json").write_text(json.dumps(result, indent=1))
    lines = [f"Countdown level {result['level']}, {len(problems)} test problems (seed {result['test_seed']}); "
             f"samples at temperature {args.temperature}, each checked by the exact checker", "",
             "| arm | compute | accuracy | 95% CI | generated tokens per problem |", "|---|---|---|---|---|"]
    for arm, r in result["arms"].items():
        g = r["greedy"]
        lines.append(f"| {arm} | greedy (one sample) | {g['accuracy']:.1%} | {g['ci95'][0]:.1%}-{g['ci95'][1]:.1%} | "
                     f"{g['tokens_per_problem']:.0f} |")
        lines += [f"| {arm} | first verified of {c['N']} | {c['accuracy']:.1%} | {c['ci95'][0]:.1%}-{c['ci95'][1]:.1%} "
                  f"| {c['tokens_per_problem']:.0f} |" for c in r["checked"]]
    (args.run / "test_time.md").write_text("\n".join(lines) + "\n")
    plot(result, args.run / "test_time.png")
    print("\n".join(lines))
    return 0


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from roadmap.core.io import save_figure

    fig, ax = plt.subplots(figsize=(6, 4))
    for arm, r in result["arms"].items():
        xs = [c["tokens_per_problem"] for c in r["checked"]]
        line, = ax.plot(xs, [c["accuracy"] for c in r["checked"]], marker="o", label=f"{arm}: first verified of N")
        ax.scatter([r["greedy"]["tokens_per_problem"]], [r["greedy"]["accuracy"]], marker="*", s=150,
                   color=line.get_color(), label=f"{arm}: greedy")
    ax.set_xscale("log")
    ax.set_xlabel("generated tokens per problem")
    ax.set_ylabel("test problems solved")
    ax.set_title(f"countdown level {result['level']}: sequential vs parallel compute")
    ax.legend(fontsize=8)
    save_figure(fig, path)


if __name__ == "__main__":
    raise SystemExit(main())
