"""The test-time benchmark harness: the grid runs, writes its outputs, and resumes without rework."""

from __future__ import annotations

import json

import pytest
from fakes import BanditPolicy, BanditTask, PathScorer

from roadmap.bench import TestTimeConfig, bench_test_time


def test_bench_grid_outputs_and_resume(tmp_path):
    task, policy, scorer = BanditTask(), BanditPolicy(depth=4, p_best=0.3), PathScorer("LLLL")
    task.best = "LLLL"
    problems = [task.problem(i) for i in range(12)]
    config = TestTimeConfig(budgets=(1, 8), seeds=(0, 1), chunk=5)
    result = bench_test_time(policy, task, problems, tmp_path, config, scorer=scorer, progress=False)
    # greedy once; six other methods at two budgets and two seeds
    assert len(result["cells"]) == 1 + 6 * 2 * 2
    assert (tmp_path / "test_time.png").stat().st_size > 0
    table = (tmp_path / "test_time.md").read_text()
    assert "| mcts" in table and "N=8" in table
    summary = {(r["method"], r["budget"]): r for r in result["summary"]}
    # a perfect scorer guides beam toward the best leaf; majority over a 0.3-per-step policy rarely gets there
    assert summary[("beam", 8)]["accuracy"] > summary[("majority", 8)]["accuracy"]
    assert summary[("bon", 8)]["tokens_per_problem"] > summary[("bon", 1)]["tokens_per_problem"]
    # majority, bon and weighted share one set of samples at each (N, seed)
    cells = {(c["method"], c["budget"], c["seed"]): c for c in result["cells"]}
    assert cells[("bon", 8, 1)]["generated_tokens"] == cells[("majority", 8, 1)]["generated_tokens"]

    calls = policy.calls
    again = bench_test_time(policy, task, problems, tmp_path, config, scorer=scorer, progress=False)
    assert policy.calls == calls, "a finished grid must not be rerun"
    assert again["summary"] == result["summary"]

    # a bigger grid reuses the finished cells and runs only the new ones
    lines = len((tmp_path / "cells.jsonl").read_text().splitlines())
    bench_test_time(policy, task, problems, tmp_path, TestTimeConfig(budgets=(1, 8, 16), seeds=(0, 1), chunk=5),
                    scorer=scorer, progress=False)
    new = [json.loads(x) for x in (tmp_path / "cells.jsonl").read_text().splitlines()[lines:]]
    assert {c["budget"] for c in new} == {16} and len(new) == 6 * 2


def test_bench_without_scorer_runs_only_scorer_free_methods(tmp_path):
    task, policy = BanditTask("LLL"), BanditPolicy(depth=3)
    result = bench_test_time(policy, task, [task.problem(0)], tmp_path, TestTimeConfig(budgets=(2,), seeds=(0,)),
                             progress=False)
    assert {c["method"] for c in result["cells"]} == {"greedy", "majority"}
    assert set(result["skipped_no_scorer"]) == {"bon", "weighted", "beam", "dvts", "mcts"}
    with pytest.raises(ValueError, match="unknown methods"):
        TestTimeConfig(methods=("beam", "alphazero"))
