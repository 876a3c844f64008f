"""Small statistics shared by evaluation, reward-model metrics and benchmarks (no numpy needed)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["wilson_interval", "roc_auc", "within_group_auc", "mcnemar_exact", "discordant"]


def wilson_interval(correct: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion (95% for z=1.96)."""
    if n == 0:
        return (0.0, 1.0)
    p = correct / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def roc_auc(scores: Sequence[float], labels: Sequence[bool | int | float]) -> float:
    """Area under the ROC curve: the chance that a random positive outscores a random negative.

    Ties count one half (the Mann-Whitney U statistic). Labels are truthy for positives.
    Raises ValueError when either class is absent, since the AUC is then undefined.
    """
    if len(scores) != len(labels):
        raise ValueError(f"got {len(scores)} scores but {len(labels)} labels; pass one label per score")
    if any(isinstance(s, float) and math.isnan(s) for s in scores):
        raise ValueError("scores contain NaN; the AUC of NaN scores is undefined (check the model's outputs)")
    pairs = sorted(zip(scores, (bool(y) for y in labels)), key=lambda t: t[0])
    n_pos = sum(y for _, y in pairs)
    n_neg = len(pairs) - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"roc_auc needs both classes, got {n_pos} positives and {n_neg} negatives")
    rank_sum, i = 0.0, 0
    while i < len(pairs):
        j = i
        while j < len(pairs) and pairs[j][0] == pairs[i][0]:
            j += 1
        mid_rank = (i + j + 1) / 2  # 1-based average rank of the tie group
        rank_sum += mid_rank * sum(y for _, y in pairs[i:j])
        i = j
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def within_group_auc(scores: Sequence[float], labels: Sequence[bool | int | float],
                     groups: Sequence[object]) -> tuple[float | None, int]:
    """The mean, over groups holding both classes, of the ROC-AUC inside the group; and how many such groups.

    For a reward model the groups are problems and the labels whether each solution is right: this is the
    chance that a right solution outscores a wrong one *of the same problem*, which is what selecting among
    one problem's samples needs. A global AUC can be high while this is below one half (the scores then
    separate easy problems from hard ones, not right solutions from wrong ones). ``(None, 0)`` when no group
    holds both classes.
    """
    if not len(scores) == len(labels) == len(groups):
        raise ValueError(f"got {len(scores)} scores, {len(labels)} labels and {len(groups)} groups; pass one each")
    by_group: dict[object, tuple[list[float], list[bool]]] = {}
    for s, y, g in zip(scores, labels, groups):
        entry = by_group.setdefault(g, ([], []))
        entry[0].append(s)
        entry[1].append(bool(y))
    aucs = [roc_auc(s, y) for s, y in by_group.values() if 0 < sum(y) < len(y)]
    return (sum(aucs) / len(aucs) if aucs else None), len(aucs)


def discordant(a: Mapping[Any, bool], b: Mapping[Any, bool]) -> tuple[int, int]:
    """The problems only ``a`` solves and only ``b`` solves, of two per-problem correctness maps over the same
    problems (the counts ``mcnemar_exact`` takes)."""
    return sum(ok and not b[i] for i, ok in a.items()), sum(b[i] and not ok for i, ok in a.items())


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value of a paired comparison on the same problems: ``only_a`` problems solved
    by A alone, ``only_b`` by B alone (the problems both or neither solve carry no evidence). Under no difference
    each discordant problem is a fair coin, so p is twice the smaller binomial tail, capped at 1."""
    import math

    if only_a < 0 or only_b < 0:
        raise ValueError(f"discordant counts must be non-negative, got {only_a} and {only_b}")
    n = only_a + only_b
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(only_a, only_b) + 1)) / 2 ** n
    return min(1.0, 2 * tail)
