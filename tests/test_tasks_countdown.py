"""Tests of the countdown task: exact solver values, the verifier, step labels and search traces."""

import itertools
import random
from functools import cache

import pytest

from roadmap.core.errors import ConfigError, DataError
from roadmap.core.tasks import CountdownConfig, CountdownTask, get_task
from roadmap.core.tasks.countdown_solver import solve, state_value
from roadmap.core.tasks.countdown_traces import read_trace, search_metrics, search_trace, trace_stats


@cache
def reachable(nums: tuple) -> frozenset:
    """Independent brute force: every value an expression over all of ``nums`` (each once) can take, by
    splitting the multiset into two non-empty parts, with non-negative and exact intermediate results."""
    if len(nums) == 1:
        return frozenset(nums)
    out = set()
    idx = range(len(nums))
    for r in range(1, len(nums)):
        for left in itertools.combinations(idx, r):
            a_part = tuple(sorted(nums[i] for i in left))
            b_part = tuple(sorted(nums[i] for i in idx if i not in left))
            for a in reachable(a_part):
                for b in reachable(b_part):
                    out.update({a + b, a * b})
                    if a >= b:
                        out.add(a - b)
                    if b > 0 and a % b == 0:
                        out.add(a // b)
    return frozenset(out)


@pytest.fixture(scope="module")
def task() -> CountdownTask:
    return CountdownTask(CountdownConfig(min_numbers=3, max_numbers=4, max_number=12, min_target=1, max_target=60,
                                         test_fraction=0.2))


def test_solver_values_match_an_independent_brute_force():
    cases = 0
    for k, top, targets in ((2, 9, range(0, 30)), (3, 7, range(0, 60)), (4, 4, range(0, 70))):
        for nums in itertools.combinations_with_replacement(range(1, top + 1), k):
            values = reachable(nums)
            for target in targets:
                assert state_value(nums, target) == (target in values), (nums, target)
                cases += 1
    rng = random.Random(5)
    for _ in range(3):  # five numbers, a few draws (the independent brute force is slow)
        nums = tuple(sorted(rng.randint(1, 9) for _ in range(5)))
        values = reachable(nums)
        assert [state_value(nums, t) for t in range(150)] == [t in values for t in range(150)], nums
    assert cases > 5000
    assert state_value([1, 1, 1], 7) is False and state_value([2, 3, 4], 24) is True


def test_solve_gives_a_shortest_verified_solution(task):
    for nums, target in (((4, 7, 9, 11), 24), ((2, 3, 4), 24), ((3, 5, 7, 9, 11), 97)):
        steps = solve(nums, target)
        assert steps is not None and len(steps) == len(nums) - 1
        p = CountdownTask(max_numbers=5, max_number=20, min_target=1).make_problem(list(nums), target)
        assert p.steps == tuple(steps) and CountdownTask(max_numbers=5, max_number=20).is_correct(
            p, "\n".join(steps) + f"\nAnswer: {target}")
    assert solve([1, 1, 1], 7) is None
    assert CountdownTask().make_problem([4, 7, 9], 24).answer == "none"  # asked for by hand: its answer says so


def test_splits_are_disjoint_deterministic_and_solvable(task):
    train, test = task.problems("train", n=300, seed=0), task.problems("test", n=150, seed=0)
    assert not {p.question for p in train} & {p.question for p in test}
    assert test == task.problems("test", n=150, seed=0) and test != task.problems("test", n=150, seed=1)
    for p in test + train:  # never an unsolvable problem unless asked, checked independently
        assert int(p.answer) in reachable(tuple(p.meta["numbers"]))
        assert task.is_correct(p, task.reference_solution(p))
        assert all(task.step_labels(p, task.reference_solution(p)))


def test_unsolvable_problems_only_when_asked():
    task = CountdownTask(min_numbers=3, max_numbers=3, max_number=6, unsolvable_fraction=0.5)
    test = task.problems("test", n=60, seed=2)
    unsolvable = [p for p in test if p.answer == "none"]
    assert 10 < len(unsolvable) < 50
    for p in unsolvable:
        assert p.meta["target"] not in reachable(tuple(p.meta["numbers"])) and p.steps == ()
        assert task.is_correct(p, task.reference_solution(p))
        assert not task.is_correct(p, f"Answer: {p.meta['target']}")
    solvable = next(p for p in test if p.answer != "none")
    assert not task.is_correct(solvable, "Answer: none")


@pytest.mark.parametrize("text, right", [
    ("7-4=3\n11*3=33\n33-9=24\nAnswer: 24", True),
    ("7-4=3 -> S1: 3 9 11\n11*3=33 -> S2: 9 33\n33-9=24 -> S3: 24\nAnswer: 24", True),
    ("Let me think.\n7 - 4 = 3\n\n11*3=33\n33-9=24\nTherefore, the final answer is $\\boxed{24}$.", True),
    ("7-4=3\n11*3=33\n33-9=24\nAnswer: 25", False),       # answer is not the target
    ("7-4=3\n11*3=33\nAnswer: 24", False),                # 9 and 33 are left
    ("7-4=3\n7*3=21\n21+3=24\nAnswer: 24", False),        # 7 used twice, 3 used twice
    ("7-4=3\n11*3=34\n34-9=24\nAnswer: 24", False),       # wrong arithmetic
    ("4-7=-3\nAnswer: 24", False),                        # negative result
    ("9/4=2\nAnswer: 24", False),                         # inexact division
    ("7-4=3 -> S1: 3 9 12\n11*3=33\n33-9=24\nAnswer: 24", False),  # wrong state written
    ("7-4=3 -> S2: 3 9 11\n11*3=33\n33-9=24\nAnswer: 24", False),  # wrong depth written
    ("7-4=3\n11*3=33\n33-9=24", False),                   # no answer line
])
def test_verifier(text, right):
    task = CountdownTask(max_number=20)
    p = task.make_problem([4, 7, 9, 11], 24)
    assert task.is_correct(p, text) is right


def test_exact_division_is_allowed():
    task = CountdownTask()
    p = task.make_problem([2, 12, 17], 11)
    assert task.is_correct(p, "12/2=6\n17-6=11\nAnswer: 11")
    assert not task.is_correct(p, "17/2=8\n12-8=4\nAnswer: 11")


def test_step_labels_and_verdicts_are_exact_values():
    task = CountdownTask(max_number=20)
    p = task.make_problem([4, 7, 9, 11], 24)
    # 11+9=20 leaves 4 7 20: can it still reach 24? the exact value decides
    assert task.step_labels(p, "11+9=20\n20+4=24") == [state_value([4, 7, 20], 24), state_value([7, 24], 24)]
    assert state_value([7, 24], 24) is False
    assert task.step_labels(p, "7-4=3\n11*3=33\n11-9=2\nAnswer: 24") == [True, True, False, False]
    assert task.step_verdict(p, ["7-4=3"], "11*3=33") is True
    assert task.step_verdict(p, ["7-4=3"], "11+3=14") is state_value([9, 14], 24)
    assert task.step_verdict(p, [], "7*4=29") is False
    assert task.step_verdict(p, ["7*4=29"], "11+9=20") is None  # an illegal prefix cannot be judged
    assert task.step_verdict(p, ["7-4=3", "11*3=33", "33-9=24"], "Answer: 24") is True


def test_trace_round_trips_through_trace_event():
    task = CountdownTask(max_number=20)
    for nums, target in (((4, 6, 9), 30), ((2, 12, 17), 11), ((3, 5, 8, 13), 50)):
        p = task.make_problem(list(nums), target)
        for seed in range(3):
            trace = search_trace(nums, target, seed=seed, max_chars=100_000)
            assert trace.solved and not trace.capped
            text = trace.text()
            kinds = [task.trace_event(line) for line in text.splitlines()]
            assert sum(k == ("step", None) for k in kinds) == trace.explored + 1  # and the answer line
            assert sum(k == ("correction", None) for k in kinds) == trace.dead_ends
            backs = [k for k in kinds if k[0] == "backtrack"]
            assert len(backs) == trace.backtracks
            lines = read_trace(task, p, text)
            assert all(line.ok for line in lines) and task.is_correct(p, text)
            for line, kind in zip(lines, kinds):
                assert {"explore": "step", "answer": "step", "dead_end": "correction"}.get(line.kind, line.kind) == kind[0]
                if line.kind == "backtrack":  # the named state is where the walk now stands
                    assert kind[1] == line.depth + 1 and line.name.endswith(" ".join(map(str, line.state)))
    assert search_trace((2, 12, 17), 11, seed=0).text() == search_trace((2, 12, 17), 11, seed=0).text()


def test_full_traces_judge_every_branch_right_in_behaviour_metrics():
    from rewards.behaviour import behaviour_metrics

    task = CountdownTask(max_number=20, trace_max_chars=100_000)
    problems = task.problems("test", n=20, seed=0)
    texts = [task.trace_solution(p, seed=i) for i, p in enumerate(problems)]
    m = behaviour_metrics(task, problems, texts)
    assert m["checks"] > 0 and m["self_check_accuracy"] == 1.0  # a full DFS abandons only dead branches
    assert all(task.is_correct(p, t) for p, t in zip(problems, texts))
    sm = search_metrics(task, problems, texts)
    assert sm["accuracy"] == 1.0 and sm["illegal_lines"] == 0
    assert sm["backtracks_per_trace"] == sum(t.count("back to S") for t in texts) / len(texts)


def test_trace_length_cap_and_breadth():
    task = CountdownTask(min_numbers=4, max_numbers=4, max_number=20, trace_max_chars=300)
    for i, p in enumerate(task.problems("train", n=30, seed=0)):
        text = task.trace_solution(p, seed=i)
        assert len(text) <= 300
        assert task.is_correct(p, text) == (task.extract_answer(text) != "none")
    capped = search_trace((3, 5, 8, 13), 50, max_chars=80)
    assert capped.capped and not capped.solved and len(capped.text()) <= 80
    narrow = search_trace((1, 1, 1, 1), 4, breadth=1, heuristic="sum")
    assert narrow.explored == 3  # one child per state: a single path


def test_stats_count_a_model_trace_with_a_dead_first_branch():
    task = CountdownTask(max_number=20)
    p = task.make_problem([4, 6, 9], 30)
    text = ("9+6=15 -> S1: 4 15\n15+4=19 -> S2: 19\n19 != 30\nback to S0: 4 6 9\n"
            "9*4=36 -> S1: 6 36\n36-6=30 -> S2: 30\nAnswer: 30")
    s = trace_stats(task, p, text)
    assert (s.explored, s.dead_ends, s.backtracks, s.illegal, s.correct) == (4, 1, 1, 0, True)
    assert s.first_branch_dead is (not state_value([4, 15], 30))
    bad = text.replace("15+4=19", "15+4=20").replace("19 != 30", "20 != 30")
    assert trace_stats(task, p, bad).illegal >= 1 and not task.is_correct(p, bad)


def test_backtrack_to_an_unknown_state_is_refused_by_name():
    task = CountdownTask(max_number=20)
    p = task.make_problem([4, 6, 9], 30)
    with pytest.raises(DataError, match=r"unknown state S1: 4 16.*S0: 4 6 9"):
        read_trace(task, p, "6*4=24 -> S1: 9 24\nback to S1: 4 16\n")
    with pytest.raises(DataError, match="unknown state S3: 1 2"):
        read_trace(task, p, "back to S3: 1 2")
    assert not task.is_correct(p, "back to S3: 1 2\n9*4=36\n36-6=30\nAnswer: 30")
    assert [line.ok for line in read_trace(task, p, "back to S3: 1 2", strict=False)] == [False]


@pytest.mark.parametrize("numbers, target, match", [
    ([4, 7, 25], 24, "number 25 is outside this level"),
    ([0, 7, 9], 24, "number 0 is outside this level"),
    ([4, 7], 24, "2 numbers"),
    ([4, 7, 9], 24.5, "target 24.5 is not a whole number"),
    ([4, 7, 9], "24.5", "target '24.5' is not a whole number"),
    ([4, 7, 9], 500, "target 500 is outside this level"),
])
def test_bad_input_is_refused_naming_it(numbers, target, match):
    with pytest.raises(DataError, match=match):
        CountdownTask().make_problem(numbers, target)


def test_bad_question_config_and_variant():
    task = get_task("countdown", max_numbers=5)
    assert task.parse_question("Numbers: 3 1 2, target 12") == ((1, 2, 3), 12)
    with pytest.raises(DataError, match="not like"):
        task.parse_question("1 2 3 -> 6")
    with pytest.raises(ValueError, match="max_numbers=7"):
        CountdownConfig(max_numbers=7)
    with pytest.raises(ConfigError, match="variant='optimal'"):
        task.solution_text(task.problems("test", n=1)[0], "optimal")


def test_sft_rows_in_both_variants():
    task = CountdownTask(max_number=20, trace_max_chars=600)
    problems = task.problems("train", n=20, seed=0)
    optimal, traces = task.sft_rows(problems, "path"), task.sft_rows(problems, "trace")
    assert len(optimal) == 20 and 0 < len(traces) <= 20
    assert all(r["prompt"].startswith("Numbers: ") and r["completion"].endswith(f"Answer: {p.answer}")
               for r, p in zip(optimal, problems))
    assert all("->" in r["completion"] and r["kind"] == "trace" for r in traces)
    assert len(task.sft_rows(problems, "trace", solved_only=False)) == 20


def test_unreadable_numbers_count_as_wrong_not_an_error():
    task = CountdownTask(max_number=20)
    p = task.make_problem([4, 7, 9, 11], 24)
    assert task.is_correct(p, "7-4=3\n" + "9" * 5000 + "+1=10\nAnswer: 24") is False


def test_chat_format_writes_and_checks_both_variants(tmp_path):
    from transformers import AutoTokenizer

    from policy_init.standins import build_standin
    from roadmap.core.tasks import PromptFormat

    tok = AutoTokenizer.from_pretrained(build_standin("qwen2", tmp_path / "qwen2"))
    task = CountdownTask(max_number=20, trace_max_chars=100_000).set_prompt_format(PromptFormat(kind="chat"), tok)
    p = task.make_problem([4, 6, 9], 30)
    assert "Using the numbers 4, 6, 9, each exactly once" in task.prompt(p)
    for text in (task.reference_solution(p), task.trace_solution(p)):
        assert "\n\n" in text and text.endswith("$\\boxed{30}$.")
        assert task.is_correct(p, text) and task.step_labels(p, text)[-1] is True
    assert not task.is_correct(p, "9*4=36\n\n36-6=30\n\nTherefore, the final answer is $\\boxed{31}$.")


def test_trace_format_is_what_sft_trains_on_and_round_trips_through_the_checker():
    task = get_task("countdown", max_number=20, solution_format="trace")
    p = task.make_problem([4, 6, 9], 30)
    text = task.reference_solution(p)
    assert text == task.reference_solution(p) == task.trace_solution(p)  # the problem seeds its own trace
    assert "->" in text and task.extract_answer(text) == "30" and task.is_correct(p, text)
    assert text != CountdownTask(max_number=20).reference_solution(p) == "\n".join([*p.steps, "Answer: 30"])
    capped = CountdownTask(max_number=20, solution_format="trace", trace_max_chars=64).reference_solution(
        task.make_problem([3, 5, 7, 11], 94))
    assert capped.endswith("Answer: none") and len(capped) <= 64
    assert task.extract_answer(capped) == "none" and not task.is_correct(task.make_problem([3, 5, 7, 11], 94), capped)


def test_the_checker_is_exact_integer_arithmetic():
    task = CountdownTask(max_number=20)
    p = task.make_problem([4, 6, 9], 30)
    assert task.is_correct(p, "9*4=36\n36-6=30\nAnswer: 30")
    for text in ("9*4=36\n36-6=30.0\nAnswer: 30",    # a decimal is no move: 6 and 36 are still left
                 "9*4=36\n36-6=30\nAnswer: 30.0",    # nor an answer
                 "9/6=1.5\n4*1.5=6\n6*5=30\nAnswer: 30",
                 "9/4=2\n6*2=12\nAnswer: 30"):        # floor division is not division
        assert not task.is_correct(p, text), text


@pytest.mark.parametrize("level", [2, 3, 4, 5])
def test_level_task_gives_problems_with_that_many_numbers(level):
    base = CountdownTask(max_number=20, solution_format="trace", trace_max_chars=512)
    rung = base.level_task(level)
    problems = rung.problems("train", n=3 if level == 5 else 20, seed=1)
    assert {len(p.meta["numbers"]) for p in problems} == {level}
    assert rung.config.solution_format == "trace" and rung.config.max_number == 20
    assert all(rung.is_correct(p, rung.solution_text(p, "path")) for p in problems)


@pytest.mark.parametrize("bad, match", [
    (lambda: CountdownTask().level_task(7), "countdown level 7 "),
    (lambda: CountdownTask().level_task(1), "countdown level 1 "),
    (lambda: CountdownTask().level_task(True), "countdown level True "),
    (lambda: get_task("countdown", solution_format="tree"), "solution_format='tree'"),
    (lambda: get_task("countdown", max_numbers=7), "max_numbers=7"),
])
def test_bad_task_args_are_config_errors_naming_the_key(bad, match):
    with pytest.raises(ConfigError, match=match):
        bad()


def test_cli_refuses_a_bad_solution_format_in_one_line(tmp_path, capsys):
    from roadmap.app.cli import main

    assert main(["tiny", "--task", "countdown", "--task-arg", "solution_format=tree", "--out",
                 str(tmp_path / "t")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "solution_format='tree'" in err and "('path', 'trace')" in err
