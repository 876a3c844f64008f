import random

import pytest

from rewards import LabelConfig, label_solutions, load_labels, rollout_summary, save_labels
from roadmap.core.types import Completion, Usage


class ArithOracle:
    """A fake policy on arith: from a prefix whose steps are all right it finishes correctly with
    probability ``skill``; from a wrong prefix it always ends wrong."""

    def __init__(self, task, problems, skill=1.0, seed=0):
        self.task = task
        self.by_prompt = {task.prompt(p): p for p in problems}
        self.skill = skill
        self.rng = random.Random(seed)
        self.usage = Usage()
        self.calls = 0

    def sample(self, prefixes, n=1, **kwargs):
        self.calls += 1
        out = []
        for prefix in prefixes:
            prompt = next(p for p in self.by_prompt if prefix.startswith(p))
            problem = self.by_prompt[prompt]
            done = self.task.split_steps(prefix[len(prompt):])
            ok = all(self.task.step_labels(problem, "\n".join(done))) if done else True
            row = []
            for _ in range(n):
                if ok and self.rng.random() < self.skill:
                    rest = list(problem.steps[len(done):]) + [f"Answer: {problem.answer}"]
                else:
                    rest = [f"Answer: {int(problem.answer) + 1}"]
                text = "\n".join(rest)
                row.append(Completion(text=text, num_tokens=len(text), logprob=0.0, finished=True))
            out.append(row)
        return out

    def logprobs(self, prefixes, continuations):
        return [0.0] * len(prefixes)


def corrupt(problem, at):
    """The reference solution with step ``at`` off by one (and everything after it consistent)."""
    steps = list(problem.steps)
    a, rest = steps[at].split("=")
    wrong = int(rest) + 1
    steps[at] = f"{a}={wrong}"
    return "\n".join(steps + [f"Answer: {wrong if at == len(steps) - 1 else int(problem.answer) + 1}"])


@pytest.fixture
def setup(arith_task):
    problems = [p for p in arith_task.problems("train", n=40, seed=3) if len(p.steps) == 3][:8]
    solutions = [[arith_task.reference_solution(p), corrupt(p, 0), corrupt(p, 1), corrupt(p, 2)] for p in problems]
    return problems, solutions


@pytest.mark.parametrize("method", ["mc", "binary"])
def test_labels_match_ground_truth_with_a_perfect_policy(arith_task, setup, method):
    problems, solutions = setup
    policy = ArithOracle(arith_task, problems)
    ds = label_solutions(policy, arith_task, problems, solutions, LabelConfig(method=method, rollouts=2), progress=False)
    assert len(ds) == 4 * len(problems)
    for row, problem, text in zip(ds, [p for p in problems for _ in range(4)], [t for s in solutions for t in s]):
        truth = [float(x) for x in arith_task.step_labels(problem, text)]
        assert row["hard_labels"] == truth, (text, row)
        assert row["method"] == method


def test_binary_labels_cost_fewer_rollouts_and_none_for_right_answers(arith_task, setup):
    problems, solutions = setup
    ds = label_solutions(ArithOracle(arith_task, problems), arith_task, problems, solutions,
                         LabelConfig(method="binary", rollouts=2), progress=False)
    s = rollout_summary(ds)
    assert s["rollouts"] < s["full_mc_rollouts"]
    assert any(ds["correct"])
    assert all(r == 0 for r, c in zip(ds["rollouts"], ds["correct"]) if c)  # right answers cost nothing


def test_mc_soft_labels_are_success_fractions(arith_task, setup):
    problems, solutions = setup
    policy = ArithOracle(arith_task, problems, skill=0.5, seed=1)
    ds = label_solutions(policy, arith_task, problems, [s[:1] for s in solutions], LabelConfig(rollouts=64),
                         progress=False)
    for row in ds:
        assert row["soft_labels"][-1] == 1.0  # the final answer step of a right solution is checked, not rolled out
        for v in row["soft_labels"][:-1]:
            assert 0.3 < v < 0.7
        assert row["rollouts"] == 64 * (len(row["steps"]) - 1)


def test_binary_search_uses_logarithmic_probes(arith_task):
    problems = [p for p in arith_task.problems("train", n=200, seed=5) if len(p.steps) == 3][:2]
    # a long wrong solution: 3 steps then padding steps; first error at step 1
    solutions = [[corrupt(p, 1).replace("Answer", "0+0=0\n0+0=0\n0+0=0\n0+0=0\nAnswer")] for p in problems]
    policy = ArithOracle(arith_task, problems)
    ds = label_solutions(policy, arith_task, problems, solutions, LabelConfig(method="binary", rollouts=1),
                         progress=False)
    for row in ds:
        n = len(row["steps"])
        assert row["hard_labels"] == [1.0] + [0.0] * (n - 1)
        assert row["rollouts"] <= 3 < row["full_mc_rollouts"]


def test_empty_and_answerless_solutions(arith_task, setup):
    problems, _ = setup
    p = problems[0]
    policy = ArithOracle(arith_task, problems)
    no_answer = "\n".join(p.steps[:2])
    ds = label_solutions(policy, arith_task, [p], [["", no_answer]], LabelConfig(rollouts=2), progress=False)
    assert ds[0]["steps"] == [] and ds[0]["soft_labels"] == [] and ds[0]["rollouts"] == 0
    assert ds[1]["hard_labels"] == [1.0, 1.0]  # right so far: rollouts can still finish it
    assert ds[1]["correct"] is False


def test_save_and_load_round_trip(arith_task, setup, tmp_path):
    problems, solutions = setup
    ds = label_solutions(ArithOracle(arith_task, problems), arith_task, problems[:2], solutions[:2],
                         LabelConfig(rollouts=1), progress=False)
    path = save_labels(ds, tmp_path / "labels")
    assert not list(tmp_path.glob(".labels.*"))
    assert load_labels(path)["hard_labels"] == ds["hard_labels"]
    with pytest.raises(FileNotFoundError, match="roadmap label"):
        load_labels(tmp_path)


def test_bad_config():
    with pytest.raises(ValueError, match="method"):
        LabelConfig(method="omega")
    with pytest.raises(ValueError, match="rollouts"):
        LabelConfig(rollouts=0)
