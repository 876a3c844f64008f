"""The test-time grid with a perfect process scorer: how much search itself can give on arith.

    python benchmarks/test_time_oracle.py --policy /tmp/bench/weak/policy --out /tmp/bench/test_time_oracle

Same harness as `roadmap bench test-time`, but the scorer is the arith ground-truth step checker
(1.0 while every step so far is right, else 0.0). It is a diagnostic upper bound that separates
the search algorithms from the quality of a learned PRM; it uses ground truth and is not a
method one could deploy.
"""

from __future__ import annotations

import argparse

from roadmap.core import StepScorer


class ArithStepOracle(StepScorer):
    """``StepScorer``: 1.0 when every step of the partial solution is right (arith ground truth)."""

    def __init__(self, task) -> None:
        self.task = task

    def score(self, problem, partial_solutions):
        return [1.0 if text.strip() and all(self.task.step_labels(problem, text)) else 0.0
                for text in partial_solutions]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--policy", required=True)
    ap.add_argument("--out", default="/tmp/bench/test_time_oracle")
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--budgets", default="1,4,16,64")
    ap.add_argument("--seeds", default="0")
    args = ap.parse_args()

    from roadmap.app.bench import TestTimeConfig, bench_test_time
    from roadmap.core import HFPolicy
    from roadmap.core.tasks import ArithTask

    task = ArithTask()
    config = TestTimeConfig(budgets=tuple(int(b) for b in args.budgets.split(",")),
                            seeds=tuple(int(s) for s in args.seeds.split(",")))
    policy = HFPolicy.from_pretrained(args.policy, batch_size=256)
    result = bench_test_time(policy, task, task.problems("test", n=args.n, seed=0), args.out, config,
                             scorer=ArithStepOracle(task))
    print(open(f"{args.out}/test_time.md").read())
    return result


if __name__ == "__main__":
    main()
