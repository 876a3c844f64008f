"""How much continued SFT the warm start takes: reference data of size N at learning rate LR, then greedy.

    python benchmarks/finetune_probe.py --policy /tmp/bench/weak/policy --n 633 --lr 3e-4 --epochs 2

Separates the effect of the data (self-generated vs reference) from that of its size and the
learning rate when expert iteration does not help. Prints greedy accuracy on 500 held-out problems.
"""

from __future__ import annotations

import argparse


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--policy", required=True)
    ap.add_argument("--n", type=int, default=633, help="reference solutions")
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--epochs", type=float, default=2.0)
    ap.add_argument("--out", default="/tmp/bench/finetune_probe")
    args = ap.parse_args()

    from policy_init.sft import SFTWarmStartConfig, sft_dataset, warm_start
    from roadmap.app.evaluate import evaluate
    from roadmap.core import HFPolicy
    from roadmap.core.tasks import ArithTask

    task = ArithTask()
    out = f"{args.out}/ref_{args.n}_{args.lr}_{args.epochs}"
    data = sft_dataset(task, n=args.n, seed=99).shuffle(seed=0)
    res = warm_start(args.policy, None, SFTWarmStartConfig(output_dir=out, learning_rate=args.lr, epochs=args.epochs,
                                                           warmup_fraction=0.05, logging_steps=10), train_dataset=data)
    report = evaluate(HFPolicy.from_pretrained(out, batch_size=256), task, task.problems("test", n=500), progress=False)
    print(f"n={args.n} lr={args.lr} epochs={args.epochs}: {res.steps} steps, greedy {report.accuracy:.3f}")


if __name__ == "__main__":
    main()
