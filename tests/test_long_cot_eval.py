"""Budget forcing (search.budget_forcing), behaviour metrics (rewards.behaviour) and their place in evaluate."""

from __future__ import annotations

import re

import pytest

from rewards.behaviour import behaviour_metrics, trace_events
from roadmap.app.evaluate import evaluate
from roadmap.core.tasks.arith import ArithTask
from roadmap.core.types import Completion, Usage
from search.budget_forcing import budget_forced

CORRECTED = ("37+48=84\n84-48=36 no\n37+48=85\n85-48=37 ok\n85-91=-6\n-6+91=85 ok\n"
             "-6+12=6\n6-12=-6 ok\nAnswer: 6")
FALSE_OK = "37+48=84\n84-48=37 ok\n84-91=-7\n-7+12=5\nAnswer: 5"
BACKTRACKED = ("37+48=84\n84-91=-7\n-7+91=84 ok\n84-48=36 no, back to 1\n37+48=85\n"
               "85-91=-6\n-6+12=6\nAnswer: 6")
CLEAN = "37+48=85\n85-91=-6\n-6+12=6\nAnswer: 6"


def last_result(text: str) -> str:
    found = re.findall(r"=(-?\d+)\n", text)
    return found[-1] if found else "0"


class ScriptedPolicy:
    """Writes a fixed solution one character (token) at a time; after an answer cue, the last result so far."""

    def __init__(self, text: str) -> None:
        self.text, self.usage, self.calls = text, Usage(), []

    def sample(self, prefixes, n=1, *, stop=None, max_new_tokens=256, temperature=1.0, top_p=1.0, seed=None):
        self.calls.append(max_new_tokens)
        out = []
        for prefix in prefixes:
            full = last_result(prefix) + "\n" if prefix.endswith("Answer: ") else self.text
            text, finished, stopped = full[:max_new_tokens], len(full) <= max_new_tokens, False
            for s in [stop] if isinstance(stop, str) else (stop or []):
                if s in text:
                    text, finished, stopped = text[: text.index(s) + len(s)], False, True
            self.usage.generated_tokens += len(text) * n
            out.append([Completion(text, len(text), -1.0, finished=finished, stopped=stopped) for _ in range(n)])
        return out


@pytest.mark.parametrize("budget", [5, 12, 30])
def test_budget_forcing_stops_at_the_budget(budget):
    task, policy = ArithTask(), ScriptedPolicy(CORRECTED)
    (stopped,), = budget_forced(policy, task, ["37+48-91+12\n"], budget, mode="stop")
    assert stopped.text == CORRECTED[:budget] and stopped.num_tokens == budget
    assert task.extract_answer(stopped.text) is None
    (forced,), = budget_forced(policy, task, ["37+48-91+12\n"], budget, mode="force")
    thinking = CORRECTED[:budget][: CORRECTED[:budget].rfind("\n") + 1]
    answer = last_result(thinking)
    assert forced.text == f"{thinking}Answer: {answer}\n" and forced.num_tokens == budget + len(answer) + 1
    assert policy.calls[-2:] == [budget, 16]


def test_a_solution_inside_its_budget_is_left_alone():
    task, policy = ArithTask(), ScriptedPolicy(CLEAN)
    (done,), = budget_forced(policy, task, ["37+48-91+12\n"], 200)
    assert done.text == CLEAN and policy.calls == [200]
    with pytest.raises(ValueError, match="budget mode"):
        budget_forced(policy, task, ["x"], 10, mode="wait")


def test_evaluate_with_a_thinking_budget_reports_tokens_and_behaviour():
    task = ArithTask()
    problems = [task.make_problem("37+48-91+12")]
    full = evaluate(ScriptedPolicy(CORRECTED), task, problems, progress=False)
    cut = evaluate(ScriptedPolicy(CORRECTED), task, problems, progress=False, thinking_budget=20, budget_mode="stop")
    assert full.correct == 1 and cut.correct == 0 and cut.thinking_budget == 20
    assert cut.generated_tokens == 20 and full.generated_tokens == len(CORRECTED)
    assert full.behaviour["self_correction_rate"] == 1.0 and full.behaviour["corrections"] == 1


def test_behaviour_events_of_scripted_traces():
    task = ArithTask()
    p = task.make_problem("37+48-91+12")
    a, b, c, d = (trace_events(task, p, t) for t in (CORRECTED, FALSE_OK, BACKTRACKED, CLEAN))
    assert (a.steps, a.wrong_steps, a.corrected, a.checks, a.right_checks, a.corrections, a.correct) == (
        5, 1, 1, 4, 4, 1, True)
    assert (b.wrong_steps, b.corrected, b.checks, b.right_checks, b.correct) == (1, 0, 1, 0, False)
    assert (c.steps, c.wrong_steps, c.corrected, c.checks, c.right_checks, c.backtracks) == (6, 1, 1, 2, 2, 1)
    assert (d.checks, d.wrong_steps, d.correct) == (0, 0, True)


def test_behaviour_rates_over_scripted_traces():
    task = ArithTask()
    p = task.make_problem("37+48-91+12")
    m = behaviour_metrics(task, [p] * 4, [CORRECTED, FALSE_OK, BACKTRACKED, CLEAN])
    assert m["self_check_accuracy"] == pytest.approx(6 / 7)
    assert m["self_correction_rate"] == pytest.approx(2 / 3)
    assert m["backtrack_rate"] == pytest.approx(1 / 4)
    assert m["right_after_wrong"] == pytest.approx(2 / 3)
    # the checks of the three wrong first steps say "no" twice (FALSE_OK passes its wrong step); the four
    # checks of right steps never do; only CLEAN starts with a right step
    assert (m["no_after_wrong"], m["no_after_right"]) == (pytest.approx(2 / 3), 0.0)
    assert m["first_step_accuracy"] == pytest.approx(1 / 4)
    none = behaviour_metrics(task, [p], [CLEAN])
    assert none["self_check_accuracy"] is None and none["self_correction_rate"] is None
    assert none["no_after_wrong"] is None and none["first_step_accuracy"] == 1.0
    doubts = behaviour_metrics(task, [p], ["37+48=85\n85-48=37 no\n37+48=85\n85-91=-6\n-6+12=6\nAnswer: 6"])
    assert (doubts["no_after_right"], doubts["no_after_wrong"], doubts["self_check_accuracy"]) == (1.0, None, 0.0)
    with pytest.raises(ValueError, match="one solution per problem"):
        behaviour_metrics(task, [p], [])


def test_bench_sequential_axis_gains_accuracy_with_thinking_tokens(tmp_path):
    from roadmap.app.bench import TestTimeConfig, bench_test_time

    task = ArithTask()
    problems = [task.make_problem("37+48-91+12")]
    config = TestTimeConfig(methods=("greedy", "sequential"), budgets=(1, 3, 8), seeds=(0, 1), thinking_unit=16)
    result = bench_test_time(ScriptedPolicy(CORRECTED), task, problems, tmp_path, config, progress=False)
    seq = {c["budget"]: c for c in result["cells"] if c["method"] == "sequential"}
    assert sorted(seq) == [1, 3, 8] and {c["seed"] for c in seq.values()} == {0}  # deterministic: one seed
    assert [seq[b]["accuracy"] for b in (1, 3, 8)] == [0.0, 0.0, 1.0]
    assert seq[1]["tokens_per_problem"] < seq[3]["tokens_per_problem"] < seq[8]["tokens_per_problem"]
