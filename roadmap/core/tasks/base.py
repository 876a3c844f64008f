"""The Task protocol: a task owns its problems and its answer checker (nanochat style).

A task yields ``Problem``s for a split, turns a problem into a prompt, formats reference
solutions as one step per delimiter, extracts final answers from model text and checks them.
Splits are disjoint by construction: procedural tasks put each question in exactly one split
by a stable hash of its text, and file-backed tasks drop from train any question in test.
"""

from __future__ import annotations

import hashlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence

from roadmap.core.types import Problem

logger = logging.getLogger(__name__)

SPLITS = ("train", "test")
BAD_ROW_POLICIES = ("raise", "skip")


class BadRowError(ValueError):
    """A source row has no usable question or answer."""


def stable_hash(text: str) -> int:
    """A process-independent 64-bit hash of ``text`` (Python's ``hash`` is salted)."""
    return int.from_bytes(hashlib.sha1(text.encode("utf-8")).digest()[:8], "big")


def hash_split(text: str, test_fraction: float) -> str:
    """The split ("train" or "test") that ``text`` belongs to, by a stable hash."""
    return "test" if (stable_hash(text) % 10_000) < test_fraction * 10_000 else "train"


def check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split={split!r} is not a split; use one of {SPLITS}")


def check_bad_row_policy(on_bad_row: str) -> None:
    if on_bad_row not in BAD_ROW_POLICIES:
        raise ValueError(f"on_bad_row={on_bad_row!r} is not a policy; use one of {BAD_ROW_POLICIES}")


def collect_rows(
    rows: Iterable[dict],
    parse: Callable[[int, dict], Problem],
    on_bad_row: str,
    source: str,
) -> list[Problem]:
    """Parse ``rows`` into problems; a bad row raises (naming it) or is skipped and counted."""
    check_bad_row_policy(on_bad_row)
    out, skipped = [], 0
    for i, row in enumerate(rows):
        try:
            out.append(parse(i, row))
        except BadRowError as err:
            if on_bad_row == "raise":
                raise BadRowError(
                    f"{source}: row {i} is unusable: {err}. Fix the row, or pass on_bad_row='skip' to drop such rows."
                ) from None
            skipped += 1
    if skipped:
        logger.warning("%s: skipped %d unusable row(s) of %d", source, skipped, skipped + len(out))
    return out


class Task(ABC):
    """A source of math problems with its own prompt format and answer checker.

    Subclasses set ``name`` and ``step_delimiter`` and implement ``problems``,
    ``extract_answer`` and ``answers_match``; the rest has working defaults.
    """

    name: str = "task"
    step_delimiter: str = "\n"
    #: prefix of the final-answer line written by ``format_solution``
    answer_prefix: str = "Answer: "

    @abstractmethod
    def problems(self, split: str = "train", n: int | None = None, seed: int = 0) -> list[Problem]:
        """Up to ``n`` problems of ``split`` ("train" or "test"), deterministic in ``seed``."""

    @abstractmethod
    def extract_answer(self, text: str) -> str | None:
        """The final answer written in a model's solution ``text``, or None if there is none."""

    @abstractmethod
    def answers_match(self, predicted: str, reference: str) -> bool:
        """Whether an extracted answer equals the reference answer."""

    def prompt(self, problem: Problem) -> str:
        """The text the policy continues; the solution starts right after it."""
        return f"Question: {problem.question}\nAnswer:\n"

    def format_answer(self, answer: str) -> str:
        """The final-answer step for ``answer`` (without delimiter)."""
        return f"{self.answer_prefix}{answer}"

    def format_solution(self, steps: Sequence[str], answer: str) -> str:
        """A solution: one step per delimiter, then the final-answer step."""
        return self.step_delimiter.join([*steps, self.format_answer(answer)])

    def reference_solution(self, problem: Problem) -> str:
        """The reference solution of ``problem`` in this task's solution format."""
        return self.format_solution(problem.steps, problem.answer)

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
