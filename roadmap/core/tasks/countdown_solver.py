"""Countdown's exact machinery: the moves, the brute-force solver and the line grammar of solutions.

A *state* is the sorted tuple of the numbers not yet combined. A move takes two of them, a and b,
and puts back one result: a+b, a*b, a-b (only when a >= b) or a/b (only when b > 0 and b divides
a). Every intermediate result is therefore a non-negative integer, as in Stream of Search (arXiv
2404.03683). A state is solved when it holds exactly the target: every number is used once.

``state_value(numbers, target)`` is the exact value of a state (can it still reach the target?),
memoised over canonical states; ``solve`` returns one solution. Since every solution uses all n
numbers, every solution has n - 1 steps: any solution is a shortest one.

``Walk`` reads a solution or a search trace line by line (the grammar is in
``roadmap.core.tasks.countdown_traces``) and keeps the current path of states.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

__all__ = ["State", "moves", "state_value", "solve", "apply_op", "format_state", "parse_numbers", "Walk", "Line"]

State = tuple[int, ...]

#: an operation line, optionally with the state it leads to: "11-7=4" or "11-7=4 -> S1: 4 4 9"
OP_LINE = re.compile(r"^\s*(\d+)\s*([-+*/])\s*(\d+)\s*=\s*(-?\d+)\s*"
                     r"(?:->\s*(?:S(\d+)\s*:\s*)?(\d+(?:\s+\d+)*)\s*)?\.?\s*$")
#: a dead end: the one number left is not the target, "32 != 24"
DEAD_LINE = re.compile(r"^\s*(\d+)\s*!=\s*(\d+)\s*$")
#: a backtrack to the state at depth d on the current path, named with its numbers: "back to S1: 4 4 9"
BACK_LINE = re.compile(r"^\s*back to S(\d+)\s*:\s*(\d+(?:\s+\d+)*)\s*\.?\s*$")


def format_state(state) -> str:
    """A state as the traces write it: its numbers in ascending order, "4 4 9"."""
    return " ".join(str(x) for x in sorted(state))


def parse_numbers(text: str) -> State:
    return tuple(sorted(int(x) for x in text.split()))


def moves(a: int, b: int) -> list[tuple[int, str]]:
    """The results of combining ``a`` and ``b`` and the line that writes each ("11-7=4"), larger operand
    first. Smaller/larger divisions are left out: they are exact only as 0/x = 0 (also 0*x) or x/x
    (also larger/smaller), so the results cover every legal move."""
    hi, lo = max(a, b), min(a, b)
    out = [(hi + lo, f"{hi}+{lo}={hi + lo}"), (hi * lo, f"{hi}*{lo}={hi * lo}"), (hi - lo, f"{hi}-{lo}={hi - lo}")]
    if lo > 0 and hi % lo == 0:
        out.append((hi // lo, f"{hi}/{lo}={hi // lo}"))
    return out


def children(state: State) -> list[tuple[State, str]]:
    """Every (next state, operation line) one move away from ``state``, repeats of equal pairs dropped."""
    out, seen = [], set()
    for i, j in itertools.combinations(range(len(state)), 2):
        pair = (state[i], state[j])
        if pair in seen:
            continue
        seen.add(pair)
        rest = state[:i] + state[i + 1:j] + state[j + 1:]
        for result, line in moves(*pair):
            out.append((tuple(sorted(rest + (result,))), line))
    return out


@lru_cache(maxsize=1 << 18)
def _solvable(state: State, target: int) -> bool:
    if len(state) == 1:
        return state[0] == target
    return any(_solvable(nxt, target) for nxt, _ in children(state))


def state_value(numbers, target: int) -> bool:
    """Whether the numbers can still reach ``target`` using each exactly once (exact, memoised)."""
    return _solvable(tuple(sorted(int(x) for x in numbers)), int(target))


def solve(numbers, target: int) -> list[str] | None:
    """One solution as operation lines ("11-7=4", ...), or None when there is none. Deterministic."""
    state = tuple(sorted(int(x) for x in numbers))
    if not _solvable(state, int(target)):
        return None
    steps = []
    while len(state) > 1:
        state, line = next((nxt, line) for nxt, line in children(state) if _solvable(nxt, int(target)))
        steps.append(line)
    return steps


def apply_op(state: State, a: int, op: str, b: int, c: int) -> State | None:
    """The state after the line "a op b = c", or None when it is not a legal move from ``state``: a or b
    not available (a number used twice), wrong arithmetic, a negative or inexact result."""
    rest = list(state)
    for x in (a, b):
        if x not in rest:
            return None
        rest.remove(x)
    exact = {"+": a + b, "*": a * b, "-": a - b if a >= b else None,
             "/": a // b if b > 0 and a % b == 0 else None}[op]
    if exact is None or exact != c:
        return None
    return tuple(sorted(rest + [c]))


@dataclass
class Line:
    """One read line of a solution or trace.

    Attributes:
        kind: "explore" (an operation), "dead_end", "backtrack", "answer" or "other" (ignored text).
        ok: whether the line is legal where it stands (always True for "other").
        depth: the depth of the state the line leaves the walk in (the backtrack target's for a backtrack).
        state: that state (None once the walk is lost).
        name: the state a backtrack names, as written ("S1: 4 4 9"); "" for other kinds.
        answer: the answer written on an answer line ("24", "none").
    """

    kind: str
    text: str
    ok: bool = True
    depth: int = 0
    state: State | None = None
    name: str = ""
    answer: str | None = None


@dataclass
class Walk:
    """The current path of states while reading lines from the root ``numbers``.

    An illegal operation or dead end leaves the path as it was (the line is marked not ok); a
    backtrack to a state that is not on the current path is marked not ok too (``read_trace``
    refuses it by name).
    """

    numbers: State
    target: int
    read_answer: Callable[[str], str | None] | None = None  # line -> answer text or None
    path: list[State] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.path = [tuple(sorted(self.numbers))]

    @property
    def state(self) -> State:
        return self.path[-1]

    @property
    def ok(self) -> bool:
        return all(line.ok for line in self.lines)

    def read(self, text: str) -> Line:
        line = self._read(text.strip())
        line.depth, line.state = (line.depth if line.kind == "backtrack" else len(self.path) - 1), self.state
        self.lines.append(line)
        return line

    def _read(self, text: str) -> Line:
        m = OP_LINE.match(text)
        if m:
            a, op, b, c = int(m.group(1)), m.group(2), int(m.group(3)), int(m.group(4))
            nxt = apply_op(self.state, a, op, b, c) if c >= 0 else None
            ok = nxt is not None and len(self.state) > 1
            if ok and m.group(6) is not None:  # the state written must be the one reached, at its depth
                ok = parse_numbers(m.group(6)) == nxt and (m.group(5) is None or int(m.group(5)) == len(self.path))
            if ok and nxt is not None:
                self.path.append(nxt)
            return Line("explore", text, ok)
        m = DEAD_LINE.match(text)
        if m:
            ok = (len(self.path) > 1 and self.state == (int(m.group(1)),) and int(m.group(2)) == self.target
                  and int(m.group(1)) != self.target)
            if ok:
                self.path.pop()
            return Line("dead_end", text, ok)
        m = BACK_LINE.match(text)
        if m:
            depth, named = int(m.group(1)), parse_numbers(m.group(2))
            ok = depth < len(self.path) and self.path[depth] == named
            if ok:
                del self.path[depth + 1:]
            return Line("backtrack", text, ok, depth=depth, name=f"S{depth}: {format_state(named)}")
        answer = self.read_answer(text) if self.read_answer is not None else None
        if answer is not None:
            return Line("answer", text, answer=answer)
        return Line("other", text)
