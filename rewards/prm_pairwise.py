"""The within-problem pairwise term of reward-model training, and the batches it needs (issue 25).

A reward model made from the policy itself inherits the policy's beliefs: it ranks a confident wrong solution
above a right one of the same problem, which is exactly the choice selection and search make
(``docs/benchmarks/self_prm.md``). Step BCE alone does not target that choice; it mostly learns which problems
are easy. The pairwise term does: for every right and wrong solution of one problem in a batch, a
Bradley-Terry loss ``softplus(-(s_right - s_wrong))`` on the solutions' scores, where a solution's score is the
aggregate selection reads (the ``min`` step log score of a PRM, the ``last`` of an ORM). Its labels are final
answers only, so it needs no step checker.

For the pairs to meet, ``ProblemGroupedSampler`` orders the training rows problem by problem (problems
shuffled each epoch, rows inside a problem shuffled too), so a batch holds whole groups of one problem's
samples.
"""

from __future__ import annotations

import random

__all__ = ["ProblemGroupedSampler", "grouped_order", "solution_scores", "pairwise_loss"]


def grouped_order(keys: list[str], seed: int) -> list[int]:
    """Row indices with each problem's rows next to each other; problems, and rows within one, in an order
    drawn from ``seed``."""
    groups: dict[str, list[int]] = {}
    for i, k in enumerate(keys):
        groups.setdefault(k, []).append(i)
    rng = random.Random(seed)
    order = list(groups.values())
    rng.shuffle(order)
    out: list[int] = []
    for rows in order:
        rng.shuffle(rows)
        out.extend(rows)
    return out


class ProblemGroupedSampler:
    """A ``torch`` sampler over training rows that keeps each problem's rows together (``grouped_order``).

    Each epoch draws a new order from ``seed + epoch``; the Trainer's ``set_epoch`` picks the epoch, so a resumed
    run sees the same order as an uninterrupted one.
    """

    def __init__(self, keys: list[str], seed: int) -> None:
        self.keys, self.seed, self.epoch = list(keys), seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.keys)

    def __iter__(self):
        return iter(grouped_order(self.keys, self.seed + self.epoch))


def solution_scores(per_position, judged_at, how: str = "min"):
    """(score of each row, whether the row has one) from per-position scores and a mask of the judged positions.

    ``per_position`` is (rows, positions); ``judged_at`` is a bool mask of the step ends. ``how`` is ``"min"``
    (the lowest step score: a PRM's selection) or ``"last"`` (the last step's: an ORM's).
    """
    import torch

    has = judged_at.any(dim=1)
    if how == "min":
        scores = per_position.masked_fill(~judged_at, float("inf")).min(dim=1).values
    elif how == "last":
        positions = torch.arange(judged_at.shape[1], device=judged_at.device).expand_as(judged_at)
        last = positions.masked_fill(~judged_at, -1).max(dim=1).values.clamp(min=0)
        scores = per_position.gather(1, last[:, None]).squeeze(1)
    else:
        raise ValueError(f"how={how!r} must be 'min' or 'last'")
    return scores.masked_fill(~has, 0.0), has


def pairwise_loss(scores, valid, groups, correct):
    """Mean Bradley-Terry loss ``softplus(s_wrong - s_right)`` over every (right, wrong) pair of one problem in
    the batch; ``None`` when the batch holds no such pair.

    ``groups`` are integer problem ids per row; ``correct`` is 1 (right), 0 (wrong) or -1 (unknown: no pair).
    """
    import torch

    same = groups[:, None] == groups[None, :]
    ok = valid[:, None] & valid[None, :]
    pairs = same & ok & (correct[:, None] == 1) & (correct[None, :] == 0)
    if not bool(pairs.any()):
        return None
    diff = scores[:, None] - scores[None, :]
    return torch.nn.functional.softplus(-diff[pairs]).mean()
