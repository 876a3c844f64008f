"""Countdown search traces: a symbolic depth-first search written out as one chain of thought.

Stream of Search (arXiv 2404.03683) trains a model on the whole search, dead ends and
backtracks included, rather than on the optimal path only. ``search_trace`` runs a heuristic DFS
over states (children best first by a heuristic, as in the paper's released code: "sum", the mean
distance of the numbers to the target, or "mult", the distance of each number to the nearest
divisor of the target) and writes one line per event. The format (compact ASCII, for a
char-level tokenizer)::

    Numbers: 4 6 9, target 30       the question (the prompt)
    6*4=24 -> S1: 9 24              explore: an operation from the current state, then the state it
                                    reaches, named by its depth on the path (S0: the question's numbers)
    24+9=33 -> S2: 33               ... a leaf: one number is left
    33 != 30                        dead end: that number is not the target; back at the leaf's parent
    24-9=15 -> S2: 15
    15 != 30
    24*9=216 -> S2: 216
    216 != 30
    back to S0: 4 6 9               backtrack: every child of S1 is tried; return to a named state on
                                    the current path (here S0), its depth and numbers written out
    9*4=36 -> S1: 6 36
    36-6=30 -> S2: 30
    Answer: 30                      the goal: exactly the target is left

(the "sum" heuristic's trace of this problem). A search that tries every child it may (``breadth``) without reaching the target, or that hits the
length cap (``max_chars``), ends with "Answer: none". A backtrack may only name a state on the
current path (an ancestor of where the trace stands, or that state itself); ``read_trace`` refuses
any other by name. ``CountdownTask.trace_event`` reads each line in ``rewards.behaviour``'s words
(explore = "step", dead end = "correction", back to Sd = ("backtrack", d + 1)), and
``search_metrics`` counts the search behaviours of a model's traces: backtracks and dead ends per
solution, solved problems with a backtrack, and solved problems whose first branch was a dead end.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from roadmap.core.errors import ConfigError, DataError
from roadmap.core.tasks.countdown_solver import Line, State, Walk, children, format_state, state_value
from roadmap.core.types import Problem

__all__ = ["HEURISTICS", "SearchTrace", "search_trace", "read_trace", "TraceStats", "trace_stats", "search_metrics"]


def _divisors(target: int) -> list[int]:
    return [d for d in range(1, target + 1) if target % d == 0] or [0]


def sum_heuristic(state: State, target: int) -> float:
    """Mean distance of the numbers to the target (lower is more promising)."""
    return sum(abs(x - target) for x in state) / len(state)


def mult_heuristic(state: State, target: int) -> float:
    """Total distance of the numbers to their nearest divisor of the target."""
    divisors = _divisors(target)
    return float(sum(min(abs(x - d) for d in divisors) for x in state))


HEURISTICS = {"sum": sum_heuristic, "mult": mult_heuristic}
_GIVE_UP = "Answer: none"


@dataclass
class SearchTrace:
    """One serialised search.

    Attributes:
        steps: the trace lines before the answer line.
        answer: the target as text when the search reached it, else "none".
        heuristic: the heuristic that ordered the children.
        explored, dead_ends, backtracks: lines of each kind written.
        capped: the search stopped at the length cap.
    """

    steps: list[str] = field(default_factory=list)
    answer: str = "none"
    heuristic: str = "sum"
    explored: int = 0
    dead_ends: int = 0
    backtracks: int = 0
    capped: bool = False

    @property
    def solved(self) -> bool:
        return self.answer != "none"

    def text(self) -> str:
        """The plain-format trace: one line per step, then "Answer: ..."."""
        return "\n".join([*self.steps, f"Answer: {self.answer}"])


class _Capped(Exception):  # internal control flow, not an error: search_trace catches it (see core/errors.py)
    """The trace reached ``max_chars``: unwinds the DFS to ``search_trace``, which ends the trace there."""


def search_trace(numbers: Sequence[int], target: int, *, seed: int = 0, max_chars: int = 2048, breadth: int = 0,
                 heuristic: str | None = None) -> SearchTrace:
    """The DFS trace of reaching ``target`` from ``numbers`` (format in the module docstring).

    ``seed`` picks the heuristic (unless ``heuristic`` names one) and breaks its ties; ``breadth``
    tries only the best ``breadth`` children of each state (0: all, so a solvable problem is
    always solved within the cap); the plain text (``SearchTrace.text``) is at most ``max_chars``.
    """
    if heuristic is not None and heuristic not in HEURISTICS:
        raise ConfigError(f"heuristic={heuristic!r} is not a heuristic; use one of {sorted(HEURISTICS)}")
    if max_chars < len(_GIVE_UP) + 1:
        raise ConfigError(f"max_chars={max_chars} cannot hold a trace; use at least {len(_GIVE_UP) + 1}")
    rng = random.Random(f"countdown-trace-{seed}")
    name = heuristic or rng.choice(sorted(HEURISTICS))
    score = HEURISTICS[name]
    target = int(target)
    trace = SearchTrace(heuristic=name)
    budget = max_chars - len(_GIVE_UP)  # each step line also takes its newline
    used, position = 0, 0  # characters written; depth of the state the trace stands in

    def emit(line: str) -> None:
        nonlocal used
        if used + len(line) + 1 > budget:
            raise _Capped
        trace.steps.append(line)
        used += len(line) + 1

    def visit(state: State, depth: int) -> bool:
        nonlocal position
        order = sorted(children(state), key=lambda kid: (score(kid[0], target), rng.random()))
        for nxt, op in order[:breadth] if breadth else order:
            if position != depth:
                emit(f"back to S{depth}: {format_state(state)}")
                trace.backtracks += 1
                position = depth
            emit(f"{op} -> S{depth + 1}: {format_state(nxt)}")
            trace.explored += 1
            if len(nxt) == 1:
                if nxt[0] == target:
                    return True
                emit(f"{nxt[0]} != {target}")
                trace.dead_ends += 1
                continue
            position = depth + 1
            if visit(nxt, depth + 1):
                return True
        return False

    try:
        if visit(tuple(sorted(int(x) for x in numbers)), 0):
            trace.answer = str(target)
    except _Capped:
        trace.capped = True
    return trace


def read_trace(task, problem: Problem, text: str, strict: bool = True) -> list[Line]:
    """The lines of a trace, each read against the current path (``countdown_solver.Line``).

    With ``strict``, a backtrack to a state that is not on the current path raises ``DataError``
    naming it and the states it could have named; otherwise such a line is marked not ok.
    """
    numbers, target = task.numbers_target(problem)
    walk = Walk(numbers, target, read_answer=task.extract_answer)
    for i, raw in enumerate(line for line in text.splitlines() if line.strip()):
        known = list(walk.path)
        line = walk.read(raw)
        if strict and line.kind == "backtrack" and not line.ok:
            names = ", ".join(f"S{d}: {format_state(s)}" for d, s in enumerate(known))
            raise DataError(f"countdown trace of {problem.id}: line {i + 1} {raw.strip()!r} backtracks to unknown "
                            f"state {line.name}; the current path holds {names}. Name one of those states")
    return walk.lines


@dataclass
class TraceStats:
    """Search behaviours of one trace (``trace_stats``)."""

    explored: int = 0
    dead_ends: int = 0
    backtracks: int = 0
    illegal: int = 0
    correct: bool = False
    first_branch_dead: bool | None = None


def trace_stats(task, problem: Problem, text: str) -> TraceStats:
    """Count one trace's events; illegal lines (wrong arithmetic, unknown states) are counted, not raised.
    ``first_branch_dead`` says whether the first operation led to a state that cannot reach the target."""
    lines = read_trace(task, problem, text, strict=False)
    target = task.numbers_target(problem)[1]
    stats = TraceStats(correct=task.is_correct(problem, text))
    for line in lines:
        stats.explored += line.kind == "explore"
        stats.dead_ends += line.kind == "dead_end"
        stats.backtracks += line.kind == "backtrack"
        stats.illegal += not line.ok
        if line.kind == "explore" and stats.first_branch_dead is None:
            stats.first_branch_dead = not (line.ok and state_value(line.state, target))
    return stats


def _share(num: int, den: int) -> float | None:
    return num / den if den else None


def search_metrics(task, problems: Sequence[Problem], texts: Sequence[str]) -> dict:
    """Search behaviours over ``texts`` (one per problem); a rate with a zero denominator is None.

    ``solved_with_backtrack``: share of solved problems whose trace backtracks;
    ``correct_after_backtrack``: share of traces with a backtrack that end right;
    ``solved_after_dead_first_branch``: solved problems whose first branch could not reach the target.
    """
    if len(problems) != len(texts):
        raise ValueError(f"{len(problems)} problems but {len(texts)} texts; pass one text per problem")
    stats = [trace_stats(task, p, t) for p, t in zip(problems, texts)]
    solved = [s for s in stats if s.correct]
    backtracked = [s for s in stats if s.backtracks]
    totals = {k: sum(asdict(s)[k] for s in stats) for k in ("explored", "dead_ends", "backtracks", "illegal")}
    return {
        "traces": len(stats),
        "solved": len(solved),
        "accuracy": _share(len(solved), len(stats)),
        "backtracks_per_trace": _share(totals["backtracks"], len(stats)),
        "dead_ends_per_trace": _share(totals["dead_ends"], len(stats)),
        "explored_per_trace": _share(totals["explored"], len(stats)),
        "solved_with_backtrack": _share(sum(s.backtracks > 0 for s in solved), len(solved)),
        "correct_after_backtrack": _share(sum(s.correct for s in backtracked), len(backtracked)),
        "solved_after_dead_first_branch": sum(bool(s.first_branch_dead) for s in solved),
        "illegal_lines": totals["illegal"],
    }
