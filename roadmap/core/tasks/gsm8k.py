"""``gsm8k``: grade-school math word problems (Cobbe et al., arXiv 2110.14168).

Rows have a ``question`` and an ``answer``: a worked solution, one step per line, with
calculator annotations, ending in the final-answer line::

    Natalia sold 48/2 = <<48/2=24>>24 clips in May.
    Natalia sold 48+24 = <<48+24=72>>72 clips altogether in April and May.
    #### 72

Steps are the lines before "####" with the annotations removed; ``Problem.answer`` is the
normalised number ("#### 1,600" -> "1600"). Solutions are written the same way (step lines, then
"#### N"; under a chat prompt format, blank-line steps and "$\\boxed{N}$"), the final answer is read
from "####" or the last ``\\boxed{}``, and answers are compared as numbers. Problems come from the Hub (``openai/gsm8k``) or,
offline, from a local file or a folder with the Hub layout (see ``roadmap.core.tasks._source``).
"""

from __future__ import annotations

from pathlib import Path

from roadmap.core.tasks._numeric import extract_numeric_answer, numbers_match, split_hash_solution
from roadmap.core.tasks._source import SourceTask
from roadmap.core.tasks.base import BadRowError, stable_hash
from roadmap.core.types import Problem

__all__ = ["GSM8KTask"]


class GSM8KTask(SourceTask):
    """GSM8K from the Hub, a local file or a local folder; see the module docstring.

    Args:
        source: a Hub id ("openai/gsm8k"); a local ``.jsonl``/``.json``/``.parquet`` file with
            columns ``question`` and ``answer`` (split by ``hash_split(question, test_fraction)``);
            or a folder laid out like the Hub repo (``<folder>/main/train-00000-of-00001.parquet``
            and ``<folder>/main/test-00000-of-00001.parquet``, or ``train*.jsonl``/``test*.jsonl``).
        config: the Hub config ("main" or "socratic"), also the folder's subfolder when present.
        on_bad_row: "raise" on a row without a numeric "#### N" answer, or "skip" such rows (counted in a warning).
        test_fraction: share of questions put in test when the source has a single split.
    """

    name = "gsm8k"
    step_delimiter = "\n"
    answer_prefix = "#### "
    local_hint = "GSM8KTask(source='/data/gsm8k') with /data/gsm8k/main/{train,test}-00000-of-00001.parquet"

    def __init__(
        self,
        source: str | Path = "openai/gsm8k",
        config: str | None = "main",
        on_bad_row: str = "raise",
        test_fraction: float = 0.2,
    ) -> None:
        super().__init__(source, on_bad_row=on_bad_row, test_fraction=test_fraction)
        self.hub_config = config

    def parse_row(self, index: int, row: dict, origin: str) -> Problem:
        """The problem of one ``{"question", "answer"}`` row; BadRowError when unusable."""
        question, solution = row.get("question"), row.get("answer")
        if not isinstance(question, str) or not question.strip():
            raise BadRowError(f"column 'question' is missing or empty (got {question!r})")
        if not isinstance(solution, str) or not solution.strip():
            raise BadRowError(f"column 'answer' is missing or empty (got {solution!r})")
        steps, answer = split_hash_solution(solution)
        question = question.strip()
        return Problem(
            id=f"gsm8k-{stable_hash(question):016x}",
            question=question,
            answer=answer,
            steps=tuple(steps),
            meta={"origin": origin, "row": index},
        )

    def extract_answer(self, text: str) -> str | None:
        """The number after the last "####" or in the last ``\\boxed{}`` (normalised), or None; strict,
        see ``extract_numeric_answer``."""
        return extract_numeric_answer(text)

    def answers_match(self, predicted: str, reference: str) -> bool:
        """Numeric equality ("1,234.50" == "1234.5"); math-verify for non-numeric answers."""
        return numbers_match(predicted, reference)
