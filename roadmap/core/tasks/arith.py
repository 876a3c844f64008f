"""``arith``: procedural chains of + and - over k operands of d digits, offline and seedable.

A problem is "37+48-91+12"; its solution is one step per line, left to right, then the
final answer line::

    37+48=85
    85-91=-6
    -6+12=6
    Answer: 6

Under a chat prompt format the steps are separated by a blank line and the answer step is
"Therefore, the final answer is $\\boxed{6}$."; ``extract_answer`` reads either form.
Intermediate and final results may be negative. Because every step can be checked exactly,
``step_labels`` gives ground-truth process labels, against which automatically trained
process reward models are measured (Math-Shepherd, arXiv 2312.08935).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, replace

from roadmap.core.errors import ConfigError
from roadmap.core.tasks._answers import boxed_span
from roadmap.core.tasks.base import Task, check_split, hash_split, stable_hash
from roadmap.core.types import Problem

#: arith's solution formats (``ArithConfig.solution_format``)
SOLUTION_FORMATS = ("steps", "carry")

__all__ = ["SOLUTION_FORMATS", "ArithConfig", "ArithTask", "parse_step", "check_step"]

_STEP = re.compile(r"^\s*(-?\d+)\s*([+-])\s*(\d+)\s*=\s*(-?\d+)((?:[+-]\d+)*)\s*$")
_TERM = re.compile(r"([+-])(\d+)")
_ANSWER_LINE = re.compile(r"Answer:[ \t]*(-?\d+)[ \t]*$", re.MULTILINE)
_INTEGER = re.compile(r"^-?\d+$")
_CHECK = re.compile(r"^-?\d+(?:[+-]\d+)?=-?\d+ (ok|no)$")
_BACK = re.compile(r"^-?\d+(?:[+-]\d+)?=-?\d+ no, back to (\d+)$")


@dataclass(frozen=True)
class ArithConfig:
    """Difficulty knobs of the arith task.

    Attributes:
        min_operands: fewest operands in a chain (at least 2).
        max_operands: most operands in a chain.
        digits: digits per operand (1 means 0..9, d > 1 means 10^(d-1)..10^d - 1).
        min_digits: None (every operand has ``digits`` digits) or the fewest: each operand's digit count is then
            drawn uniformly from min_digits..digits, so one set of chains spans many lengths (the ladder's seed set
            can cover the prompt and line lengths of longer chains without showing a longer chain).
        test_fraction: share of all possible questions that belong to the test split.
        solution_format: "steps" (each line one operation, "37+48=85") or "carry" (each line one
            operation followed by the rest of the chain, "37+48=85-91+12"): every carry line depends
            only on the line above it, so a policy trained on short chains has a local rule to
            extend to longer ones (the self-improvement ladder, ``learning.ladder``).
        line_width: None, or pad the prompt's chain and every solution step with spaces to this many characters
            (a longer line stays as it is). Fixed-width rows put each character of a line a fixed distance below
            the one it reads in the line above, whatever the chain's length, so a policy's lookups (and its
            position encoding) are the same at 8 operands as at 3: a lever for climbing past the lengths a
            policy was trained on (the ladder's foothold, ``recipes/ladder.yaml``).
    """

    min_operands: int = 3
    max_operands: int = 4
    digits: int = 2
    min_digits: int | None = None
    test_fraction: float = 0.1
    solution_format: str = "steps"
    line_width: int | None = None

    def __post_init__(self) -> None:
        if self.solution_format not in SOLUTION_FORMATS:
            raise ConfigError(f"solution_format={self.solution_format!r} is unknown; use one of {SOLUTION_FORMATS}")
        if self.min_operands < 2:
            raise ConfigError(f"min_operands={self.min_operands} must be at least 2 (a chain needs one operation)")
        if self.max_operands < self.min_operands:
            raise ConfigError(
                f"max_operands={self.max_operands} is below min_operands={self.min_operands}; raise max_operands"
            )
        if not 1 <= self.digits <= 9:
            raise ConfigError(f"digits={self.digits} must be between 1 and 9")
        if self.min_digits is not None and (isinstance(self.min_digits, bool) or not isinstance(self.min_digits, int)
                                            or not 1 <= self.min_digits <= self.digits):
            raise ConfigError(f"min_digits={self.min_digits} must lie in 1..digits={self.digits} (or be unset: every "
                              "operand has `digits` digits)")
        if not 0.0 < self.test_fraction < 1.0:
            raise ConfigError(f"test_fraction={self.test_fraction} must lie strictly between 0 and 1")
        if self.line_width is not None and (isinstance(self.line_width, bool) or not isinstance(self.line_width, int)
                                            or not 1 <= self.line_width <= 512):
            raise ConfigError(f"line_width={self.line_width!r} must be a whole number of characters from 1 to 512 "
                              "(or unset: no padding), e.g. 32 for chains of up to 8 two-digit operands")


def parse_step(line: str) -> tuple[int, str, int, int] | None:
    """Parse "a+b=c" or "a-b=c" into (a, op, b, c); None when the line is not such a step.

    A carry line ("37+48=85-91+12", the rest of the chain after the result) parses too; its rest
    is read by ``step_rest``."""
    m = _STEP.match(line)
    if m is None:
        return None
    return int(m.group(1)), m.group(2), int(m.group(3)), int(m.group(4))


def step_rest(line: str) -> list[tuple[str, int]]:
    """The terms a carry line carries after its result ("37+48=85-91+12" -> [("-", 91), ("+", 12)])."""
    m = _STEP.match(line)
    return [] if m is None else [(op, int(b)) for op, b in _TERM.findall(m.group(5))]


def _operands(question: str) -> tuple[int, list[tuple[str, int]]]:
    m = re.match(r"^\s*(-?\d+)", question)
    if m is None:
        raise ValueError(f"question {question!r} is not an arith chain like '37+48-91'")
    first = int(m.group(1))
    terms = [(op, int(b)) for op, b in _TERM.findall(question[m.end() :])]
    return first, terms


def check_step(line: str, previous_line: str | None = None, question: str | None = None, index: int = 0,
               carry: bool = False) -> bool:
    """Whether one step line is arithmetically right and consistent with what came before.

    Args:
        line: the step, e.g. "85-91=-6".
        previous_line: the step before it; its result must be this step's left operand. For the
            first step pass None, and the left operand must be the question's first operand.
        question: the chain (e.g. "37+48-91+12"); when given, the step's operation and right
            operand must be the question's term number ``index``.
        index: position of the step among the steps (0 for the first).
        carry: the step is a carry line ("solution_format: carry"): it must carry exactly the
            question's remaining terms; a plain step must carry none.
    """
    step = parse_step(line)
    if step is None:
        return False
    a, op, b, c = step
    if c != (a + b if op == "+" else a - b):
        return False
    if previous_line is not None:
        prev = parse_step(previous_line)
        if prev is None or prev[3] != a:
            return False
    if question is not None:
        first, terms = _operands(question)
        if index >= len(terms) or terms[index] != (op, b):
            return False
        if step_rest(line) != (terms[index + 1 :] if carry else []):
            return False
        if previous_line is None and (index != 0 or a != first):
            return False
    return True


class ArithTask(Task):
    """Procedural +/- chains; see the module docstring for the format."""

    name = "arith"
    step_delimiter = "\n"

    def __init__(self, config: ArithConfig | None = None, **kwargs) -> None:
        self.config = config if config is not None else ArithConfig(**kwargs)

    def level_task(self, level: int) -> ArithTask:
        """Chains of exactly ``level`` operands, in this task's digits and solution format."""
        if isinstance(level, bool) or not isinstance(level, int) or not 2 <= level <= 64:
            raise ConfigError(f"arith level {level!r} is not an operand count the task can make; use a whole "
                             "number from 2 to 64")
        return type(self)(replace(self.config, min_operands=level, max_operands=level))

    def _pad(self, line: str) -> str:
        width = self.config.line_width
        return line if width is None else line.ljust(width)

    def sub_problem(self, problem: Problem) -> Problem | None:
        """The chain without its last term, answer-only (None below 3 operands)."""
        first, terms = _operands(problem.question)
        if len(terms) < 2:
            return None
        question = str(first) + "".join(f"{op}{b}" for op, b in terms[:-1])
        return replace(self.make_problem(question), steps=(), answer="")

    def lift_solution(self, problem: Problem, sub_text: str) -> str | None:
        """The sub-problem's step lines (its answer line dropped), each carrying the left-out last term under the
        carry format ("37+48=85-91" -> "37+48=85-91+12"), padded to ``line_width``; None when it has no step."""
        _, terms = _operands(problem.question)
        op, b = terms[-1]
        tail = f"{op}{b}" if self.config.solution_format == "carry" else ""
        lines = [s.rstrip() for s in self.split_steps(sub_text) if self.extract_answer(s) is None]
        if not lines:
            return None
        return "".join(self._pad(line + tail) + self.step_delimiter for line in lines)

    def plain_prompt(self, problem: Problem) -> str:
        return f"{self._pad(problem.question)}\n"

    def chat_question(self, problem: Problem) -> str:
        return f"Compute {problem.question}."

    def make_problem(self, question: str) -> Problem:
        """The problem (with reference steps and answer) for a chain like "37+48-91"."""
        first, terms = _operands(question)
        steps, acc = [], first
        carry = self.config.solution_format == "carry"
        for i, (op, b) in enumerate(terms):
            new = acc + b if op == "+" else acc - b
            rest = "".join(f"{o}{v}" for o, v in terms[i + 1 :]) if carry else ""
            steps.append(self._pad(f"{acc}{op}{b}={new}{rest}"))
            acc = new
        pid = f"arith-{stable_hash(question):016x}"[:22]
        return Problem(
            id=pid, question=question, answer=str(acc), steps=tuple(steps), meta={"operands": len(terms) + 1}
        )

    def _sample_question(self, rng: random.Random) -> str:
        cfg = self.config
        k = rng.randint(cfg.min_operands, cfg.max_operands)

        def operand() -> str:
            d = cfg.digits if cfg.min_digits is None else rng.randint(cfg.min_digits, cfg.digits)
            lo, hi = (0, 9) if d == 1 else (10 ** (d - 1), 10**d - 1)
            return str(rng.randint(lo, hi))

        parts = [operand()]
        for _ in range(k - 1):
            op = rng.choice("+-")
            parts.append(op + operand())
        return "".join(parts)

    def problems(self, split: str = "train", n: int | None = 1000, seed: int = 0) -> list[Problem]:
        check_split(split)
        n = 1000 if n is None else n
        rng = random.Random(f"arith-{seed}-{split}")
        seen: set[str] = set()
        out: list[Problem] = []
        attempts = 0
        while len(out) < n:
            attempts += 1
            if attempts > 100 * n + 10_000:
                raise ConfigError(
                    f"arith could only find {len(out)} distinct {split} problems of the {n} asked for with "
                    f"{self.config}; ask for fewer or widen the task (more digits or operands)"
                )
            q = self._sample_question(rng)
            if q in seen or hash_split(q, self.config.test_fraction) != split:
                continue
            seen.add(q)
            out.append(self.make_problem(q))
        return out

    def extract_answer(self, text: str) -> str | None:
        """The integer of the last "Answer: N" line or the last ``\\boxed{N}``, whichever comes last."""
        box_at, box = boxed_span(text)
        lines = list(_ANSWER_LINE.finditer(text))
        if lines and lines[-1].start() > box_at:
            return str(int(lines[-1].group(1)))
        if box is not None and _INTEGER.match(box.replace(" ", "")):
            return str(int(box.replace(" ", "")))
        return None

    def answers_match(self, predicted: str, reference: str) -> bool:
        try:
            return int(predicted.strip()) == int(reference.strip())
        except ValueError:
            return False

    # ---------------------------------------------------------------- verbal forms of a long trace
    # a step a+b=c is checked by its inverse c-b, written as an ordinary step line (what the model
    # already writes), then a two-letter verdict against the result it started from: "37+48=85" is
    # followed by "85-48=37 ok", "37+48=84" by "84-48=36 no" and the step written again
    def step_verdict(self, problem: Problem, before, step: str) -> bool | None:
        answer = self.extract_answer(step)
        if answer is not None:  # right when it reads the last result once every term is used
            last = parse_step(before[-1]) if before else None
            return (last is not None and len(before) == len(_operands(problem.question)[1])
                    and int(answer) == last[3])
        return check_step(step, before[-1] if before else None, problem.question, index=len(before),
                          carry=self.config.solution_format == "carry")

    def _inverse(self, before, step: str) -> str | None:
        parsed = parse_step(step)
        if parsed is None:  # an answer line is checked against the last result: "85=5"
            last = parse_step(before[-1]) if before else None
            answer = self.extract_answer(step)
            return None if last is None or answer is None else f"{last[3]}={answer}"
        _, op, b, c = parsed
        inv = "-" if op == "+" else "+"
        return f"{c}{inv}{b}={c - b if op == '+' else c + b}"

    def check_text(self, problem: Problem, before, step: str) -> str:
        inverse = self._inverse(before, step) if parse_step(step) is not None else None
        return "" if inverse is None else f"{inverse} ok"

    def correction_text(self, problem: Problem, before, step: str) -> str:
        inverse = self._inverse(before, step)
        return "no" if inverse is None else f"{inverse} no"

    def backtrack_text(self, problem: Problem, before, step: str, k: int) -> str:
        inverse = self._inverse(before, step)
        return f"{inverse or step.strip()} no, back to {k}"

    def trace_event(self, line: str) -> tuple[str, int | None]:
        text = line.strip()
        m = _BACK.match(text)
        if m:
            return "backtrack", int(m.group(1))
        m = _CHECK.match(text)
        if m:
            return ("check", None) if m.group(1) == "ok" else ("correction", None)
        if text == "no":
            return "correction", None
        return super().trace_event(line)

    def step_labels(self, problem: Problem, text: str) -> list[bool]:
        """Ground-truth process labels: one per step of ``text`` (split on the delimiter).

        Step i is True when it and every step before it is right and consistent with the
        question; after the first wrong step every label is False (a wrong prefix cannot be
        repaired). The final "Answer: x" (or "\\boxed{x}") step is True when x equals the last step's result
        and all the question's terms have been used, i.e. when the answer is right.
        """
        steps = self.split_steps(text)
        labels: list[bool] = []
        ok, prev = True, None
        for i, line in enumerate(steps):
            if ok:
                answer = self.extract_answer(line)
                if answer is not None:
                    ok = self.answers_match(answer, problem.answer)
                else:
                    ok = check_step(line, prev, problem.question, index=i,
                                    carry=self.config.solution_format == "carry")
                    prev = line
            labels.append(ok)
        return labels
