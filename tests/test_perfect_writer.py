"""A perfect chat-model writer scores 100% through every evaluation and search method.

The scripted policy writes each problem's reference solution as a chat model writes it (steps
separated by "\\n\\n", the answer in ``\\boxed{}``), continuing whatever prefix it is given, cut
at stop strings and at ``max_new_tokens`` like a real policy (a token here is 4 characters, about
what a 150k-vocabulary BPE gives on English and LaTeX). With the lengths a chat model needs
(``Lengths`` docstring: 512-token steps, 40 steps, 2048-token solutions), no point may be lost to
prompts, delimiters, answer extraction or length limits, on real GSM8K and MATH-500 rows and on
GSM-Symbolic's longest solutions.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from roadmap.app.evaluate import evaluate, evaluate_search
from roadmap.core import Lengths
from roadmap.core.tasks import get_task
from roadmap.core.tasks.prompts import PromptFormat
from roadmap.core.types import Completion, StepScorer, Usage

DATA = Path(__file__).resolve().parents[1] / "benchmarks" / "data"
CHAT_LENGTHS = Lengths(max_step_tokens=512, max_steps=40, max_solution_tokens=2048, rollout_tokens=2048)
CHARS_PER_TOKEN = 4


def _tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


class PerfectWriter:
    """Continues every prefix with the rest of its problem's chat-style reference solution."""

    def __init__(self, task, problems) -> None:
        self.documents = {task.prompt(p): task.reference_solution(p) for p in problems}
        self.usage = Usage()
        self.batch_size = 16

    def _continue(self, prefix: str, stop, max_new_tokens: int) -> Completion:
        prompt = max((p for p in self.documents if prefix.startswith(p)), key=len)
        written, document = prefix[len(prompt):], self.documents[prompt]
        assert document.startswith(written), f"the search handed back text the writer never wrote: {written!r}"
        rest = document[len(written):]
        stops = [stop] if isinstance(stop, str) else list(stop or [])
        cut = min((rest.find(s) + len(s) for s in stops if s in rest), default=None)
        text, finished, stopped = (rest[:cut], False, True) if cut is not None else (rest, True, False)
        if _tokens(text) > max_new_tokens:
            text, finished, stopped = text[: max_new_tokens * CHARS_PER_TOKEN], False, False
        return Completion(text=text, num_tokens=_tokens(text) + finished, logprob=-0.01 * _tokens(text),
                          finished=finished, stopped=stopped)

    def sample(self, prefixes, n=1, *, stop=None, max_new_tokens=256, temperature=1.0, top_p=1.0, seed=None):
        out = [[self._continue(p, stop, max_new_tokens) for _ in range(n)] for p in prefixes]
        for row in out:
            self.usage.generated_tokens += sum(c.num_tokens for c in row)
            self.usage.sampled_sequences += len(row)
        return out

    def logprobs(self, prefixes, continuations):
        return [-0.01 * _tokens(c) for c in continuations]


class FlatScorer(StepScorer):
    """Every partial solution scores 0.5: the search must not need a good PRM to keep a perfect writer perfect."""

    def score(self, problem, texts):
        return [0.5] * len(texts)


@pytest.fixture(scope="module")
def chat_tokenizer(tmp_path_factory):
    from transformers import AutoTokenizer

    from policy_init.standins import build_standin

    return AutoTokenizer.from_pretrained(build_standin("qwen2", tmp_path_factory.mktemp("qwen") / "q"))


def _task_and_problems(name: str, tokenizer):
    if name == "gsm_symbolic":
        task = get_task(name)
        problems = task.problems("test", n=40)
        problems = sorted(problems, key=lambda p: -len(p.steps))[:12]  # the longest solutions
        assert len(problems[0].steps) > 12  # more steps than the old hard-wired limit
    else:
        task = get_task(name, source=str(DATA / f"{name}_sample.jsonl"))
        problems = task.problems("train", n=None) + task.problems("test", n=None)
    task.set_prompt_format(PromptFormat(kind="chat"), tokenizer)
    return task, problems


METHODS = [("greedy", 1), ("majority", 4), ("bon", 4), ("weighted", 4), ("beam", 4), ("dvts", 4), ("mcts", 4)]


@pytest.mark.parametrize("name", ["gsm8k", "gsm_symbolic", "math500"])
def test_a_perfect_chat_writer_scores_100_percent_everywhere(name, chat_tokenizer):
    task, problems = _task_and_problems(name, chat_tokenizer)
    policy = PerfectWriter(task, problems)
    longest = max(_tokens(task.reference_solution(p)) for p in problems)
    for method, budget in METHODS:
        if method in ("greedy", "majority"):
            report = evaluate(policy, task, problems, method=method, samples=budget, lengths=CHAT_LENGTHS,
                              progress=False)
        else:
            report = evaluate_search(policy, task, problems, method=method, budget=budget, scorer=FlatScorer(),
                                     width=2, lengths=CHAT_LENGTHS, progress=False)
        wrong = [r["id"] for r in report.records if not r["correct"]]
        assert report.accuracy == 1.0, f"{name} {method}: {len(wrong)} of {report.n} wrong, e.g. {report.records[0]}"
        assert report.truncated == 0, f"{name} {method}: {report.truncated} outputs cut by a length limit"
        assert report.accuracy_flexible == 1.0
    assert longest > 100  # real solutions, longer than a toy step


def test_the_tiny_default_lengths_would_cut_long_solutions(chat_tokenizer):
    """The same writer under the tiny defaults (12 steps) loses the long GSM-Symbolic solutions, and
    each loss is reported as truncated, not silently as a wrong answer."""
    task, problems = _task_and_problems("gsm_symbolic", chat_tokenizer)
    report = evaluate_search(PerfectWriter(task, problems), task, problems, method="beam", budget=4,
                             scorer=FlatScorer(), width=2, lengths=Lengths(), progress=False)
    wrong = [r for r in report.records if not r["correct"]]
    assert wrong and all(r["truncated"] > 0 for r in wrong)
