"""The test-time benchmark harness: the grid runs, writes its outputs, resumes without rework, and refuses
stale cells (made with other settings) and survives a torn cells.jsonl line."""

from __future__ import annotations

import json

import pytest
from fakes import BanditPolicy, BanditTask, PathScorer

from roadmap.app.bench import TestTimeConfig, bench_test_time
from roadmap.core.errors import StaleOutputError


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


def _grid(tmp_path, **overrides):
    task, policy, scorer = BanditTask("LLL"), BanditPolicy(depth=3), PathScorer("LLL")
    problems = [task.problem(i) for i in range(4)]
    config = TestTimeConfig(**{"methods": ("greedy", "majority", "beam"), "budgets": (2,), "seeds": (0,), **overrides})
    return policy, lambda **kw: bench_test_time(policy, task, problems, tmp_path, config, scorer=scorer,
                                                progress=False, inputs={"policy": "abc"}, **kw)


def test_bench_refuses_cells_made_with_another_setting(tmp_path):
    _, run = _grid(tmp_path)
    run()
    cells = [json.loads(x) for x in (tmp_path / "cells.jsonl").read_text().splitlines()]
    assert all(c["provenance"]["policy"] == "abc" and c["provenance"]["n"] == 4 for c in cells)
    policy, rerun = _grid(tmp_path, temperature=0.5)
    with pytest.raises(StaleOutputError, match=r"temperature=1\.0 on disk, 0\.5 now.*--overwrite"):
        rerun()
    assert policy.calls == 0, "the mismatch is found before any work"
    # greedy does not depend on temperature; with --overwrite only the stale sampled cells are redone
    result = rerun(overwrite=True)
    by = {c["method"]: c for c in result["cells"]}
    assert by["majority"]["provenance"]["temperature"] == 0.5 and "temperature" not in by["greedy"]["provenance"]
    assert len((tmp_path / "cells.jsonl").read_text().splitlines()) == 3


def test_bench_resumes_after_a_torn_last_line(tmp_path, caplog):
    policy, run = _grid(tmp_path)
    first = run()
    path = tmp_path / "cells.jsonl"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:2]) + "\n" + lines[2][: len(lines[2]) // 2])  # a write cut short
    calls = policy.calls
    again = run()
    assert "torn last line" in caplog.text
    assert policy.calls > calls, "the torn cell is run again"
    assert [c["accuracy"] for c in again["cells"]] == [c["accuracy"] for c in first["cells"]]
    assert [json.loads(x)["method"] for x in path.read_text().splitlines()] == [json.loads(x)["method"] for x in lines]
    # a broken line that is not the last is named and dropped; a cell garbled into other valid JSON is caught by
    # its seal; both cells are run again and the results are the untouched run's
    lines = path.read_text().splitlines()
    lines[1] = lines[1].replace('"accuracy": ', '"accuracy": 1', 1)
    path.write_text("{broken\n" + "\n".join(lines) + "\n")
    caplog.clear()
    calls = policy.calls
    again = run()
    assert "cells.jsonl: dropped 2 damaged line(s) (line 1 is not valid JSON" in caplog.text
    assert "line 3 does not match the sha256" in caplog.text
    assert policy.calls > calls
    assert [c["accuracy"] for c in again["cells"]] == [c["accuracy"] for c in first["cells"]]
