"""Peak CPU memory of scoring B x T tokens on a 152k-vocabulary stand-in: full logits against chunked.

Two readouts build per-token log-probabilities from a causal LM's logits: ``HFPolicy.token_logprobs``
(log pi of continuations) and the likelihood PRM readout ``rewards.prm.token_logits``. The old code
of both ran ``model(...).logits.float()`` and ``log_softmax`` over it: a [B, T, V] fp32 tensor and its
copy, about 37 GiB at 64 x 512 tokens x Qwen2's 151,936 tokens. Cases:

- ``policy/full``: the old ``token_logprobs`` formula (kept here only, to measure "before");
- ``policy/now``: ``HFPolicy.token_logprobs`` as it is on this branch (the LM head in fp32 chunks);
- ``prm/full``: the old likelihood readout formula;
- ``prm/now``: ``rewards.prm.token_logits(model, "likelihood", ...)`` as it is on this branch.

Each case runs in a fresh subprocess; its peak is ``resource.getrusage(RUSAGE_SELF).ru_maxrss``
after the readout minus the same figure just before it (model loaded, inputs built, a short
warm-up done), so the delta is what the readout itself added. Cases whose full logits cannot fit
in this machine's available memory are run at smaller batches and extrapolated linearly in the
batch size (the logits scale with B x T); the report marks them.

    python benchmarks/logit_memory.py --out benchmarks/results/logit_memory
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

VOCAB = 151_936
CASES = ("policy/full", "policy/now", "prm/full", "prm/now")


def _maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _available_mib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024
    return float("inf")


def _inputs(policy, batch: int, seq: int):
    """``batch`` (prefix, continuation) texts of about ``seq`` tokens, and their left-padded ids."""
    from policy_init.standins import default_corpus

    tok = policy.tokenizer
    ids = tok(" ".join(default_corpus()[:200]), add_special_tokens=False)["input_ids"]
    conts = [tok.decode(ids[i * 97 : i * 97 + seq - 4]) for i in range(batch)]
    prefixes = ["Question: "] * batch
    seqs = [policy.encode_prefix(p) + policy.encode_continuation(c) for p, c in zip(prefixes, conts)]
    return prefixes, conts, policy._left_pad(seqs)


def _cap_memory(budget_mib: float) -> None:
    """Let this process map at most ``budget_mib`` more: past it an allocation fails here instead
    of the kernel's OOM killer picking a process (on a shared machine, maybe someone else's)."""
    status = Path("/proc/self/status").read_text()
    vm_kib = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmSize:"))
    limit = int((vm_kib * 1024) + budget_mib * 2**20)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def child(folder: str, case: str, batch: int, seq: int, budget_mib: float) -> dict:
    """Run one case in this process and return its memory figures."""
    import torch

    from roadmap.core import HFPolicy

    torch.set_num_threads(1)
    policy = HFPolicy.from_pretrained(folder, batch_size=batch, prefix_cache_tokens=0)
    model = policy.model
    model.verifier_scale, model.verifier_bias = torch.tensor(1.0), torch.tensor(0.0)
    prefixes, conts, (ids, mask, pos) = _inputs(policy, batch, seq)

    def run(prefixes, conts, ids, mask, pos):
        with torch.inference_mode():
            if case == "policy/full":
                logits = model(input_ids=ids, attention_mask=mask, position_ids=pos).logits.float()
                return torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, ids[:, 1:, None]).squeeze(-1)
            if case == "policy/now":
                return policy.token_logprobs(prefixes, conts)
            if case == "prm/full":
                out = model(input_ids=ids, attention_mask=mask)
                logp = torch.log_softmax(out.logits[:, :-1].float(), -1).gather(-1, ids[:, 1:, None])[..., 0]
                z = model.verifier_scale * logp + model.verifier_bias
                return torch.cat([torch.zeros_like(z[:, :1]), z], dim=1)
            from rewards.prm import token_logits

            return token_logits(model, "likelihood", ids, mask)

    _cap_memory(budget_mib)
    warm = ids[:1, -8:]
    run(prefixes[:1], [c[:20] for c in conts[:1]], warm, torch.ones_like(warm), torch.arange(8)[None])
    before = _maxrss_mib()
    run(prefixes, conts, ids, mask, pos)
    peak = _maxrss_mib()
    return {"case": case, "batch": batch, "seq": int(ids.shape[1]), "tokens": int(mask.sum()),
            "baseline_mib": round(before, 1), "peak_mib": round(peak, 1), "delta_mib": round(peak - before, 1)}


def _run_case(folder: str, case: str, batch: int, seq: int) -> dict:
    budget = 0.6 * _available_mib()
    cmd = [sys.executable, __file__, "--child", folder, case, str(batch), str(seq), str(budget)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode and ("memory" in out.stderr.lower() or "alloc" in out.stderr.lower()):
        return {"case": case, "batch": batch, "over_budget_mib": round(budget)}
    if out.returncode:
        raise RuntimeError(f"case {case} at batch {batch} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--small-batches", default="1,2,4", help="batches for the fit when full logits do not fit")
    ap.add_argument("--out", default="benchmarks/results/logit_memory")
    ap.add_argument("--child", nargs=5, metavar=("FOLDER", "CASE", "BATCH", "SEQ", "BUDGET"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        folder, case, batch, seq, budget = args.child
        print(json.dumps(child(folder, case, int(batch), int(seq), float(budget))))
        return

    from policy_init.standins import StandinConfig, build_standin
    from roadmap.core.io import format_table, write_json

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = str(build_standin("qwen2", Path(tmp) / "qwen2-152k", StandinConfig(model_vocab_size=VOCAB)))
        full_mib = 2 * args.batch * args.seq * VOCAB * 4 / 2**20  # logits and their log_softmax
        for case in CASES:
            row = (_run_case(folder, case, args.batch, args.seq)
                   if not (case.endswith("/full") and full_mib > 0.6 * _available_mib()) else None)
            if row is not None and "over_budget_mib" not in row:
                rows.append(row)
                continue
            small = [_run_case(folder, case, b, args.seq) for b in map(int, args.small_batches.split(","))]
            (b0, d0), (b1, d1) = (small[0]["batch"], small[0]["delta_mib"]), (small[-1]["batch"], small[-1]["delta_mib"])
            rows += small
            why = f"over a {row['over_budget_mib']} MiB cap at full size; " if row else ""
            rows.append({"case": case, "batch": args.batch, "seq": small[-1]["seq"], "tokens": None,
                         "baseline_mib": None, "peak_mib": None,
                         "delta_mib": round(d0 + (d1 - d0) / (b1 - b0) * (args.batch - b0), 1),
                         "note": why + "extrapolated from the small batches"})
    out = Path(args.out)
    write_json(out / "logit_memory.json", {"vocab": VOCAB, "batch": args.batch, "seq": args.seq, "rows": rows})
    for r in rows:
        r.setdefault("note", "")
    table = format_table(rows, ["case", "batch", "seq", "tokens", "baseline_mib", "peak_mib", "delta_mib", "note"],
                         markdown=True)
    (out / "logit_memory.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
