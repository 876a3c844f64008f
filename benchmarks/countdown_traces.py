"""How often a symbolic DFS trace (roadmap.core.tasks.countdown_traces.search_trace) reaches the target within a
length cap, per heuristic, and the solver's time on unreachable 5-number targets (issue 30).

    python benchmarks/countdown_traces.py [--n 200] [--seed 0]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from roadmap.core.tasks import get_task  # noqa: E402
from roadmap.core.tasks.countdown_solver import _solvable, state_value  # noqa: E402
from roadmap.core.tasks.countdown_traces import search_trace  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    task = get_task("countdown")
    problems = task.problems("test", n=args.n, seed=args.seed)
    print(f"{len(problems)} test problems of the default level (seed {args.seed})")
    print("| cap (chars) | sum heuristic | mult heuristic |\n|---|---|---|")
    for cap in (1024, 2048, 4096, 8192):
        rates = []
        for h in ("sum", "mult"):
            solved = 0
            for i, p in enumerate(problems):
                nums, target = task.parse_question(p.question)
                tr = search_trace(nums, target, seed=args.seed + i, max_chars=cap, heuristic=h)
                solved += tr.solved
            rates.append(f"{solved / len(problems):.1%}")
        print(f"| {cap:,} | {rates[0]} | {rates[1]} |")
    rng, worst = random.Random(args.seed), 0.0
    for _ in range(20):
        _solvable.cache_clear()
        nums = tuple(sorted(rng.randint(1, 99) for _ in range(5)))
        t0 = time.perf_counter()
        state_value(nums, -1)  # results are never negative: no solution, so the whole tree is searched
        worst = max(worst, time.perf_counter() - t0)
    print(f"solver: slowest of 20 unreachable 5-number targets, cold cache: {worst:.3f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
