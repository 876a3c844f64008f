"""Reasoning behaviours measured on solutions: self-checks, self-corrections and backtracks.

The o1 roadmap (arXiv 2412.14135) names self-evaluation and self-correction as the behaviours a
long chain of thought should show. Here they are counted, not judged: the task reads each line of a
solution (``Task.trace_event``: a step, a check that calls the last step right, a correction that
calls it wrong and redoes it, a backtrack to step k) and its step checker (``Task.step_verdict``;
arith has an exact one) says whether each step was in fact right. From those events:

- ``self_check_accuracy``: share of checks (ok, correction or backtrack) whose verdict is right;
- ``self_correction_rate``: share of wrong steps later undone by a correction or a backtrack;
- ``backtrack_rate``: share of solutions with at least one backtrack;
- ``right_after_wrong``: share of right final answers whose solution wrote a wrong step first;
- ``no_after_wrong`` / ``no_after_right``: share of checks of a wrong / a right step that call it
  wrong (a check carries information only when the first is above the second; self-check accuracy
  alone hides that behind the share of wrong steps);
- ``first_step_accuracy``: share of solutions whose first step line the checker calls right (a
  trace format that harms the arithmetic shows here before the final answer).

A rate whose denominator is zero (no check written, no wrong step) is None, not 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from roadmap.core.types import Problem

__all__ = ["TraceEvents", "trace_events", "behaviour_metrics"]


@dataclass
class TraceEvents:
    """The behaviour events of one solution.

    Attributes:
        steps: step lines written (a redone step counts again).
        checks: checks whose target step the task could judge.
        right_checks: those whose verdict (ok / wrong) matched the step checker.
        wrong_steps: steps the checker found wrong where they were written.
        corrected: wrong steps later undone (by a correction or a backtrack past them).
        corrections: correction lines written.
        backtracks: backtrack lines written.
        checks_on_wrong: judged checks whose target step was wrong.
        no_on_wrong: those that called it wrong.
        no_on_right: checks of a right step that called it wrong.
        first_steps: 1 when the first line is a step the checker can judge.
        first_right: 1 when that step is right.
        correct: whether the final answer is right.
    """

    steps: int = 0
    checks: int = 0
    right_checks: int = 0
    wrong_steps: int = 0
    corrected: int = 0
    corrections: int = 0
    backtracks: int = 0
    checks_on_wrong: int = 0
    no_on_wrong: int = 0
    no_on_right: int = 0
    first_steps: int = 0
    first_right: int = 0
    correct: bool = False


def trace_events(task, problem: Problem, text: str) -> TraceEvents:
    """Walk ``text`` line by line and count its behaviour events (see the module docstring)."""
    ev = TraceEvents(correct=bool(task.is_correct(problem, text)))
    accepted: list[str] = []
    verdicts: list[bool | None] = []

    def judge(verdict: bool | None, claims_right: bool) -> None:
        if verdict is not None:
            ev.checks += 1
            ev.right_checks += verdict is claims_right
            ev.checks_on_wrong += verdict is False
            ev.no_on_wrong += verdict is False and not claims_right
            ev.no_on_right += verdict is True and not claims_right

    for line in task.split_steps(text):
        kind, k = task.trace_event(line)
        if kind == "step":
            verdict = task.step_verdict(problem, accepted, line.strip())
            ev.steps += 1
            ev.wrong_steps += verdict is False
            if ev.steps == 1 and verdict is not None:
                ev.first_steps, ev.first_right = 1, int(verdict)
            accepted.append(line.strip())
            verdicts.append(verdict)
        elif kind == "check":
            if verdicts:
                judge(verdicts[-1], True)
        elif kind == "correction":
            ev.corrections += 1
            if verdicts:
                verdict = verdicts.pop()
                accepted.pop()
                judge(verdict, False)
                ev.corrected += verdict is False
        elif kind == "backtrack":
            ev.backtracks += 1
            keep = max(0, (k or 1) - 1)
            if len(verdicts) > keep:
                judge(verdicts[keep], False)
            ev.corrected += sum(v is False for v in verdicts[keep:])
            del accepted[keep:], verdicts[keep:]
        else:
            raise ValueError(f"{task.name}.trace_event returned kind={kind!r}; use step, check, correction or backtrack")
    return ev


def _rate(num: int, den: int) -> float | None:
    return num / den if den else None


def behaviour_metrics(task, problems: Sequence[Problem], solutions: Sequence[str]) -> dict[str, Any]:
    """The behaviour rates over ``solutions`` (one per problem) and the event totals they come from."""
    if len(problems) != len(solutions):
        raise ValueError(f"{len(problems)} problems but {len(solutions)} solutions; pass one solution per problem")
    events = [trace_events(task, p, s) for p, s in zip(problems, solutions)]
    total = TraceEvents()
    for e in events:
        for name, value in asdict(e).items():
            if name != "correct":
                setattr(total, name, getattr(total, name) + value)
    right = [e for e in events if e.correct]
    return {
        "self_check_accuracy": _rate(total.right_checks, total.checks),
        "self_correction_rate": _rate(total.corrected, total.wrong_steps),
        "backtrack_rate": _rate(sum(e.backtracks > 0 for e in events), len(events)),
        "right_after_wrong": _rate(sum(e.wrong_steps > 0 for e in right), len(right)),
        "no_after_wrong": _rate(total.no_on_wrong, total.checks_on_wrong),
        "no_after_right": _rate(total.no_on_right, total.checks - total.checks_on_wrong),
        "first_step_accuracy": _rate(total.first_right, total.first_steps),
        "solutions": len(events),
        **{k: v for k, v in asdict(total).items() if k != "correct"},
    }
