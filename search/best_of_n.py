"""Best-of-N family: sample N complete solutions, then pick one.

Majority vote is self-consistency (Wang et al., arXiv 2203.11171): the most frequent final
answer wins. Scorer-based selection and weighted voting arrive with the Search issue.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

__all__ = ["majority_vote"]


def majority_vote(answers: Sequence[str | None]) -> str | None:
    """The most frequent non-None answer; ties go to the answer seen first. None if all are None."""
    counts = Counter(a for a in answers if a is not None)
    if not counts:
        return None
    best = max(counts.values())
    return next(a for a in answers if a is not None and counts[a] == best)
