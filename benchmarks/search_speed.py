"""Prefix reuse and speed of tree search on arith, against recomputing and against plain sampling.

- Prefix reuse: prefill tokens computed divided by the unique tokens in the trees (prompt plus
  every node's step), for beam search and MCTS with HFPolicy's prefix cache, and for the same
  searches with the cache off (each call still prefills a shared prefix once, but nothing is
  kept between calls: the baseline that recomputes every node's prefix).
- Speed: beam search (N=16, M=4) on 200 problems against sampling 16 complete solutions per
  problem, same policy, same run.

    python benchmarks/search_speed.py --policy DIR --prm DIR

Writes ``--out``/search_speed.json and .md.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from roadmap.core import StepScorer


class ConstantScorer(StepScorer):
    """Scores every partial solution 0.5: search cost without any reward model."""

    def score(self, problem, texts):
        return [0.5] * len(texts)


def unique_tree_tokens(policy, trees) -> int:
    total = 0
    for tree in trees:
        total += len(policy.encode_prefix(tree.prompt))
        total += sum(len(policy.encode_continuation(n.step)) for n in tree.nodes[1:])
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--policy", required=True)
    ap.add_argument("--prm", default=None, help="PRM folder; without it a constant scorer is used")
    ap.add_argument("--out", default="benchmarks/results/search")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--n-reuse", type=int, default=50, help="problems for the prefix-reuse ratios")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    from rewards import PRMScorer, ProcessRewardModel
    from roadmap.core import HFPolicy
    from roadmap.core.io import atomic_write_text, format_table, write_json
    from roadmap.core.tasks import ArithTask
    from search import BeamConfig, BestOfNConfig, MCTSConfig, beam_search, mcts, sample_candidates

    task = ArithTask()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    scorer = (PRMScorer(ProcessRewardModel.from_pretrained(args.prm, batch_size=512), task, "min")
              if args.prm else ConstantScorer())
    problems = task.problems("test", n=args.n, seed=args.seed)

    reuse = []
    for cache_tokens, label in ((400_000, "prefix cache"), (0, "recompute (no cache)")):
        for name, run in (
            ("beam N=16 M=4", lambda pol, ps: beam_search(pol, task, ps, scorer, BeamConfig(n=16, width=4,
                                                                                           seed=args.seed))),
            ("mcts 16 sims k=4", lambda pol, ps: mcts(pol, task, ps, scorer, MCTSConfig(simulations=16, k=4,
                                                                                       seed=args.seed))),
        ):
            policy = HFPolicy.from_pretrained(args.policy, batch_size=256, prefix_cache_tokens=cache_tokens)
            t0 = time.perf_counter()
            results = run(policy, problems[: args.n_reuse])
            wall = time.perf_counter() - t0
            unique = unique_tree_tokens(policy, [r.tree for r in results])
            u = policy.usage
            reuse.append({"search": name, "policy": label, "prefill_computed": u.prefill_tokens,
                          "prefill_from_cache": u.cached_prefill_tokens, "unique_tree_tokens": unique,
                          "ratio": u.prefill_tokens / unique, "generated": u.generated_tokens, "seconds": wall})

    policy = HFPolicy.from_pretrained(args.policy, batch_size=256)
    t0 = time.perf_counter()
    sample_candidates(policy, task, problems, BestOfNConfig(n=16, seed=args.seed))
    t_sample = time.perf_counter() - t0
    sample_usage = policy.usage.copy()
    policy = HFPolicy.from_pretrained(args.policy, batch_size=256)
    t0 = time.perf_counter()
    beam_search(policy, task, problems, scorer, BeamConfig(n=16, width=4, seed=args.seed))
    t_beam = time.perf_counter() - t0
    speed = [
        {"run": f"sample 16 solutions x {len(problems)}", "seconds": t_sample,
         "generated": sample_usage.generated_tokens, "ratio_to_sampling": 1.0},
        {"run": f"beam N=16 M=4 x {len(problems)} ({'PRM' if args.prm else 'constant'} scorer)", "seconds": t_beam,
         "generated": policy.usage.generated_tokens, "ratio_to_sampling": t_beam / t_sample},
    ]
    write_json(out / "search_speed.json", {"args": vars(args), "reuse": reuse, "speed": speed})
    md = "### Prefill computed / unique tree tokens\n\n" + format_table(
        reuse, ["search", "policy", "prefill_computed", "prefill_from_cache", "unique_tree_tokens", "ratio",
                "generated", "seconds"], markdown=True)
    md += "\n\n### Beam search against plain sampling\n\n" + format_table(
        speed, ["run", "seconds", "generated", "ratio_to_sampling"], markdown=True)
    atomic_write_text(out / "search_speed.md", md + "\n")
    print(md)


if __name__ == "__main__":
    main()
