"""Why online RL does not raise greedy accuracy here: two probes of issue 14.

    # how many rewarded samples reach the right answer through a wrong step (ground-truth step check)
    python benchmarks/rl_gain_probe.py audit --policy P --temperature 1.0
    # the RL learner (learning.rl_roles.RLLearner, ScaleRL preset) fed the *reference* solutions as the
    # rewarded sample of each group, beside a fixed wrong one: does the learner itself raise accuracy?
    python benchmarks/rl_gain_probe.py reference --policy P --lr 3e-5 --negative-weight 0

Both print one JSON line. ``reference`` evaluates greedy accuracy on 500 held-out problems every 20 of
its 60 steps of 16 prompts.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def cmd_audit(args) -> None:
    from learning.rl import RLConfig, rl_rewards
    from learning.rl_roles import Sampler
    from roadmap.core import HFPolicy
    from roadmap.core.tasks import get_task

    task = get_task("arith")
    policy = HFPolicy.from_pretrained(args.policy, batch_size=64)
    rewards, weights = rl_rewards(task, RLConfig())
    sampler = Sampler(policy, task, rewards, weights, group_size=8, temperature=args.temperature, max_new_tokens=64)
    problems = task.problems("train", n=args.problems, seed=5)
    groups = sampler.rollouts(problems, seed=0)
    rewarded = clean = 0
    for p, g in zip(problems, groups):
        for j, ids in enumerate(g.completion_ids):
            if g.rewards[j] > 0:
                labels = task.step_labels(p, policy.tokenizer.decode(ids, skip_special_tokens=True))
                rewarded += 1
                clean += all(labels)
    print(json.dumps({"temperature": args.temperature, "samples": len(problems) * 8, "rewarded": rewarded,
                      "every_step_right": clean, "wrong_step_share": 1 - clean / max(1, rewarded)}))


def cmd_reference(args) -> None:
    import torch

    from learning.rl import scalerl_config
    from learning.rl_loop import greedy_accuracy
    from learning.rl_roles import RLLearner, RolloutGroup, _completion_logps
    from roadmap.core.lengths import Lengths
    from roadmap.core.precision import load_trainable_lm
    from roadmap.core.tasks import get_task

    torch.set_num_threads(2)
    torch.manual_seed(0)
    task = get_task("arith")
    tok, model, _ = load_trainable_lm(args.policy)
    cfg = scalerl_config(learning_rate=args.lr, warmup_steps=10, max_steps=args.steps,
                         negative_weight=args.negative_weight, lengths=Lengths(rl_completion_tokens=64))
    learner = RLLearner(model, tok.pad_token_id, cfg)
    problems = task.problems("train", n=16 * args.steps, seed=3)
    held_out = task.problems("test", n=500, seed=0)
    curve = [greedy_accuracy(model, tok, task, held_out, 64)]
    for step in range(args.steps):
        groups = []
        for p in problems[step * 16 : (step + 1) * 16]:
            prompt = task.prompt(p)
            pids = tok(prompt).input_ids
            right = tok(prompt + task.reference_solution(p)).input_ids[len(pids):] + [tok.eos_token_id]
            wrong = tok(prompt + "1+1=2\nAnswer: 0").input_ids[len(pids):] + [tok.eos_token_id]
            with torch.no_grad():
                blp, _ = _completion_logps(model, [len(pids)] * 2, [pids + right, pids + wrong], tok.pad_token_id,
                                           temperature=1.0, fp32_head=True, device="cpu")
            groups.append(RolloutGroup(
                problem_id=p.id, prompt=prompt, prompt_ids=pids, completion_ids=[right, wrong],
                behaviour_logps=[blp[0, : len(right)].tolist(), blp[1, : len(wrong)].tolist()],
                sampler_logprob=[0.0, 0.0], rewards=[1.0, 0.0], correct=[1.0, 0.0], finished=[True, True],
                version=learner.version, exact=[True, True]))
        learner.step(groups)
        if (step + 1) % 20 == 0:
            curve.append(greedy_accuracy(model, tok, task, held_out, 64))
    print(json.dumps({"lr": args.lr, "negative_weight": args.negative_weight, "greedy_every_20_steps": curve}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("audit")
    a.add_argument("--policy", required=True)
    a.add_argument("--temperature", type=float, default=1.0)
    a.add_argument("--problems", type=int, default=64)
    r = sub.add_parser("reference")
    r.add_argument("--policy", required=True)
    r.add_argument("--lr", type=float, default=3e-5)
    r.add_argument("--negative-weight", type=float, default=1.0)
    r.add_argument("--steps", type=int, default=60)
    args = ap.parse_args()
    {"audit": cmd_audit, "reference": cmd_reference}[args.cmd](args)


if __name__ == "__main__":
    main()
