"""learning.tree_dpo on a tiny model: DPO on solution pairs widens the chosen-over-rejected margin."""

from __future__ import annotations

from fakes import arith_rows, likelihood_margin

from learning import TreeDPOConfig, solution_pairs, tree_dpo_step


def test_tree_dpo_widens_the_chosen_rejected_margin(tiny_dir, arith_task, tmp_path):
    rows = arith_rows(arith_task)
    _, before = likelihood_margin(tiny_dir, rows)
    pairs = solution_pairs(rows)
    res = tree_dpo_step(tiny_dir, pairs, TreeDPOConfig(output_dir=str(tmp_path / "dpo"), epochs=20,
                                                       learning_rate=2e-3, batch_size=4))
    _, after = likelihood_margin(tmp_path / "dpo", rows)
    assert res["pairs"] == 4 and res["final_loss"] < res["first_loss"]
    assert after > before + 1
