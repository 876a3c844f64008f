"""Traces from trees (learning.traces), the task's verbal forms and the long_cot learner's data."""

from __future__ import annotations

import pytest

from learning import LongCoTConfig, TraceConfig, linearize, long_cot_data, trace_rows
from learning.traces import Detour, detour_candidates, verified_path
from rewards.behaviour import trace_events
from roadmap.core.tasks.arith import ArithTask
from roadmap.core.tasks.base import Task
from roadmap.core.types import Problem, Tree

CORRECTED = ("37+48=84\n84-48=36 no\n37+48=85\n85-48=37 ok\n85-91=-6\n-6+91=85 ok\n"
             "-6+12=6\n6-12=-6 ok\nAnswer: 6")
BACKTRACKED = ("37+48=84\n84-91=-7\n-7+91=84 ok\n84-48=36 no, back to 1\n37+48=85\n"
               "85-48=37 ok\n85-91=-6\n-6+91=85 ok\n-6+12=6\n6-12=-6 ok\nAnswer: 6")


def arith_tree() -> tuple[ArithTask, Problem, Tree]:
    """37+48-91+12: the verified path, a wrong first-step sibling valued 0 with one step below it."""
    task = ArithTask()
    problem = task.make_problem("37+48-91+12")
    tree = Tree(problem.id, task.prompt(problem))
    tree.add(-1, "")
    good = tree.add(0, "37+48=85\n", visits=3, value_sum=3.0)
    bad = tree.add(0, "37+48=84\n", visits=2, value_sum=0.0)
    tree.add(bad.id, "84-91=-7\n", visits=1, value_sum=0.0)
    s2 = tree.add(good.id, "85-91=-6\n", visits=3, value_sum=3.0)
    # as MCTS writes them, a last node holds the last step and the answer line
    tree.add(s2.id, "-6+12=6\nAnswer: 6", visits=2, value_sum=2.0, terminal=True, answer="6")
    tree.add(s2.id, "-6+12=6\nAnswer: 5", visits=1, value_sum=0.0, terminal=True, answer="5")
    return task, problem, tree


def row(task, problem, tree) -> dict:
    return {"problem_id": problem.id, "prompt": tree.prompt, "question": problem.question,
            "reference": problem.answer, "tree": tree.to_dict(), "candidates": [], "candidate_correct": []}


def test_tree_with_a_wrong_sibling_linearizes_into_a_corrected_trace():
    task, problem, tree = arith_tree()
    path = verified_path(tree, task, problem)
    assert [n.step.strip() for n in path] == ["37+48=85", "85-91=-6", "-6+12=6\nAnswer: 6"]
    assert linearize(tree, task, problem, path, [Detour(0, "correction", 2)]) == CORRECTED
    ds = trace_rows([row(task, problem, tree)], task, TraceConfig(clean=0, correction=1, backtrack=0))
    assert ds["kind"] == ["correction"] and ds["completion"] in ([CORRECTED], [
        CORRECTED.replace("Answer: 6", "Answer: 5\n6=5 no\nAnswer: 6")])


def test_backtrack_follows_the_wrong_branch_then_returns_to_its_step():
    task, problem, tree = arith_tree()
    path = verified_path(tree, task, problem)
    assert linearize(tree, task, problem, path, [Detour(0, "backtrack", 2)]) == BACKTRACKED
    ds = trace_rows([row(task, problem, tree)] * 20, task, TraceConfig(clean=0, correction=0, backtrack=1))
    assert set(ds["kind"]) == {"backtrack"} and BACKTRACKED in ds["completion"]


def test_a_wrong_sibling_never_expanded_still_gives_a_backtrack_right_after_it():
    task, problem, tree = arith_tree()
    path = verified_path(tree, task, problem)
    # the wrong answer sibling (node 6) has nothing searched below it: back up at once, to step 4
    text = linearize(tree, task, problem, path, [Detour(3, "backtrack", 6, 1)])
    assert text == CORRECTED.split("no\n", 1)[1].replace("Answer: 6", "Answer: 5\n6=5 no, back to 4\nAnswer: 6")
    assert task.trace_event("6=5 no, back to 4") == ("backtrack", 4)
    ev = trace_events(task, problem, text)
    assert (ev.wrong_steps, ev.corrected, ev.backtracks, ev.correct) == (1, 1, 1, True)


def test_without_training_on_errors_the_wrong_step_moves_into_the_prompt():
    task, problem, tree = arith_tree()
    config = TraceConfig(clean=0, correction=1, backtrack=0, train_on_errors=False, seed=1)
    ds = trace_rows([row(task, problem, tree)] * 20, task, config)
    pairs = set(zip(ds["prompt"], ds["completion"]))
    assert (tree.prompt + "37+48=84\n", CORRECTED.split("37+48=84\n", 1)[1]) in pairs
    for prompt, completion in pairs:  # the text is the trace, cut just after its wrong step
        assert prompt.endswith(("37+48=84\n", "Answer: 5\n")) and completion.split("\n")[0].endswith(" no")
    assert LongCoTConfig(train_on_errors=False).trace_config().train_on_errors is False


def test_clean_trace_and_unchecked_clean_solution():
    task, problem, tree = arith_tree()
    checked = trace_rows([row(task, problem, tree)], task, TraceConfig(clean=1, correction=0, backtrack=0))
    plain = trace_rows([row(task, problem, tree)], task,
                       TraceConfig(clean=1, correction=0, backtrack=0, check_steps=False))
    assert checked["completion"] == [CORRECTED.split(" no\n", 1)[1]]
    assert plain["completion"] == [task.reference_solution(problem)]


def test_candidates_are_the_wrong_low_valued_siblings_only():
    task, problem, tree = arith_tree()
    path = verified_path(tree, task, problem)
    found = detour_candidates(tree, task, problem, path, TraceConfig())
    assert [(d.index, d.sibling, d.line) for d in found["correction"]] == [(0, 2, 0), (3, 6, 1)]
    assert [(d.index, d.sibling) for d in found["backtrack"]] == [(0, 2), (3, 6)]
    tree.nodes[2].value_sum = 2.0  # valued high now: no longer a detour
    found = detour_candidates(tree, task, problem, path, TraceConfig())
    assert [d.sibling for d in found["correction"]] == [6]


def test_extraction_reads_the_last_answer_of_a_trace_with_a_corrected_answer_line():
    task = ArithTask()
    trace = "37+48=85\n85-48=37 ok\nAnswer: 5\n85=5 no\n85-91=-6\nAnswer: -6"
    assert task.extract_answer(trace) == "-6"
    assert task.is_correct(task.make_problem("37+48-91"), trace)


class WordTask(Task):
    """A task without a step checker: the default verbal forms, tree values decide."""

    name = "word"

    def problems(self, split="train", n=None, seed=0):
        return []

    def extract_answer(self, text):
        lines = [x for x in text.split("\n") if x.startswith("Answer: ")]
        return lines[-1][len("Answer: "):] if lines else None

    def answers_match(self, predicted, reference):
        return predicted.strip() == reference.strip()


def test_default_verbal_forms_for_a_task_without_a_checker():
    task = WordTask()
    problem = Problem("w", "Tom has 3 apples and buys 2.", "5")
    tree = Tree("w", task.prompt(problem))
    tree.add(-1, "")
    a = tree.add(0, "He buys 2 more.\n", visits=2, value_sum=2.0)
    b = tree.add(0, "He eats 2.\n", visits=1, value_sum=0.0)
    tree.add(b.id, "So 1 is left.\n", visits=1, value_sum=0.0)
    tree.add(a.id, "Answer: 5", visits=2, value_sum=2.0, terminal=True, answer="5")
    path = verified_path(tree, task, problem)
    assert linearize(tree, task, problem, path, [Detour(0, "correction", b.id)]) == (
        "He eats 2.\nWait, that step is wrong.\nHe buys 2 more.\nAnswer: 5")
    assert linearize(tree, task, problem, path, [Detour(0, "backtrack", b.id)]) == (
        "He eats 2.\nSo 1 is left.\nLet me go back to step 1.\nHe buys 2 more.\nAnswer: 5")
    assert task.trace_event("Let me go back to step 3.") == ("backtrack", 3)
    assert task.trace_event("Wait, that step is wrong.") == ("correction", None)


def test_trace_config_refuses_a_mix_without_weight():
    with pytest.raises(ValueError, match="clean/correction/backtrack"):
        TraceConfig(clean=0, correction=0, backtrack=0)
    with pytest.raises(ValueError, match="backtrack_depth"):
        LongCoTConfig(backtrack_depth=0)


def test_long_cot_data_mixes_the_configured_kinds_over_many_trees():
    task, problem, tree = arith_tree()
    rows = [row(task, problem, tree)] * 60
    config = LongCoTConfig(solutions_per_problem=1, clean=0.5, correction=0.5, backtrack=0.0)
    data = long_cot_data(rows, task, config)
    kinds = data["kind"]
    assert len(data) == 60 and set(data.column_names) == {"prompt", "completion", "id", "kind"}
    assert 15 <= kinds.count("clean") <= 45 and kinds.count("clean") + kinds.count("correction") == 60
