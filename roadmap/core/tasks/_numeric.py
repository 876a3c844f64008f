"""GSM8K-style final answers: the "#### N" line or a ``\\boxed{N}``, number normalisation, comparison.

GSM8K (arXiv 2110.14168) ends every worked solution with a line "#### N"; chat models end theirs
with "$\\boxed{N}$" instead. The gsm8k and gsm_symbolic tasks share this format, so its parsing
lives here, once.
"""

from __future__ import annotations

import re

from roadmap.core.tasks._answers import boxed_span
from roadmap.core.tasks._verify import exact_rational, verify_math
from roadmap.core.tasks.base import BadRowError

__all__ = ["ANSWER_MARK", "normalize_number", "extract_hash_answer", "extract_numeric_answer", "split_hash_solution",
           "numbers_match"]

ANSWER_MARK = "####"
_NUMBER = re.compile(r"^[-+]?(?:\d+(?:\.\d*)?|\.\d+)$")
_CURRENCY = ("\\$", "$", "£", "€")
_CALCULATOR = re.compile(r"<<[^<>]*>>")


def normalize_number(text: str) -> str | None:
    """The canonical form of a plain number, or None when ``text`` is not one.

    Accepts commas as thousands separators, a leading currency sign ("$", "\\$", "£", "€",
    before or after the minus), surrounding spaces and one trailing period. The canonical form
    has no commas, no trailing zeros after the decimal point and no "-0":
    "$1,234.50." -> "1234.5", "8.0" -> "8", "-5" -> "-5". It is built from the digits as written,
    so a number of any length keeps every digit (no float, no 28-digit Decimal context).
    """
    s = text.strip()
    if s.endswith(".") and not s.endswith(".."):
        s = s[:-1].rstrip()
    sign = ""
    if s[:1] in ("+", "-"):
        sign, s = s[0], s[1:].lstrip()
    for sym in _CURRENCY:
        if s.startswith(sym):
            s = s[len(sym) :].lstrip()
            break
    if not sign and s[:1] in ("+", "-"):
        sign, s = s[0], s[1:]
    s = sign + s.replace(",", "")
    if not _NUMBER.match(s):
        return None
    negative = s.startswith("-")
    whole, _, frac = s.lstrip("+-").partition(".")
    whole, frac = whole.lstrip("0") or "0", frac.rstrip("0")
    if whole == "0" and not frac:
        return "0"
    return ("-" if negative else "") + whole + (f".{frac}" if frac else "")


def extract_hash_answer(text: str) -> str | None:
    """The number after the last "####" in ``text``, normalised; None when there is none.

    Strict on purpose: the rest of that line must be a single number (see ``normalize_number``),
    so "#### 72" and "####$1,200." count but "#### 72 clips", "#### about 5" and text without
    "####" give None.
    """
    i = text.rfind(ANSWER_MARK)
    if i < 0:
        return None
    rest = text[i + len(ANSWER_MARK) :].split("\n", 1)[0]
    return normalize_number(rest)


def extract_numeric_answer(text: str) -> str | None:
    """The final answer of a GSM-style solution: the "#### N" line or the last ``\\boxed{...}``,
    whichever comes last in ``text``; None when neither is there.

    The "####" reading is ``extract_hash_answer``'s (strict). A box holding a number is
    normalised ("$\\boxed{1,234}$" -> "1234", "\\boxed{72.}" -> "72"); a box holding anything
    else ("\\frac{1}{2}") is returned as written, for math-verify to compare.
    """
    box_at, box = boxed_span(text)
    if box_at > text.rfind(ANSWER_MARK):
        return None if box is None else (normalize_number(box) or box)
    return extract_hash_answer(text)


def split_hash_solution(solution: str) -> tuple[list[str], str]:
    """Split a worked solution ending in "#### N" into (steps, normalised N).

    Steps are the non-empty lines before the last "####", stripped, with GSM8K calculator
    annotations ("<<48/2=24>>") removed. Raises BadRowError naming what is wrong when there is
    no "####" line or its value is not a number.
    """
    i = solution.rfind(ANSWER_MARK)
    if i < 0:
        tail = solution.strip()[-80:]
        raise BadRowError(f"the solution has no final '#### N' line (it ends with {tail!r})")
    answer_line = solution[i + len(ANSWER_MARK) :].split("\n", 1)[0]
    answer = normalize_number(answer_line)
    if answer is None:
        raise BadRowError(f"the final answer {answer_line.strip()!r} after '####' is not a number")
    steps = [_CALCULATOR.sub("", line).strip() for line in solution[:i].split("\n")]
    return [s for s in steps if s], answer


def numbers_match(predicted: str, reference: str) -> bool:
    """Exact numeric equality of two answers ("1,234.50" == "1234.5" == "$1234.5.", "3/4" == "0.75"), for
    numbers of any size; math-verify decides when either side is not a plain number or fraction."""
    a, b = normalize_number(predicted), normalize_number(reference)
    if a is not None and b is not None:
        return exact_rational(a) == exact_rational(b)
    return verify_math(predicted, reference)
