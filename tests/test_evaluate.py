"""roadmap.app.evaluate: accuracy, intervals and compute of greedy and majority evaluation."""

from __future__ import annotations

import pytest

from roadmap.app.evaluate import evaluate


def test_greedy_and_majority_accuracy(arith_task, scripted_policy):
    problems = arith_task.problems("test", n=4)
    answers = {}
    for i, p in enumerate(problems):
        right = arith_task.reference_solution(p)
        wrong = arith_task.format_solution([], str(int(p.answer) + 1))
        # problem 0: always right; 1: first sample wrong, majority right; 2: majority wrong; 3: garbage
        answers[arith_task.prompt(p)] = [[right], [wrong, right, right], [wrong, wrong, right], ["%%garbage"]][i]
    policy = scripted_policy(answers)
    greedy = evaluate(policy, arith_task, problems, method="greedy", progress=False)
    assert greedy.correct == 1 and greedy.accuracy == 0.25 and greedy.n == 4
    majority = evaluate(policy, arith_task, problems, method="majority", samples=3, progress=False)
    assert [r["correct"] for r in majority.records] == [True, True, False, False]
    assert majority.generated_tokens == policy.usage.generated_tokens - greedy.generated_tokens
    assert majority.to_dict()["ci95"][0] < 0.5 < majority.to_dict()["ci95"][1]


def test_unknown_method_is_named(arith_task, scripted_policy):
    with pytest.raises(ValueError, match="beam"):
        evaluate(scripted_policy({}), arith_task, [], method="beam")


def test_search_budget_gives_beam_and_mcts_comparable_compute():
    """At one budget N, MCTS (N simulations of M children) samples about as many steps as beam
    search (N per depth); the old mapping (N/M simulations) gave it a quarter of them."""
    from fakes import BanditPolicy, BanditTask, PathScorer

    from roadmap.app.evaluate import run_search

    task = BanditTask()
    spent = {}
    for method in ("beam", "mcts"):
        policy = BanditPolicy()
        run_search(policy, task, [task.problem()], method, 8, PathScorer(), width=4, seed=0)
        spent[method] = policy.usage.sampled_sequences
    assert 0.5 * spent["beam"] <= spent["mcts"] <= 2 * spent["beam"], spent
