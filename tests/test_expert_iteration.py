"""learning.expert_iteration on a tiny model: fine-tuning on verified solutions raises their likelihood."""

from __future__ import annotations

import pytest
from fakes import arith_rows, likelihood_margin

from learning import ExpertIterationConfig, expert_iteration_step


def test_expert_iteration_raises_the_likelihood_of_verified_solutions(tiny_dir, arith_task, tmp_path):
    rows = arith_rows(arith_task)
    before, _ = likelihood_margin(tiny_dir, rows)
    res = expert_iteration_step(tiny_dir, rows, ExpertIterationConfig(output_dir=str(tmp_path / "ei"), epochs=30,
                                                                      learning_rate=3e-3, batch_size=4))
    after, _ = likelihood_margin(tmp_path / "ei", rows)
    assert res["examples"] == 4 and res["train_tokens"] > 0
    assert after > before + 5
    with pytest.raises(ValueError, match="no verified solution"):
        expert_iteration_step(tiny_dir, [{**r, "candidate_correct": [False, False]} for r in rows],
                              ExpertIterationConfig(output_dir=str(tmp_path / "none")))
