"""Final answers as models write them: the last ``\\boxed{...}`` and a flexible fallback.

Chat models trained for math (Qwen2.5-Math, Llama-3 Instruct, DeepSeek) end a solution with
"... the final answer is $\\boxed{72}$." ``last_boxed`` reads that box (nested braces allowed).
``flexible_answer`` is the lenient reading that lm-evaluation-harness reports beside its strict
one as "flexible-extract" (its gsm8k task): the number after the last "the answer is", else the
last number anywhere in the text. Strict readings decide correctness everywhere in this library;
the flexible one is only reported (``roadmap.app.evaluate``), to tell format errors from wrong math.
"""

from __future__ import annotations

import re

__all__ = ["last_boxed", "boxed_span", "flexible_answer", "BOXED"]

BOXED = "\\boxed"
# "The answer is 72", "the final answer is: $1,200.", "Answer is -3"
_ANSWER_IS = re.compile(r"answer\s+is\s*:?\s*\$?\\?\$?\s*(-?[\d,]*\.?\d+)", re.IGNORECASE)
# a number as lm-evaluation-harness's flexible-extract finds it: "-1,234.5", "72", ".5"
_ANY_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")


def _boxed_content(text: str, start: int) -> str | None:
    """The argument of the ``\\boxed`` at ``start``: "{...}" brace-matched, or one bare token."""
    i = start + len(BOXED)
    if i < len(text) and text[i] == "{":
        depth = 0
        for j in range(i, len(text)):
            if text[j] == "{" and text[j - 1] != "\\":
                depth += 1
            elif text[j] == "}" and text[j - 1] != "\\":
                depth -= 1
                if depth == 0:
                    return text[i + 1 : j].strip() or None
        return None  # unbalanced, e.g. a solution cut off mid-answer
    if i < len(text) and text[i] == " ":  # "\boxed 5": the token up to a space or "$"
        token = text[i:].lstrip().split(None, 1)[0] if text[i:].strip() else ""
        token = token.split("$", 1)[0].rstrip(".,")
        return token or None
    return None


def boxed_span(text: str) -> tuple[int, str | None]:
    """(start of the last ``\\boxed`` in ``text`` or -1, its content or None); see ``last_boxed``."""
    start = text.rfind(BOXED)
    return start, (_boxed_content(text, start) if start >= 0 else None)


def last_boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{...}`` (nested braces allowed) or ``\\boxed X`` in ``text``.

    Strict: when that last box is empty, unbalanced or malformed, the answer is None even if an
    earlier box exists (an earlier box is usually an intermediate result).
    """
    return boxed_span(text)[1]


def flexible_answer(text: str) -> str | None:
    """The number after the last "the answer is" in ``text``, else the last number; None if none.

    Commas are kept (callers normalise): "The answer is $1,200." -> "1,200"; "so 5 + 3 = 8" -> "8".
    """
    said = _ANSWER_IS.findall(text)
    if said:
        return said[-1]
    numbers = _ANY_NUMBER.findall(text)
    return numbers[-1].rstrip(",") if numbers else None
