"""``countdown``: reach a target from 3-5 numbers with + - * /, a task where search is necessary.

The question lists the numbers (ascending) and the target; the solution combines two available
numbers per line until one number, the target, is left, then the final answer line::

    Numbers: 4 7 9 11, target 24
    7-4=3
    11*3=33
    33-9=24
    Answer: 24

Every number is used exactly once; intermediate results are non-negative integers and a division
must be exact (as in Stream of Search, arXiv 2404.03683). An operation line may carry the state it
leads to ("7-4=3 -> S1: 3 9 11"); search traces (``countdown_traces``) also write dead ends and
backtracks, and ``is_correct`` reads both forms. A problem with no solution (only with
``unsolvable_fraction`` > 0) has the answer "none". Under a chat prompt format the answer step is
"Therefore, the final answer is $\\boxed{24}$.". Lines that are none of these (a chat model's prose)
are skipped.

``solution_format`` ("path" | "trace") picks the reference solution, so what ``roadmap sft`` trains on;
``level_task(k)`` is the task at exactly k numbers (the ladder's rungs). The checker is exact: whole
numbers only, a division counts only when it leaves no remainder, no floating point anywhere.

Exact values: ``state_value`` says whether a state can still reach the target (brute force,
memoised), so ``step_labels`` and ``step_verdict`` are exact: a step is right when it is a legal
move from the current state AND the state it leaves can still reach the target.
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from numbers import Integral

from roadmap.core.errors import ConfigError, DataError
from roadmap.core.tasks._answers import boxed_span
from roadmap.core.tasks.base import Task, check_split, hash_split, stable_hash
from roadmap.core.tasks.countdown_solver import State, Walk, format_state, solve, state_value
from roadmap.core.types import Problem

__all__ = ["SOLUTION_FORMATS", "LEVELS", "CountdownConfig", "CountdownTask"]

#: countdown's solution formats (``CountdownConfig.solution_format``): the solver's path, or a search trace
SOLUTION_FORMATS = ("path", "trace")
#: the levels ``level_task`` makes: how many numbers a problem has (the solver is brute force up to 6)
LEVELS = range(2, 7)

logger = logging.getLogger(__name__)
_QUESTION = re.compile(r"^\s*Numbers:\s*(.*?),\s*target\s+(\S+)\s*$")
_ANSWER_LINE = re.compile(r"Answer:[ \t]*(-?\d+|none)[ \t]*\.?[ \t]*$", re.MULTILINE)
NONE = "none"


@dataclass(frozen=True)
class CountdownConfig:
    """The level of the countdown task and the shape of its search traces.

    Attributes:
        min_numbers: fewest numbers in a problem (at least 2).
        max_numbers: most numbers in a problem (at most 6: the solver is brute force).
        max_number: numbers are drawn from 1..max_number.
        min_target, max_target: targets are drawn from this range (inclusive).
        unsolvable_fraction: share of problems without a solution (answer "none"); 0 gives only
            solvable problems, in both splits.
        test_fraction: share of all possible questions that belong to the test split.
        trace_max_chars: length cap of a search trace (``trace_solution``), in characters.
        trace_breadth: children a search trace tries per state, best first (0: all of them).
        solution_format: what ``reference_solution`` writes, so what ``roadmap sft`` trains on:
            "path" (the solver's n-1 operations, then the answer) or "trace" (the DFS search trace
            of ``trace_solution``, dead ends and backtracks included, as in Stream of Search). A
            trace that hits ``trace_max_chars`` or, with ``trace_breadth``, misses the target ends
            "Answer: none": that text is kept (it is what the search wrote, and Stream of Search's
            released training uses every search trace, failed ones included), and the checker counts it wrong. Trace lengths: up to ``trace_max_chars`` characters, i.e. tokens under the
            char tokenizer of ``roadmap tiny`` (docs/architecture.md gives the lengths to set).
    """

    min_numbers: int = 3
    max_numbers: int = 4
    max_number: int = 20
    min_target: int = 10
    max_target: int = 100
    unsolvable_fraction: float = 0.0
    test_fraction: float = 0.1
    trace_max_chars: int = 2048
    trace_breadth: int = 0
    solution_format: str = "path"

    def __post_init__(self) -> None:
        if not 2 <= self.min_numbers <= self.max_numbers <= 6:
            raise ConfigError(f"min_numbers={self.min_numbers}, max_numbers={self.max_numbers}: need "
                             "2 <= min_numbers <= max_numbers <= 6")
        if self.max_number < 1:
            raise ConfigError(f"max_number={self.max_number} must be at least 1")
        if not 0 <= self.min_target <= self.max_target:
            raise ConfigError(f"min_target={self.min_target}, max_target={self.max_target}: need "
                             "0 <= min_target <= max_target")
        if not 0.0 <= self.unsolvable_fraction < 1.0:
            raise ConfigError(f"unsolvable_fraction={self.unsolvable_fraction} must lie in [0, 1)")
        if not 0.0 < self.test_fraction < 1.0:
            raise ConfigError(f"test_fraction={self.test_fraction} must lie strictly between 0 and 1")
        if self.trace_max_chars < 64:
            raise ConfigError(f"trace_max_chars={self.trace_max_chars} is too short for a trace; use at least 64")
        if self.trace_breadth < 0:
            raise ConfigError(f"trace_breadth={self.trace_breadth} must be >= 0 (0 tries every child)")
        if self.solution_format not in SOLUTION_FORMATS:
            raise ConfigError(f"solution_format={self.solution_format!r} is not a countdown solution format; use one "
                              f"of {SOLUTION_FORMATS}")


class CountdownTask(Task):
    """Procedural Countdown problems with an exact solver; see the module docstring for the format."""

    name = "countdown"
    step_delimiter = "\n"

    def __init__(self, config: CountdownConfig | None = None, **kwargs) -> None:
        self.config = config if config is not None else CountdownConfig(**kwargs)

    def level_task(self, level: int) -> CountdownTask:
        """Problems of exactly ``level`` numbers, at this task's number and target ranges, trace knobs and
        solution format: the rungs of the self-improvement ladder (``roadmap.app.ladder``)."""
        if isinstance(level, bool) or not isinstance(level, int) or level not in LEVELS:
            raise ConfigError(f"countdown level {level!r} is not a count of numbers the task can make; use a whole "
                              f"number from {LEVELS.start} to {LEVELS.stop - 1}")
        return type(self)(replace(self.config, min_numbers=level, max_numbers=level))

    # ------------------------------------------------------------------ problems
    def plain_prompt(self, problem: Problem) -> str:
        return f"{problem.question}\n"

    def chat_question(self, problem: Problem) -> str:
        numbers, target = self.numbers_target(problem)
        return (f"Using the numbers {', '.join(map(str, numbers))}, each exactly once, and + - * /, make {target}. "
                "Every intermediate result must be a whole number >= 0. Write one operation per line, like 11-7=4.")

    def check_input(self, numbers: Sequence, target) -> tuple[State, int]:
        """``(numbers, target)`` as a canonical state and an int; anything outside this level raises
        ``DataError`` naming it (a number out of 1..max_number, a count or target out of range, a
        target that is not a whole number)."""
        cfg = self.config
        if isinstance(target, bool) or not (isinstance(target, Integral) or (isinstance(target, str)
                                                                             and target.strip().isdigit())):
            raise DataError(f"countdown: target {target!r} is not a whole number; give an integer in "
                            f"{cfg.min_target}..{cfg.max_target}")
        target = int(target)
        if not cfg.min_target <= target <= cfg.max_target:
            raise DataError(f"countdown: target {target} is outside this level ({cfg.min_target}..{cfg.max_target}); "
                            "pick a target in range or widen min_target/max_target")
        if not cfg.min_numbers <= len(numbers) <= cfg.max_numbers:
            raise DataError(f"countdown: {len(numbers)} numbers {list(numbers)} is outside this level "
                            f"({cfg.min_numbers}..{cfg.max_numbers} numbers); change min_numbers/max_numbers")
        for x in numbers:
            if isinstance(x, bool) or not isinstance(x, Integral) or not 1 <= int(x) <= cfg.max_number:
                raise DataError(f"countdown: number {x!r} is outside this level (whole numbers 1..{cfg.max_number}); "
                                "pick numbers in range or raise max_number")
        return tuple(sorted(int(x) for x in numbers)), target

    @staticmethod
    def question_text(numbers: Sequence[int], target: int) -> str:
        return f"Numbers: {format_state(numbers)}, target {target}"

    def parse_question(self, question: str) -> tuple[State, int]:
        """(numbers, target) of a question "Numbers: 4 7 9 11, target 24", checked against the level."""
        m = _QUESTION.match(question)
        if m is None or not all(t.isdigit() for t in m.group(1).split()):
            raise DataError(f"countdown: question {question!r} is not like 'Numbers: 4 7 9 11, target 24'")
        return self.check_input([int(t) for t in m.group(1).split()], m.group(2))

    def make_problem(self, numbers: Sequence[int], target: int) -> Problem:
        """The problem for ``numbers`` and ``target`` with one solution found by the solver (its
        ``steps``; none for an unsolvable problem, whose answer is "none")."""
        state, target = self.check_input(numbers, target)
        question = self.question_text(state, target)
        steps = solve(state, target)
        return Problem(id=f"countdown-{stable_hash(question):016x}"[:26], question=question,
                       answer=NONE if steps is None else str(target), steps=tuple(steps or ()),
                       meta={"numbers": list(state), "target": target, "solvable": steps is not None})

    def problems(self, split: str = "train", n: int | None = 1000, seed: int = 0) -> list[Problem]:
        """``n`` distinct problems of ``split``; each is unsolvable with probability ``unsolvable_fraction``
        (so never, by default)."""
        check_split(split)
        cfg, n = self.config, 1000 if n is None else n
        rng = random.Random(f"countdown-{seed}-{split}")
        seen: set[str] = set()
        out: list[Problem] = []
        attempts = 0
        while len(out) < n:
            solvable = rng.random() >= cfg.unsolvable_fraction
            while True:
                attempts += 1
                if attempts > 200 * n + 10_000:
                    raise ConfigError(f"countdown could only find {len(out)} distinct {split} problems of the {n} "
                                     f"asked for with {cfg}; ask for fewer or widen the level")
                k = rng.randint(cfg.min_numbers, cfg.max_numbers)
                state = tuple(sorted(rng.randint(1, cfg.max_number) for _ in range(k)))
                target = rng.randint(cfg.min_target, cfg.max_target)
                q = self.question_text(state, target)
                if q in seen or hash_split(q, cfg.test_fraction) != split or state_value(state, target) != solvable:
                    continue
                seen.add(q)
                out.append(self.make_problem(state, target))
                break
        return out

    def numbers_target(self, problem: Problem) -> tuple[State, int]:
        """The numbers (sorted) and the target of ``problem``."""
        if "numbers" in problem.meta and "target" in problem.meta:
            return tuple(sorted(problem.meta["numbers"])), int(problem.meta["target"])
        return self.parse_question(problem.question)

    # ------------------------------------------------------------------ answers and verification
    def extract_answer(self, text: str) -> str | None:
        """The last "Answer: N" (or "Answer: none") line or ``\\boxed{N}``, whichever comes last."""
        box_at, box = boxed_span(text)
        lines = list(_ANSWER_LINE.finditer(text))
        if lines and lines[-1].start() > box_at:
            return lines[-1].group(1)
        if box is not None:
            box = box.replace(" ", "").replace("\\text{", "").rstrip("}")
            if box.isdigit() or box == NONE:
                return str(int(box)) if box.isdigit() else box
        return None

    def answers_match(self, predicted: str, reference: str) -> bool:
        predicted, reference = predicted.strip(), reference.strip()
        if NONE in (predicted, reference):
            return predicted == reference
        try:
            return int(predicted) == int(reference)
        except ValueError:
            return False

    def walk(self, problem: Problem, lines: Sequence[str]) -> Walk:
        """The walk over ``lines`` (steps or trace lines; blank ones skipped) from the problem's numbers."""
        numbers, target = self.numbers_target(problem)
        walk = Walk(numbers, target, read_answer=self.extract_answer)
        for text in lines:
            for line in text.splitlines():
                if line.strip():
                    walk.read(line)
        return walk

    def _answer_right(self, problem: Problem, state: State | None, answer: str | None) -> bool:
        """Whether ``answer``, written where ``state`` is left, is right (no answer, or a lost walk, is not)."""
        if answer is None:
            return False
        if problem.answer == NONE:
            return answer == NONE
        return self.answers_match(answer, problem.answer) and state == (int(problem.answer),)

    def is_correct(self, problem: Problem, text: str) -> bool:
        """Exact check: every operation is a legal move from the state it stands in (available numbers,
        right arithmetic, exact division, result >= 0), every dead end and backtrack names a real
        state, and the last answer line says the target where exactly the target is left ("none"
        for an unsolvable problem). Numbers too long to read count as wrong, with a warning."""
        try:
            return self._is_correct(problem, text)
        except (ValueError, ArithmeticError, RecursionError) as err:
            logger.warning("countdown: checking problem %s failed (%s: %s); counted as wrong. Text tail: %r",
                           problem.id, type(err).__name__, err, text[-200:])
            return False

    def _is_correct(self, problem: Problem, text: str) -> bool:
        walk = self.walk(problem, [text])
        answers = [i for i, line in enumerate(walk.lines) if line.kind == "answer"]
        if not walk.ok or not answers:
            return False
        last = walk.lines[answers[-1]]
        return self._answer_right(problem, last.state, last.answer)

    def step_labels(self, problem: Problem, text: str) -> list[bool]:
        """Exact process labels, one per step of ``text``: True while every line so far is legal and
        the state the step leaves can still reach the target (an answer step: when it is right)."""
        numbers, target = self.numbers_target(problem)
        walk = Walk(numbers, target, read_answer=self.extract_answer)
        labels = []
        for step in self.split_steps(text):
            label = True
            for line in step.splitlines():
                if line.strip():
                    read = walk.read(line)
                    if read.kind == "answer":
                        label = walk.ok and self._answer_right(problem, read.state, read.answer)
                    else:
                        label = walk.ok and state_value(walk.state, target)
            labels.append(label)
        return labels

    # ------------------------------------------------------------------ verbal forms (rewards.behaviour)
    def step_verdict(self, problem: Problem, before: Sequence[str], step: str) -> bool | None:
        """Whether ``step`` is right after the lines ``before``: a legal move to a state that can still
        reach the target, or a right answer. None when ``before`` is not a legal walk or ``step`` is
        no step."""
        walk = self.walk(problem, before)
        if not walk.ok:
            return None
        line = walk.read(step)
        if line.kind == "answer":
            return self._answer_right(problem, line.state, line.answer)
        if line.kind != "explore":
            return None
        return line.ok and state_value(walk.state, walk.target)

    def correction_text(self, problem: Problem, before: Sequence[str], step: str) -> str:
        """A wrong step is undone by going back to the state before it."""
        return self.backtrack_text(problem, before, step, len(before) + 1)

    def backtrack_text(self, problem: Problem, before: Sequence[str], step: str, k: int) -> str:
        walk = self.walk(problem, list(before)[: k - 1])
        return f"back to S{k - 1}: {format_state(walk.state)}"

    def trace_event(self, line: str) -> tuple[str, int | None]:
        """An operation is a "step", a dead end ("32 != 24") a "correction" (it undoes the last step) and
        "back to Sd: ..." a ("backtrack", d + 1): the d steps that lead to state Sd are kept."""
        from roadmap.core.tasks.countdown_solver import BACK_LINE, DEAD_LINE

        if DEAD_LINE.match(line):
            return "correction", None
        m = BACK_LINE.match(line)
        if m:
            return "backtrack", int(m.group(1)) + 1
        return super().trace_event(line)

    # ------------------------------------------------------------------ training text
    def reference_solution(self, problem: Problem) -> str:
        """The solution ``roadmap sft`` trains on, in ``solution_format``: the solver's path, or the search
        trace of ``trace_solution`` (its seed drawn from the problem, so the same problem gives the same trace)."""
        return self.solution_text(problem, self.config.solution_format)

    def trace_solution(self, problem: Problem, seed: int | None = None) -> str:
        """A search trace of ``problem`` (``countdown_traces.search_trace`` at this level's cap and
        breadth), written in the bound prompt format; its last step is the answer ("none" when the
        search failed). ``seed`` (default: one drawn from the question) picks the heuristic and breaks ties."""
        from roadmap.core.tasks.countdown_traces import search_trace

        numbers, target = self.numbers_target(problem)
        seed = stable_hash(problem.question) % (1 << 31) if seed is None else seed
        trace = search_trace(numbers, target, seed=seed, max_chars=self.config.trace_max_chars,
                             breadth=self.config.trace_breadth)
        return self.format_solution(trace.steps, trace.answer)

    def solution_text(self, problem: Problem, variant: str = "path", seed: int | None = None) -> str:
        """SFT text of ``problem``: "path" (the solver's path) or "trace" (a search trace; ``seed`` as in
        ``trace_solution``)."""
        if variant == "path":
            return self.format_solution(problem.steps, problem.answer)
        if variant == "trace":
            return self.trace_solution(problem, seed)
        raise ConfigError(f"variant={variant!r} is not a countdown solution format; use one of {SOLUTION_FORMATS}")

    def sft_rows(self, problems: Sequence[Problem], variant: str = "path", seed: int | None = None,
                 solved_only: bool = True) -> list[dict]:
        """SFT rows (``prompt``, ``completion``, ``id``, ``kind``) in ``variant``; ``solved_only`` drops
        texts the verifier rejects (search traces that failed). ``seed`` + i seeds problem i's trace
        (default: each problem's own seed, as ``reference_solution`` draws it)."""
        rows = []
        for i, p in enumerate(problems):
            text = self.solution_text(p, variant, None if seed is None else seed + i)
            if solved_only and not self.is_correct(p, text):
                continue
            prompt, completion = self.training_pair(p, text)
            rows.append({"prompt": prompt, "completion": completion, "id": p.id, "kind": variant})
        return rows
