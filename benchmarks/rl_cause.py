"""Why online RL lowered greedy accuracy here: each suspect of issue 14, measured on one policy.

    python benchmarks/rl_cause.py --policy P [--out benchmarks/results/rl_cause.json]

Measures, on 16 training prompts x 8 samples at temperature 1:

1. learner vs sampler log-probabilities of the sampled tokens: the decode loop's sum
   (``HFPolicy.sample``) against the learner's full forward (``next_token_logprobs``), and TRL's
   own per-token log-probabilities of its own samples against ours on the same ids;
2. prompt encoding in sampling (HFPolicy), training (TRL) and evaluation (``roadmap eval``): BOS,
   padding side, position ids;
3. EOS and truncation: share of samples that end with EOS, and how TRL's completion mask treats them;
4. temperature in sampling vs in the loss;
5. advantages: sign agreement with reward minus group mean;
6. the temperature-1 vs greedy gap: pass rate at T in {1, 0.7, 0.5, 0.3} beside greedy.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--policy", required=True)
    ap.add_argument("--out", default="benchmarks/results/rl_cause.json")
    ap.add_argument("--prompts", type=int, default=16)
    ap.add_argument("--group", type=int, default=8)
    ap.add_argument("--n-temp", type=int, default=200, help="problems for the temperature sweep")
    args = ap.parse_args()

    import torch

    from learning.rl import RLConfig, rl_rewards
    from learning.rl_losses import group_advantages
    from learning.rl_roles import Sampler, _completion_logps
    from roadmap.core import HFPolicy
    from roadmap.core.tasks import get_task

    torch.manual_seed(0)
    task = get_task("arith")
    policy = HFPolicy.from_pretrained(args.policy, prefix_cache_tokens=0, batch_size=512)
    tok = policy.tokenizer
    problems = task.problems("train", n=args.prompts, seed=123)
    cfg = RLConfig(lengths=RLConfig().lengths)
    rewards, weights = rl_rewards(task, cfg)
    sampler = Sampler(policy, task, rewards, weights, args.group, 1.0, cfg.lengths.rl_completion_tokens)
    groups = sampler.rollouts(problems, seed=0)
    out: dict = {"policy": args.policy}

    # 1. learner (train mode, full forward) vs the decode loop's sum
    model = policy.model
    model.train()
    seqs, plens, dec = [], [], []
    for g in groups:
        for ids, lp in zip(g.completion_ids, g.sampler_logprob):
            seqs.append(g.prompt_ids + ids)
            plens.append(len(g.prompt_ids))
            dec.append(lp)
    with torch.no_grad():
        lp, m = _completion_logps(model, plens, seqs, policy.pad_id, temperature=1.0, fp32_head=True,
                                  device=policy.device)
    learner_sum = (lp * m).sum(1).double()
    diff = (learner_sum - torch.tensor(dec, dtype=torch.float64)).abs()
    beh = torch.zeros_like(lp)
    for r, b in enumerate([b for g in groups for b in g.behaviour_logps]):
        beh[r, : len(b)] = torch.tensor(b)
    out["log_ratio_sequence_max"] = float(diff.max())
    out["log_ratio_token_max_sampler_forward_vs_learner"] = float(((lp - beh) * m).abs().max())
    model.eval()

    # 2. encoding: what each path feeds the model for the same prompt
    prompt = task.prompt(problems[0])
    trl_ids = tok(text=[prompt])["input_ids"][0]
    out["encoding"] = {"hf_policy_prompt_ids": policy.encode_prefix(prompt), "trl_prompt_ids": trl_ids,
                       "bos_in_both": trl_ids[0] == tok.bos_token_id == policy.encode_prefix(prompt)[0],
                       "tokenizer_padding_side": tok.padding_side}
    # position ids: a left-padded row without position ids (TRL's training forward) vs with them
    ids = torch.tensor([[policy.pad_id] * 5 + seqs[0]])
    mask = torch.tensor([[0] * 5 + [1] * len(seqs[0])])
    with torch.no_grad():
        a = torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits[0, 5:-1].float(), -1)
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        b = torch.log_softmax(model(input_ids=ids, attention_mask=mask, position_ids=pos).logits[0, 5:-1].float(), -1)
    out["left_pad_without_position_ids_max_abs_logprob_diff"] = float((a - b).abs().max())

    # 3. EOS and truncation
    fin = [f for g in groups for f in g.finished]
    out["finished_with_eos"] = sum(fin) / len(fin)
    out["truncated"] = 1 - out["finished_with_eos"]

    # 5. advantages
    r = torch.tensor([g.rewards for g in groups])
    adv, _ = group_advantages(r, "group")
    centred = r - r.mean(1, keepdim=True)
    out["advantage_sign_agrees"] = bool(((adv * centred) >= 0).all())
    out["pass_rate_T1"] = float(torch.tensor([g.correct for g in groups]).mean())
    out["zero_variance_groups"] = int(((r.max(1).values - r.min(1).values) == 0).sum())

    # 6. temperature sweep vs greedy on held-out problems
    test = task.problems("test", n=args.n_temp, seed=0)
    prompts = [task.prompt(p) for p in test]
    sweep = {}
    for t in (0.0, 0.3, 0.5, 0.7, 1.0):
        res = policy.sample(prompts, n=1 if t == 0 else 4, temperature=t, seed=1, max_new_tokens=96)
        sweep[str(t)] = sum(task.is_correct(p, c.text) for p, cs in zip(test, res) for c in cs) / sum(len(cs) for cs in res)
    out["pass_rate_by_temperature"] = sweep
    # per-token view of the gap: how peaked is the policy at its own greedy tokens?
    res = policy.sample(prompts[:64], n=1, temperature=0.0, seed=1, max_new_tokens=96)
    lps = policy.token_logprobs(prompts[:64], [cs[0].text for cs in res])
    flat = [x for row in lps for x in row]
    out["greedy_token_prob_quantiles"] = {q: float(torch.tensor(flat).exp().quantile(q)) for q in (0.01, 0.05, 0.1, 0.5)}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1))
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
