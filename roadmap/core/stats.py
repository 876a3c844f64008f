"""Small statistics shared by evaluation, reward-model metrics and benchmarks (no numpy needed)."""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["wilson_interval", "roc_auc"]


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
