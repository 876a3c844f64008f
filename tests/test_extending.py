"""docs/extending.md's examples, run as written: the search method it adds works in `roadmap eval`, `roadmap bench
test-time`, `roadmap search` and a loop recipe, its learner in the loop, its task in `roadmap eval` and its levels,
its scorer in a search. Everything the examples register is unregistered after this module."""

from __future__ import annotations

import json
import re
import sys
import types
from pathlib import Path

import pytest

from roadmap.app.cli import main

DOC = Path(__file__).resolve().parents[1] / "docs" / "extending.md"
EXAMPLE = re.compile(r"<!-- example -->\n```python\n(.*?)```", re.S)


def doc_examples() -> list[str]:
    """The code blocks of docs/extending.md marked ``<!-- example -->``, in order."""
    return EXAMPLE.findall(DOC.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def plugin():
    """The doc's blocks run as one plugin module; its registrations are removed afterwards."""
    from learning.registry import LEARNERS
    from roadmap.core.tasks import TASKS
    from search.registry import SEARCH_METHODS, unregister_search

    before = (set(SEARCH_METHODS), set(LEARNERS), set(TASKS))
    module = types.ModuleType("extending_example")
    sys.modules[module.__name__] = module  # dataclasses and pickling look classes up by module
    try:
        exec(compile("\n\n".join(doc_examples()), str(DOC), "exec"), module.__dict__)
        yield module
    finally:
        for name in set(SEARCH_METHODS) - before[0]:
            unregister_search(name)
        for name in set(LEARNERS) - before[1]:
            del LEARNERS[name]
        for name in set(TASKS) - before[2]:
            del TASKS[name]
        sys.modules.pop(module.__name__, None)


def test_the_doc_has_one_example_per_extension_point_and_they_register(plugin):
    from learning.registry import get_learner
    from roadmap.core.tasks import get_task
    from search.registry import get_search, search_needs_scorer

    assert len(doc_examples()) == 4
    assert get_search("shortest") is plugin.shortest and not search_needs_scorer("shortest")
    assert get_learner("shortest_first").run is plugin.shortest_first
    assert isinstance(get_task("doubling"), plugin.DoublingTask)
    assert search_needs_scorer("bon")  # the built-ins still need one


def test_the_new_search_method_runs_in_roadmap_eval_without_a_prm(plugin, tiny_dir, tmp_path):
    out = tmp_path / "eval.json"
    assert main(["eval", "--policy", str(tiny_dir), "--method", "shortest", "--budget", "3", "--n", "4",
                 "--max-new-tokens", "16", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["method"] == "shortest" and report["n"] == 4
    assert report["outputs"] == 12  # 3 sampled solutions per problem
    assert report["generated_tokens"] > 0


def test_the_new_search_method_runs_in_the_test_time_bench(plugin, tiny_dir, tmp_path):
    out = tmp_path / "bench"
    assert main(["bench", "test-time", "--policy", str(tiny_dir), "--methods", "greedy,shortest", "--budgets", "2",
                 "--seeds", "0", "--n", "3", "--max-new-tokens", "16", "--out", str(out)]) == 0
    result = json.loads((out / "test_time.json").read_text())
    assert result["skipped_no_scorer"] == []  # registered with needs_scorer=False: no --prm needed
    cell = next(c for c in result["cells"] if c["method"] == "shortest")
    assert cell["budget"] == 2 and cell["n"] == 3 and cell["outputs"] == 6
    assert "scorer" not in cell["provenance"]


def test_the_new_search_method_runs_in_train_time_search(plugin, tiny_dir, tmp_path):
    out = tmp_path / "search"
    assert main(["search", "--policy", str(tiny_dir), "--method", "shortest", "--budget", "2", "--n", "3",
                 "--max-new-tokens", "16", "--out", str(out)]) == 0
    rows = [json.loads(line) for line in (out / "trees.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and {r["method"] for r in rows} == {"shortest"}
    for r in rows:  # the task verified every candidate; the shortest answered one comes first
        assert len(r["candidates"]) == len(r["candidate_correct"]) == 2
        answered = [c for c in r["candidates"] if plugin_task_answer(c) is not None]
        if answered:
            assert r["candidates"][0] == min(answered, key=len)


def plugin_task_answer(text: str):
    from roadmap.core.tasks import ArithTask

    return ArithTask().extract_answer(text)


def test_a_loop_recipe_searches_with_the_new_method_and_learns_with_the_new_learner(plugin, tiny_dir, tmp_path):
    from roadmap.app.loop import LoopConfig, run_loop

    config = LoopConfig(policy=str(tiny_dir), task="arith", iterations=1, train_problems=3, eval_problems=4,
                        batch_size=32, search={"method": "shortest", "budget": 2, "shard_size": 3},
                        learn={"algorithm": "shortest_first", "reference_mix": 8, "epochs": 1, "batch_size": 8,
                               "solutions_per_problem": 1},
                        lengths={"max_solution_tokens": 16})
    result = run_loop(config, tmp_path / "run", say=lambda _: None)
    it = tmp_path / "run" / "iter_1"
    rows = [json.loads(line) for line in next(it.rglob("trees.jsonl")).read_text().splitlines()]
    assert {r["method"] for r in rows} == {"shortest"}
    assert (it / "policy" / "config.json").exists()  # the new learner wrote the updated policy
    learned = json.loads((it / "learn.done.json").read_text())
    assert learned["examples"] >= 8 and learned["train_tokens"] > 0
    assert [r["iteration"] for r in result["iterations"]] == [0, 1]


def test_the_new_task_evaluates_and_has_levels(plugin, tiny_dir, tmp_path):
    from roadmap.core.tasks import get_task

    out = tmp_path / "eval.json"
    assert main(["eval", "--policy", str(tiny_dir), "--task", "doubling", "--task-arg", "digits=3", "--n", "4",
                 "--max-new-tokens", "16", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["task"] == "doubling" and report["n"] == 4 and report["method"] == "greedy"
    task = get_task("doubling")
    assert {len(p.question) for p in task.level_task(3).problems("test", 5)} == {len("2*123")}
    test = {p.question for p in task.problems("test", 30)}
    assert test and not test & {p.question for p in task.problems("train", 30)}  # disjoint splits
    p = task.problems("train", 1)[0]
    assert task.is_correct(p, task.reference_solution(p)) and not task.is_correct(p, "Answer: -1")


def test_the_new_scorer_ranks_candidates_and_reaches_the_cli_through_a_method(plugin, tiny_dir, tiny_policy, tmp_path,
                                                                            arith_task):
    from roadmap.app.evaluate import evaluate_search
    from roadmap.core.types import Problem

    scorer = plugin.BrevityScorer(arith_task)
    problem = Problem(id="x", question="1+1", answer="2")
    assert scorer.score(problem, ["a", "a\nb", "a\nb\nc"]) == [0.5, 1 / 3, 0.25]
    report = evaluate_search(tiny_policy, arith_task, arith_task.problems("test", 2), method="bon", budget=2,
                             scorer=scorer, progress=False)
    assert report.n == 2 and report.outputs == 4
    out = tmp_path / "eval.json"
    assert main(["eval", "--policy", str(tiny_dir), "--method", "bon_brevity", "--budget", "2", "--n", "2",
                 "--max-new-tokens", "16", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["outputs"] == 4


def test_a_plugin_that_cannot_be_imported_is_named_in_one_line(monkeypatch, capsys):
    monkeypatch.setenv("ROADMAP_PLUGINS", "no_such_plugin_module")
    assert main(["eval", "--policy", "x"]) == 2
    err = capsys.readouterr().err
    assert "no_such_plugin_module" in err and "PYTHONPATH" in err and err.count("\n") == 1


def test_a_plugin_named_in_roadmap_plugins_is_imported_before_the_parser(monkeypatch, tmp_path, capsys):
    from search.registry import unregister_search

    (tmp_path / "my_roadmap_plugin.py").write_text(
        "from search import register_search\n"
        "register_search('plugin_method', lambda policy, task, problems, scorer, budget, *, verifier=None: [])\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("ROADMAP_PLUGINS", "my_roadmap_plugin")
    try:
        with pytest.raises(SystemExit):
            main(["search", "--help"])
        assert "plugin_method" in capsys.readouterr().out  # a --method choice: imported before the parser was built
    finally:
        unregister_search("plugin_method")
        sys.modules.pop("my_roadmap_plugin", None)
