"""HFPolicy sampling throughput against transformers' own ``generate()``, same model, same run.

For each batch size B in {1, 16, 64}, both samplers draw complete arith solutions (stopping
at EOS, temperature 1) for the same prompts, several rounds each, interleaved so that machine
noise hits both alike. Throughput is generated tokens per second: for ``generate()`` the
tokens up to and including EOS in each row (the padding it computes after EOS is not counted).

    python benchmarks/sampling_throughput.py --policy ~/.cache/o1-roadmap/quickstart-*/policy
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from roadmap.core import HFPolicy
from roadmap.core.io import format_table, write_json
from roadmap.core.tasks import ArithTask


def generated_by_generate(out: torch.Tensor, prompt_len: int, eos_id: int) -> int:
    """Tokens generated per row up to and including the first EOS."""
    new = out[:, prompt_len:]
    total = 0
    for row in new.tolist():
        total += row.index(eos_id) + 1 if eos_id in row else len(row)
    return total


def run(policy_dir: str, batch_sizes=(1, 16, 64), rounds: int = 3, max_new_tokens: int = 96, seed: int = 0):
    policy = HFPolicy.from_pretrained(policy_dir, batch_size=max(batch_sizes))
    model, tok = policy.model, policy.tokenizer
    tok.padding_side = "left"
    task = ArithTask()
    rows = []
    for b in batch_sizes:
        # one prompt per row, as an evaluation would do; all prompts share one length class
        problems = task.problems("test", n=b * rounds, seed=seed)
        ours_tok = ours_t = ref_tok = ref_t = 0.0
        for r in range(rounds):
            prompts = [task.prompt(p) for p in problems[r * b : (r + 1) * b]]
            before = policy.usage.generated_tokens
            t0 = time.perf_counter()
            policy.sample(prompts, 1, max_new_tokens=max_new_tokens, temperature=1.0, seed=seed + r)
            ours_t += time.perf_counter() - t0
            ours_tok += policy.usage.generated_tokens - before

            enc = tok(prompts, return_tensors="pt", padding=True)
            torch.manual_seed(seed + r)
            t0 = time.perf_counter()
            with torch.inference_mode():
                out = model.generate(**enc, do_sample=True, temperature=1.0, top_k=0, top_p=1.0,
                                     max_new_tokens=max_new_tokens, pad_token_id=tok.pad_token_id)
            ref_t += time.perf_counter() - t0
            ref_tok += generated_by_generate(out, enc["input_ids"].shape[1], tok.eos_token_id)
        ours, ref = ours_tok / ours_t, ref_tok / ref_t
        rows.append({"batch": b, "hfpolicy_tok_s": ours, "generate_tok_s": ref, "ratio": ours / ref,
                     "hfpolicy_tokens": int(ours_tok), "generate_tokens": int(ref_tok)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default="benchmarks/out/sampling_throughput.json")
    args = parser.parse_args()
    rows = run(args.policy, rounds=args.rounds)
    print(format_table(rows, ["batch", "hfpolicy_tok_s", "generate_tok_s", "ratio", "hfpolicy_tokens",
                              "generate_tokens"], markdown=True))
    write_json(args.out, {"rows": rows, "torch_threads": torch.get_num_threads()})
    print(json.dumps({"written": args.out}))


if __name__ == "__main__":
    main()
