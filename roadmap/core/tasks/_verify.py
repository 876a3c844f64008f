"""Thread-safe answer equivalence through math-verify (huggingface/Math-Verify).

math-verify bounds its parsing and comparison time with ``signal.alarm``, which Python only
allows in the main thread; called from any other thread with a timeout it raises ValueError.
``verify_math`` therefore passes its timeout only in the main thread and runs without one
elsewhere (inputs here are short extracted answers, so an unbounded parse is not a real risk).
"""

from __future__ import annotations

import logging
import threading

__all__ = ["as_latex", "verify_math"]

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


def verify_math(predicted: str, reference: str, timeout_seconds: int = 5) -> bool:
    """Whether ``predicted`` is mathematically equal to ``reference`` according to math-verify.

    Both are short answers (LaTeX or plain: "\\frac{1}{2}", "0.5", "(3,\\frac{\\pi}{2})",
    "\\text{Evelyn}"). Returns False when either side cannot be parsed. Safe to call from any
    thread: the signal-based timeout is used only in the main thread.
    """
    from math_verify import parse, verify

    if not predicted.strip() or not reference.strip():
        return False
    in_main = threading.current_thread() is threading.main_thread()
    timeout = timeout_seconds if in_main else None
    gold = parse(as_latex(reference), parsing_timeout=timeout)
    pred = parse(as_latex(predicted), parsing_timeout=timeout)
    if not gold or not pred:
        return False
    return bool(verify(gold, pred, timeout_seconds=timeout))
