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


def test_a_countdown_answer_over_illegal_moves_is_wrong_in_eval_bench_and_trees(tmp_path, scripted_policy):
    """Every countdown attempt can write "Answer: <target>" (the target is in the prompt); eval, the bench's votes
    and a search row judge the chosen solution by the task's whole check, not its answer line alone."""
    from roadmap.app.bench import TestTimeConfig, bench_test_time
    from roadmap.core.tasks import get_task
    from roadmap.core.types import SearchResult
    from search.trees import result_row

    task = get_task("countdown", min_numbers=3, max_numbers=3)
    problems = task.problems("test", n=3, seed=918273)
    legal = [task.reference_solution(p) for p in problems]
    cheat = [f"Answer: {p.answer}" for p in problems]
    bad_move = [f"99*99=9801\nAnswer: {p.answer}" for p in problems]
    assert all(task.extract_answer(t) == p.answer for t, p in zip(cheat + bad_move, problems * 2))
    # problem 0 solved; 1 claims the target with no moves; 2 with a move from numbers it does not have
    policy = scripted_policy({task.prompt(p): [t] for p, t in zip(problems, [legal[0], cheat[1], bad_move[2]])})
    greedy = evaluate(policy, task, problems, method="greedy", progress=False)
    assert [r["correct"] for r in greedy.records] == [True, False, False]
    votes = scripted_policy({task.prompt(p): [good, c, c] if i == 0 else [c, c, good]
                             for i, (p, good, c) in enumerate(zip(problems, legal, cheat))})
    majority = evaluate(votes, task, problems, method="majority", samples=3, progress=False)
    # the vote chose the target; the first sample carrying it is what is judged
    assert [r["correct"] for r in majority.records] == [True, False, False]
    result = bench_test_time(policy, task, problems, tmp_path, TestTimeConfig(methods=("greedy", "majority"),
                             budgets=(1, 2), seeds=(0,), chunk=3), progress=False)
    assert {(c["method"], c["budget"]): c["accuracy"] for c in result["cells"]} == {
        ("greedy", 1): 1 / 3, ("majority", 1): 1 / 3, ("majority", 2): 1 / 3}
    row = result_row(task, problems[1], SearchResult(problems[1].id, problems[1].answer, [cheat[1]]), "bon")
    assert row["correct"] is False and row["candidate_correct"] == [False]
    ok = result_row(task, problems[0], SearchResult(problems[0].id, problems[0].answer, [cheat[0], legal[0]]))
    assert ok["correct"] is False  # the best-ranked candidate carrying the answer is the one judged
