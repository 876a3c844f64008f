"""roadmap.core.stats against known values: the Wilson interval, ROC-AUC (Mann-Whitney, ties as one half) and the
exact McNemar test."""

from __future__ import annotations

import pytest

from roadmap.core.stats import mcnemar_exact, roc_auc, wilson_interval


@pytest.mark.parametrize(("correct", "n", "low", "high"), [
    # Wilson score intervals at z = 1.96, as scipy.stats.binomtest(k, n).proportion_ci(method="wilson") gives
    (50, 100, 0.4038, 0.5962),
    (0, 10, 0.0, 0.2775),
    (10, 10, 0.7225, 1.0),
    (8, 10, 0.4902, 0.9433),
    (1, 3, 0.0615, 0.7923),
])
def test_wilson_interval_known_values(correct, n, low, high):
    lo, hi = wilson_interval(correct, n)
    assert lo == pytest.approx(low, abs=1e-4) and hi == pytest.approx(high, abs=1e-4)


def test_wilson_interval_of_nothing_is_everything():
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_roc_auc_known_values():
    assert roc_auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == 0.75  # scikit-learn's roc_auc_score example
    assert roc_auc([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]) == 1.0
    assert roc_auc([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1]) == 0.0
    # ties count one half: positives {1, 1} against negatives {1, 0} win 0.5 + 1 each
    assert roc_auc([1.0, 1.0, 1.0, 0.0], [True, True, False, False]) == 0.75
    assert roc_auc([0.3] * 4, [1, 0, 1, 0]) == 0.5


def test_roc_auc_bad_input_is_named():
    with pytest.raises(ValueError, match="both classes"):
        roc_auc([0.1, 0.2], [1, 1])
    with pytest.raises(ValueError, match="one label per score"):
        roc_auc([0.1, 0.2], [1])
    with pytest.raises(ValueError, match="NaN"):
        roc_auc([0.1, float("nan")], [1, 0])


def test_within_group_auc_sees_what_a_global_auc_hides():
    """Easy problems score high and hard ones low, so the global AUC is perfect-looking, but inside every
    problem the wrong solution outscores the right one: selection among a problem's samples would fail."""
    from roadmap.core.stats import roc_auc, within_group_auc

    scores = [0.90] * 5 + [0.95] + [0.20] * 5 + [0.10]
    right = [True] * 5 + [False] + [False] * 5 + [True]
    groups = ["easy"] * 6 + ["hard"] * 6
    assert roc_auc(scores, right) == pytest.approx(25 / 36)
    auc, mixed = within_group_auc(scores, right, groups)
    assert mixed == 2 and auc == 0.0
    assert within_group_auc([0.2, 0.9], [False, True], ["a", "b"]) == (None, 0)  # no problem with both classes
    with pytest.raises(ValueError, match="one each"):
        within_group_auc([0.1], [True, False], ["a"])


def test_mcnemar_exact_matches_the_binomial_tail():
    assert mcnemar_exact(0, 0) == 1.0 and mcnemar_exact(5, 5) == 1.0
    assert mcnemar_exact(6, 0) == pytest.approx(2 / 64)      # 6 coin flips all one way
    assert mcnemar_exact(26, 11) == mcnemar_exact(11, 26)
    assert mcnemar_exact(26, 11) == pytest.approx(0.0197, abs=5e-4)  # docs/benchmarks/countdown.md's STaR split
    with pytest.raises(ValueError, match="non-negative"):
        mcnemar_exact(-1, 3)


def test_discordant_counts_the_problems_only_one_side_solves():
    from roadmap.core.stats import discordant

    a = {"p": True, "q": True, "r": False, "s": False}
    b = {"p": True, "q": False, "r": True, "s": True}
    assert discordant(a, b) == (1, 2) and discordant(b, a) == (2, 1)
