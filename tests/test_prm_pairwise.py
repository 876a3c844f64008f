"""The within-problem pairwise term of reward-model training (rewards.prm_pairwise) and choosing the saved
checkpoint by the within-problem AUC (RewardModelConfig.select_by)."""

import math

import pytest

from rewards import RewardModelConfig, train_prm
from rewards.prm_pairwise import ProblemGroupedSampler, grouped_order, pairwise_loss, solution_scores
from roadmap.core.errors import ConfigError


def test_grouped_order_keeps_each_problem_together_and_reshuffles_by_seed():
    keys = ["a", "b", "a", "c", "b", "a", "c"]
    order = grouped_order(keys, seed=0)
    assert sorted(order) == list(range(len(keys)))
    runs = [keys[i] for i in order]
    changes = sum(1 for x, y in zip(runs, runs[1:]) if x != y)
    assert changes == 2  # three problems, each one contiguous run
    orders = {tuple(grouped_order(keys, seed=s)) for s in range(10)}
    assert len(orders) > 1
    sampler = ProblemGroupedSampler(keys, seed=3)
    first = list(sampler)
    assert list(sampler) == first  # the same epoch gives the same order (a resumed run sees it again)
    sampler.set_epoch(1)
    assert len(sampler) == len(keys) and sorted(sampler) == sorted(first)


def test_pairwise_loss_counts_right_over_wrong_pairs_of_one_problem_only():
    import torch

    scores = torch.tensor([2.0, 0.0, 5.0, -1.0, 3.0])
    valid = torch.tensor([True, True, True, True, False])
    groups = torch.tensor([0, 0, 1, 1, 0])
    correct = torch.tensor([1, 0, 0, -1, 0])
    loss = pairwise_loss(scores, valid, groups, correct)
    # the only pair: row 0 (right) over row 1 (wrong), both of problem 0; row 4 has no score, row 3 no verdict
    assert math.isclose(float(loss), math.log1p(math.exp(-2.0)), rel_tol=1e-6)
    assert pairwise_loss(scores, valid, torch.tensor([0, 1, 2, 3, 4]), correct) is None


def test_solution_scores_read_the_min_or_the_last_judged_position():
    import torch

    per = torch.tensor([[-0.1, -2.0, -0.5, 9.0], [-0.3, 0.0, 0.0, 0.0]])
    judged = torch.tensor([[True, True, True, False], [False, False, False, False]])
    scores, has = solution_scores(per, judged, "min")
    assert has.tolist() == [True, False] and math.isclose(float(scores[0]), -2.0)
    scores, _ = solution_scores(per, judged, "last")
    assert math.isclose(float(scores[0]), -0.5)


def _uninformative_labels(n_problems=48):
    """Every step labelled right, as rollouts of a weak policy label lucky arithmetic; only the final verdict
    tells a right solution ('...=2' throughout) from a wrong one (one '1+1=3' step)."""
    from datasets import Dataset

    rows = {"problem_id": [], "prompt": [], "steps": [], "soft_labels": [], "hard_labels": [], "correct": []}
    for p in range(n_problems):
        for k in range(4):
            right = k % 2 == 0
            steps = ["1+1=2"] * (1 + (p + k) % 3) + ["1+1=2" if right else "1+1=3"]
            rows["problem_id"].append(f"p{p}")
            rows["prompt"].append("1+1\n")
            rows["steps"].append(steps)
            rows["soft_labels"].append([1.0] * len(steps))
            rows["hard_labels"].append([1.0] * len(steps))
            rows["correct"].append(right)
    return Dataset.from_dict(rows)


def test_the_pairwise_term_learns_what_the_step_labels_miss(tiny_dir, tmp_path):
    """With step labels that call every step right, BCE alone cannot rank a problem's right solution above its
    wrong one; the pairwise term, on final verdicts only, can; and select_by keeps the checkpoint it chose by."""
    data = _uninformative_labels()
    common = dict(epochs=4, batch_size=16, learning_rate=3e-3, readout="step_end", eval_fraction=0.25)
    bce = train_prm(data, tiny_dir, RewardModelConfig(output_dir=str(tmp_path / "bce"), **common))
    pair = train_prm(data, tiny_dir, RewardModelConfig(output_dir=str(tmp_path / "pair"), pairwise_weight=1.0,
                                                       select_by="selection_auc", **common))
    assert pair["eval_selection_problems"] > 0
    assert pair["eval_selection_auc"] > 0.9
    assert bce["eval_selection_auc"] < pair["eval_selection_auc"] - 0.2
    history = pair["eval_history"]
    assert all("selection_auc" in h for h in history)
    chosen = [h for h in history if h["step"] == pair["chosen_step"]][0]
    assert chosen["selection_auc"] == max(h["selection_auc"] for h in history)
    assert math.isclose(pair["eval_selection_auc"], chosen["selection_auc"], abs_tol=1e-6)


@pytest.mark.parametrize("bad, key", [({"pairwise_weight": -1.0}, "pairwise_weight"),
                                      ({"pairwise_weight": float("nan")}, "pairwise_weight"),
                                      ({"select_by": "accuracy"}, "select_by")])
def test_bad_pairwise_settings_name_the_key(bad, key):
    with pytest.raises(ConfigError, match=key):
        RewardModelConfig(**bad)
