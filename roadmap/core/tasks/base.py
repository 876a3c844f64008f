"""The Task protocol: a task owns its problems and its answer checker (nanochat style).

A task yields ``Problem``s for a split, turns a problem into a prompt, formats reference
solutions as one step per delimiter, extracts final answers from model text and checks them.
Splits are disjoint by construction: procedural tasks put each question in exactly one split
by a stable hash of its text, and file-backed tasks drop from train any question in test.
"""

from __future__ import annotations

import hashlib
import logging
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence

from roadmap.core.errors import BadRowError, ConfigError
from roadmap.core.types import Problem

logger = logging.getLogger(__name__)

SPLITS = ("train", "test")
BAD_ROW_POLICIES = ("raise", "skip")


def selection_correct(task, problem: Problem, answer: str | None, candidates: Sequence[str]) -> bool:
    """Whether what a selection chose is right: ``task.is_correct`` on the first of ``candidates`` (best first, as
    a ``SearchResult`` holds them) whose final answer is ``answer``.

    Votes choose an answer and best-of-N and search a solution carrying one; the task's whole check then judges
    that solution. For a task whose check is the final answer alone this is ``answers_match(answer, reference)``;
    countdown's check also walks the moves, so a chosen "Answer: <target>" (which every attempt writes, the target
    being in the prompt) over illegal moves is wrong. ``answer`` None is wrong; with no candidate carrying
    ``answer`` the answer alone is compared."""
    if answer is None:
        return False
    for text in candidates:
        got = task.extract_answer(text or "")
        if got is not None and task.answers_match(got, answer):
            return bool(task.is_correct(problem, text))
    return bool(task.answers_match(answer, problem.answer))


def stable_hash(text: str) -> int:
    """A process-independent 64-bit hash of ``text`` (Python's ``hash`` is salted)."""
    return int.from_bytes(hashlib.sha1(text.encode("utf-8")).digest()[:8], "big")


def hash_split(text: str, test_fraction: float) -> str:
    """The split ("train" or "test") that ``text`` belongs to, by a stable hash."""
    return "test" if (stable_hash(text) % 10_000) < test_fraction * 10_000 else "train"


def check_split(split: str) -> None:
    if split not in SPLITS:
        raise ConfigError(f"split={split!r} is not a split; use one of {SPLITS}")


def check_bad_row_policy(on_bad_row: str) -> None:
    if on_bad_row not in BAD_ROW_POLICIES:
        raise ConfigError(f"on_bad_row={on_bad_row!r} is not a policy; use one of {BAD_ROW_POLICIES}")


def collect_rows(
    rows: Iterable[dict],
    parse: Callable[[int, dict], Problem],
    on_bad_row: str,
    source: str,
) -> list[Problem]:
    """Parse ``rows`` into problems; a bad row raises (naming it) or is skipped and counted.

    The same question twice with different answers is a bad row too (naming both rows): one of them
    would grade right answers wrong. The same question with the same answer is kept.
    """
    check_bad_row_policy(on_bad_row)
    out, skipped = [], 0
    seen: dict[str, tuple[int, str]] = {}  # question -> (first row, its answer)
    for i, row in enumerate(rows):
        try:
            problem = parse(i, row)
            key = " ".join(str(problem.question).split())
            first = seen.setdefault(key, (i, problem.answer))
            if not _same_answer(first[1], problem.answer):
                raise BadRowError(f"its question is row {first[0]}'s, but its answer {problem.answer!r} is not "
                                  f"row {first[0]}'s {first[1]!r}; keep the right one")
            out.append(problem)
        except BadRowError as err:
            if on_bad_row == "raise":
                raise BadRowError(
                    f"{source}: row {i} is unusable: {err}. Fix the row, or pass on_bad_row='skip' to drop such rows."
                ) from None
            skipped += 1
    if skipped:
        logger.warning("%s: skipped %d unusable row(s) of %d", source, skipped, skipped + len(out))
    return out


def _same_answer(a, b) -> bool:
    """Whether two reference answers agree: equal as text, or as exact numbers ("1,000" and "1000")."""
    from roadmap.core.tasks._verify import exact_rational

    if str(a).strip() == str(b).strip():
        return True
    x, y = exact_rational(str(a)), exact_rational(str(b))
    return x is not None and x == y


#: methods a Task subclass may override under their old names; ``__init_subclass__`` moves such an
#: override to the plain-format hook, so that the bound prompt format still applies to the subclass
_PLAIN_HOOKS = {"prompt": "plain_prompt", "format_answer": "plain_answer"}


class Task(ABC):
    """A source of math problems with its own prompt format and answer checker.

    Subclasses set ``name`` and ``step_delimiter`` and implement ``problems``,
    ``extract_answer`` and ``answers_match``; the rest has working defaults. The task's own
    prompt and final-answer step are ``plain_prompt`` and ``plain_answer`` (a subclass that
    overrides ``prompt`` or ``format_answer`` instead overrides these). ``set_prompt_format``
    binds another format (chat template, few-shot; ``roadmap.core.tasks.prompts``), which
    ``prompt``, ``format_answer``, ``format_solution`` and ``step_delimiter`` then follow.
    """

    name: str = "task"
    step_delimiter: str = "\n"
    #: prefix of the final-answer line written by ``plain_answer``
    answer_prefix: str = "Answer: "
    _binding = None  # a prompts.PromptBinding once set_prompt_format is called

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        for old, hook in _PLAIN_HOOKS.items():
            if old in cls.__dict__ and hook not in cls.__dict__:
                setattr(cls, hook, cls.__dict__[old])
                setattr(cls, old, getattr(Task, old))

    @abstractmethod
    def problems(self, split: str = "train", n: int | None = None, seed: int = 0) -> list[Problem]:
        """Up to ``n`` problems of ``split`` ("train" or "test"), deterministic in ``seed``."""

    @abstractmethod
    def extract_answer(self, text: str) -> str | None:
        """The final answer written in a model's solution ``text``, or None if there is none."""

    @abstractmethod
    def answers_match(self, predicted: str, reference: str) -> bool:
        """Whether an extracted answer equals the reference answer."""

    def extract_answer_flexible(self, text: str) -> str | None:
        """A lenient reading of the final answer, reported beside the strict one (never deciding).

        The strict answer when there is one; else the number after the last "the answer is", else
        the last number in ``text`` (lm-evaluation-harness's "flexible-extract"). Numbers are
        normalised ("1,200." -> "1200").
        """
        from roadmap.core.tasks._answers import flexible_answer
        from roadmap.core.tasks._numeric import normalize_number

        strict = self.extract_answer(text)
        if strict is not None:
            return strict
        loose = flexible_answer(text)
        return None if loose is None else (normalize_number(loose) or loose)

    # ------------------------------------------------------------------ prompt format
    def set_prompt_format(self, fmt, tokenizer=None) -> Task:
        """Write prompts and solutions in ``fmt`` (a ``prompts.PromptFormat``) from now on; returns self.

        ``tokenizer`` is the policy's; a chat format needs it (its chat template), and raises
        ``ConfigError`` naming it when it has no template. Few-shot formats draw their shots from
        this task's train split here.
        """
        from roadmap.core.tasks.prompts import bind_prompt

        self._binding = bind_prompt(self, fmt, tokenizer)
        self.step_delimiter = fmt.delimiter(type(self).step_delimiter)
        return self

    @property
    def prompt_format(self):
        """The bound ``prompts.PromptFormat`` (the plain one when none was set)."""
        from roadmap.core.tasks.prompts import PromptFormat

        return self._binding.format if self._binding is not None else PromptFormat()

    def plain_prompt(self, problem: Problem) -> str:
        """The task's own prompt text (the plain format)."""
        return f"Question: {problem.question}\nAnswer:\n"

    def chat_question(self, problem: Problem) -> str:
        """The user turn of ``problem`` under a chat format."""
        return problem.question

    def prompt(self, problem: Problem) -> str:
        """The text the policy continues, in the bound format; the solution starts right after it."""
        if self._binding is None or not (self._binding.format.chat or self._binding.format.num_shots):
            return self.plain_prompt(problem)
        return self._binding.prompt(self, problem)

    def plain_answer(self, answer: str) -> str:
        """The task's own final-answer step for ``answer`` (the plain format)."""
        return f"{self.answer_prefix}{answer}"

    def format_answer(self, answer: str) -> str:
        """The final-answer step for ``answer`` (without delimiter): "$\\boxed{...}$" under chat."""
        if self._binding is not None and self._binding.format.chat:
            from roadmap.core.tasks.prompts import chat_answer

            return chat_answer(answer)
        return self.plain_answer(answer)

    def format_solution(self, steps: Sequence[str], answer: str) -> str:
        """A solution: one step per delimiter, then the final-answer step."""
        return self.step_delimiter.join([*steps, self.format_answer(answer)])

    def reference_solution(self, problem: Problem) -> str:
        """The reference solution of ``problem`` in this task's solution format."""
        return self.format_solution(problem.steps, problem.answer)

    def training_pair(self, problem: Problem, solution: str) -> tuple[str, str]:
        """(prompt, completion) for supervised training on ``solution``, as TRL encodes string rows
        (with special tokens): under chat the completion ends with the end-of-turn (EOS) token and
        a prompt starting with the BOS text loses it when the tokenizer adds its own."""
        return self.training_text(self.prompt(problem), solution)

    def training_text(self, prompt: str, solution: str) -> tuple[str, str]:
        """``training_pair`` for a prompt already rendered (a search tree's ``prompt``)."""
        if self._binding is None:
            return prompt, solution
        return self._binding.training_prompt(prompt), solution + self._binding.completion_end()

    # ------------------------------------------------------------------ long chains of thought
    # the verbal forms of a trace (learning.traces writes them, rewards.behaviour reads them back);
    # a task with an exact step checker overrides all four, the defaults only name the events
    def step_verdict(self, problem: Problem, before: Sequence[str], step: str) -> bool | None:
        """Whether ``step`` is right after the accepted steps ``before``; None when the task cannot tell."""
        return None

    def check_text(self, problem: Problem, before: Sequence[str], step: str) -> str:
        """The self-check written after a step judged right ("" writes none)."""
        return ""

    def correction_text(self, problem: Problem, before: Sequence[str], step: str) -> str:
        """The self-check written after a wrong step, before the step is written again."""
        return "Wait, that step is wrong."

    def backtrack_text(self, problem: Problem, before: Sequence[str], step: str, k: int) -> str:
        """Written after a wrong branch from step ``k`` (1-based; ``step`` is that wrong step, ``before``
        the steps before it) was followed for a while: back to step ``k``, which is written again."""
        return f"Let me go back to step {k}."

    def trace_event(self, line: str) -> tuple[str, int | None]:
        """What one line of a trace is: ("check", None), ("correction", None), ("backtrack", k) or ("step", None)."""
        if line.strip() == "Wait, that step is wrong.":
            return "correction", None
        m = re.match(r"^\s*Let me go back to step (\d+)\.\s*$", line)
        if m:
            return "backtrack", int(m.group(1))
        return "step", None

    def level_task(self, level: int) -> Task:
        """This task at one difficulty level: the rungs of the self-improvement ladder (``roadmap.app.ladder``).

        A task declares its levels by overriding this (arith: the number of operands). The default
        refuses, naming the task."""
        raise ConfigError(f"task {self.name!r} declares no difficulty levels; the ladder needs a task whose "
                         "level_task(level) returns it at one level (arith: levels are operand counts)")

    def sub_problem(self, problem: Problem) -> Problem | None:
        """A smaller problem whose solution starts this one's, or None (the default: the task declares none).

        With ``lift_solution`` it is a decomposition the ladder's lifted search uses (``LadderConfig.lift``): the
        policy solves the smaller problem, its steps are lifted into a start of this problem's solution, and the
        policy writes the rest. The sub-problem is answer-only: no worked solution is made or read. arith: the
        chain without its last term."""
        return None

    def lift_solution(self, problem: Problem, sub_text: str) -> str | None:
        """The start of a solution of ``problem`` (its first steps, each followed by the delimiter) that a solution
        ``sub_text`` of ``sub_problem(problem)`` gives, or None when it gives none. It rewrites the policy's own
        steps as the task's format asks (arith's carry lines also carry the term the sub-problem left out), and
        never reads a worked solution or a step checker."""
        return None

    def split_steps(self, text: str) -> list[str]:
        """Split a solution into its steps (delimiters removed, empty steps dropped)."""
        return [s for s in text.split(self.step_delimiter) if s.strip()]

    def is_correct(self, problem: Problem, text: str) -> bool:
        """Whether ``text`` ends in a final answer equal to the problem's reference answer.

        Garbage model output is False, not an error: anything without a parsable answer is
        False, and the errors that parsing or comparing odd numbers can raise (ValueError,
        ArithmeticError, RecursionError) count as a wrong answer, with a warning that names the
        problem and the text. Any other exception is a bug in the task and propagates.
        """
        try:
            predicted = self.extract_answer(text)
            return predicted is not None and self.answers_match(predicted, problem.answer)
        except (ValueError, ArithmeticError, RecursionError) as err:
            logger.warning("%s: checking an answer to problem %s failed (%s: %s); counted as wrong. Text tail: %r",
                           self.name, problem.id, type(err).__name__, err, text[-200:])
            return False

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"
