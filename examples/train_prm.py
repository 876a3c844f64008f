"""Train a process reward model on arith from automatic step labels, then check it against ground truth.

    python examples/train_prm.py --policy quickstart/policy --out runs/prm [--completer STRONGER/policy]

1. The warm-started policy samples solutions of training problems.
2. Their steps are labelled by first-error binary search over rollouts of the completer (the
   policy itself, or a stronger one, as Math-Shepherd allows; OmegaPRM-style); no ground truth
   is used, only the final-answer verifier.
3. A PRM, initialised from the completer's weights, is trained with BCE on the step labels; its
   step score is the calibrated likelihood of the step's tokens (the ``likelihood`` readout).
4. On held-out problems the PRM's step scores are compared with the arith step checker
   (ROC-AUC), and best-of-N by the PRM is compared with majority vote.

Defaults run in about ten minutes on two CPU cores.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--policy", required=True, help="warm-started policy folder (e.g. from `roadmap quickstart`)")
    ap.add_argument("--out", default="runs/prm")
    ap.add_argument("--problems", type=int, default=2000, help="training problems whose samples get labelled")
    ap.add_argument("--samples", type=int, default=4, help="solutions per training problem")
    ap.add_argument("--rollouts", type=int, default=4, help="rollouts per probed step prefix")
    ap.add_argument("--completer", default=None, help="policy that rolls out and starts the PRM (default: --policy)")
    ap.add_argument("--minutes", type=float, default=None,
                    help="optional wall-time cap of PRM training (its budget is 5 epochs); a cut-short run is marked")
    ap.add_argument("--test", type=int, default=200, help="held-out problems for the check")
    ap.add_argument("--n", type=int, default=8, help="samples per held-out problem for best-of-N")
    args = ap.parse_args()

    from rewards import (
        LabelConfig,
        PRMScorer,
        ProcessRewardModel,
        RewardModelConfig,
        label_solutions,
        rollout_summary,
        sample_solutions,
        save_labels,
        train_prm,
    )
    from roadmap.core import HFPolicy
    from roadmap.core.stats import roc_auc
    from roadmap.core.tasks import ArithTask
    from search import majority_vote
    from search.best_of_n import best_answer

    out = Path(args.out)
    task = ArithTask()
    policy = HFPolicy.from_pretrained(args.policy, batch_size=256)
    init = args.completer or args.policy
    completer = HFPolicy.from_pretrained(init, batch_size=256) if args.completer else policy

    train = task.problems("train", n=args.problems, seed=1)
    solutions = sample_solutions(policy, task, train, args.samples, seed=1)
    labels = label_solutions(completer, task, train, solutions, LabelConfig(method="binary", rollouts=args.rollouts))
    save_labels(labels, out / "labels")
    print("labels:", rollout_summary(labels))

    result = train_prm(labels, init, RewardModelConfig(output_dir=str(out / "prm"), labels="hard", epochs=5,
                                                       max_minutes=args.minutes, readout="likelihood"))
    print(f"PRM: {result['steps']} steps in {result['wall_seconds']:.0f}s, eval AUC on held-out labels "
          f"{result['eval_auc']:.3f}")

    prm = ProcessRewardModel.from_pretrained(out / "prm", batch_size=256)
    test = task.problems("test", n=args.test, seed=0)
    cands = sample_solutions(policy, task, test, args.n, seed=2)
    prompts = [task.prompt(p) for p, row in zip(test, cands) for _ in row]
    flat = prm.step_scores(prompts, [s for row in cands for s in row])
    truth = [y for p, row in zip(test, cands) for s in row for y in task.step_labels(p, s)]
    print(f"step ROC-AUC against the arith step checker: {roc_auc([x for s in flat for x in s], truth):.3f}")

    scorer = PRMScorer(prm, task, "min")
    scores = scorer.score_batch(test, cands)
    by_prm = [best_answer([task.extract_answer(s) for s in row], sc) for row, sc in zip(cands, scores)]
    prm_acc = sum(a is not None and task.answers_match(a, p.answer) for a, p in zip(by_prm, test)) / len(test)
    maj = [majority_vote([task.extract_answer(s) for s in row]) for row in cands]
    maj_acc = sum(a is not None and task.answers_match(a, p.answer) for a, p in zip(maj, test)) / len(test)
    print(f"best-of-{args.n}: PRM (min) {prm_acc:.3f}, majority vote {maj_acc:.3f}")


if __name__ == "__main__":
    main()
