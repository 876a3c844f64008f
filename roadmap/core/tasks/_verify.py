"""Thread-safe answer equivalence through math-verify (huggingface/Math-Verify).

math-verify bounds its parsing and comparison time with ``signal.alarm``, which Python only
allows in the main thread; called from any other thread with a timeout it raises ValueError.
``verify_math`` therefore passes its timeout only in the main thread and runs without one
elsewhere (inputs here are short extracted answers, so an unbounded parse is not a real risk).

Numbers are compared exactly before math-verify is asked (``exact_rational``): math-verify rounds
numbers (to a few significant digits) before comparing, so two large integers that differ in their
last digits would be graded equal. Integers, decimals and fractions ("3/4", "\\frac{3}{4}") are
read as rationals, whatever their size, and never through a float.
"""

from __future__ import annotations

import logging
import re
import threading
from fractions import Fraction

__all__ = ["as_latex", "exact_rational", "verify_math"]

logger = logging.getLogger(__name__)


def as_latex(answer: str) -> str:
    """``answer`` wrapped in "$...$" so that math-verify's LaTeX extractor picks it up.

    Text already in math delimiters ("$x$", "\\(x\\)", "\\[x\\]") or holding a ``\\boxed``
    is returned unchanged; "\\$18.90" (an escaped dollar sign) is wrapped like any other.
    """
    s = answer.strip()
    if "\\boxed" in s:
        return s
    if len(s) > 1 and s.startswith("$") and s.endswith("$") and not s.endswith("\\$"):
        return s
    if (s.startswith("\\(") and s.endswith("\\)")) or (s.startswith("\\[") and s.endswith("\\]")):
        return s
    return f"${s}$"


# "-1234.50", "1,234,567", ".5", "+3." (commas only as thousands separators)
_DECIMAL = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d*)?")
_SLASH = re.compile(r"([-+]?\d+)\s*/\s*(\d+)")
_FRAC = re.compile(r"([-+]?)\\[dt]?frac\s*\{\s*([-+]?\d+)\s*\}\s*\{\s*(\d+)\s*\}")


def _unwrap(text: str) -> str:
    s = text.strip()
    for left, right in (("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"), ("\\boxed{", "}")):
        if len(s) > len(left) + len(right) and s.startswith(left) and s.endswith(right):
            s = s[len(left): -len(right)].strip()
    return s


def exact_rational(text: str) -> Fraction | None:
    """``text`` as an exact rational when it is a plain integer, decimal or fraction, else None.

    "1,234.50" -> 2469/2, "-3/4" and "\\frac{-3}{4}" -> -3/4, "12345678901234567890" -> itself; "x+1",
    "\\sqrt{2}", "1,23" (not a thousands separator) and "3/0" give None. Math delimiters ("$...$") and
    one ``\\boxed{...}`` around the number are allowed.
    """
    s = _unwrap(text)
    if _DECIMAL.fullmatch(s) and any(c.isdigit() for c in s):
        return Fraction(s.replace(",", "").rstrip(".") or "0")
    m = _SLASH.fullmatch(s) or _FRAC.fullmatch(s)
    if m is None:
        return None
    sign, num, den = ("", *m.groups()) if m.re is _SLASH else m.groups()
    if int(den) == 0:
        return None
    return Fraction(int(num), int(den)) * (-1 if sign == "-" else 1)


def verify_math(predicted: str, reference: str, timeout_seconds: int = 5) -> bool:
    """Whether ``predicted`` is mathematically equal to ``reference`` according to math-verify.

    Both are short answers (LaTeX or plain: "\\frac{1}{2}", "0.5", "(3,\\frac{\\pi}{2})",
    "\\text{Evelyn}"). Returns False when either side cannot be parsed. Safe to call from any
    thread: the signal-based timeout is used only in the main thread.
    """
    from math_verify import parse, verify

    if not predicted.strip() or not reference.strip():
        return False
    exact = exact_rational(predicted), exact_rational(reference)
    if None not in exact:  # both plain numbers: exact, whatever their size (math-verify would round)
        return exact[0] == exact[1]
    in_main = threading.current_thread() is threading.main_thread()
    timeout = timeout_seconds if in_main else None
    gold = parse(as_latex(reference), parsing_timeout=timeout)
    pred = parse(as_latex(predicted), parsing_timeout=timeout)
    if not gold or not pred:
        return False
    return bool(verify(gold, pred, timeout_seconds=timeout))
