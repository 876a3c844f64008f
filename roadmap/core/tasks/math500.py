"""``math500``: the MATH-500 competition-math problems (Lightman et al., arXiv 2305.20050).

MATH-500 is the 500-problem test subset of MATH (Hendrycks et al., arXiv 2103.03874) chosen in
"Let's Verify Step by Step". Rows have ``problem``, ``solution`` (LaTeX, paragraphs separated by
blank lines), ``answer`` and optionally ``subject``, ``level``, ``unique_id``. Steps are the
solution's paragraphs; a solution ends with the step "The final answer is $\\boxed{X}$.", the
answer is read from the last ``\\boxed{...}`` and checked with math-verify, so "\\frac{1}{2}",
"\\dfrac12" and "0.5" are the same answer.

The release has only a test split; with a single split, questions are divided between train and
test by ``hash_split(problem, test_fraction)``.
"""

from __future__ import annotations

from pathlib import Path

from roadmap.core.tasks._answers import last_boxed
from roadmap.core.tasks._source import SourceTask
from roadmap.core.tasks._verify import verify_math
from roadmap.core.tasks.base import BadRowError, stable_hash
from roadmap.core.types import Problem

__all__ = ["Math500Task", "last_boxed"]

_META_COLUMNS = ("subject", "level", "unique_id")


class Math500Task(SourceTask):
    """MATH-500 from the Hub, a local file or a local folder; see the module docstring.

    Args:
        source: a Hub id ("HuggingFaceH4/MATH-500", loaded with ``split="test"``); a local
            ``.jsonl``/``.json``/``.parquet`` file; or a folder laid out like the Hub repo
            (``<folder>/test.jsonl``, optionally ``train*.jsonl`` too).
        on_bad_row: "raise" on a row without a problem or answer, or "skip" such rows.
        test_fraction: share of problems put in test when the source has a single split.
    """

    name = "math500"
    step_delimiter = "\n\n"
    hub_splits = ("test",)
    local_hint = "Math500Task(source='/data/MATH-500') with /data/MATH-500/test.jsonl"

    def __init__(
        self, source: str | Path = "HuggingFaceH4/MATH-500", on_bad_row: str = "raise", test_fraction: float = 0.5
    ) -> None:
        super().__init__(source, on_bad_row=on_bad_row, test_fraction=test_fraction)

    def parse_row(self, index: int, row: dict, origin: str) -> Problem:
        """The problem of one ``{"problem", "solution", "answer"}`` row; BadRowError when unusable."""
        question, solution, answer = row.get("problem"), row.get("solution"), row.get("answer")
        if not isinstance(question, str) or not question.strip():
            raise BadRowError(f"column 'problem' is missing or empty (got {question!r})")
        if answer is None or not str(answer).strip():
            raise BadRowError(f"column 'answer' is missing or empty (got {answer!r})")
        if solution is not None and not isinstance(solution, str):
            raise BadRowError(f"column 'solution' is {type(solution).__name__}, not text")
        steps = [p.strip() for p in (solution or "").split("\n\n") if p.strip()]
        question = question.strip()
        meta = {k: row[k] for k in _META_COLUMNS if row.get(k) is not None}
        meta.update(origin=origin, row=index)
        return Problem(
            id=f"math500-{stable_hash(question):016x}",
            question=question,
            answer=str(answer).strip(),
            steps=tuple(steps),
            meta=meta,
        )

    def plain_prompt(self, problem: Problem) -> str:
        return f"Problem: {problem.question}\nSolution:\n"

    def plain_answer(self, answer: str) -> str:
        return f"The final answer is $\\boxed{{{answer}}}$."

    def extract_answer(self, text: str) -> str | None:
        """The content of the last ``\\boxed{...}`` in ``text``, or None; see ``last_boxed``."""
        return last_boxed(text)

    def answers_match(self, predicted: str, reference: str) -> bool:
        """Equality by math-verify ("\\frac{1}{2}" == "0.5"), after a cheap exact-text check."""
        if "".join(predicted.split()) == "".join(reference.strip().split()) and predicted.strip():
            return True
        return verify_math(predicted, reference)
