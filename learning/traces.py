"""Search trees made sequential: long chains of thought that check, correct and backtrack.

Stream of Search (arXiv 2404.03683) and the o1 roadmap (arXiv 2412.14135, section on policy
initialization) teach a model to do in one text what tree search does outside it. A searched tree
(``roadmap.core.types.Tree``) holds a verified path and, at each depth, siblings that the search
valued low. ``linearize`` writes the path one step at a time; after each right step the task's
self-check (``Task.check_text``); at a chosen depth, first a low-valued sibling, then

- a *correction*: the sibling, its failed check (``Task.correction_text``), then the right step;
- a *backtrack*: the sibling and the tree's best continuation below it (up to ``backtrack_depth``
  steps; none when the search never expanded the sibling, as at small MCTS budgets), then a
  return to that depth (``Task.backtrack_text``), then the right step;

ending in the final-answer line. The task owns every verbal form; ``TraceConfig`` sets the mix of
clean paths, corrected errors and backtracks, and whether the wrong step itself is trained on
(``train_on_errors=False`` moves the text up to the first wrong step into the row's prompt, so that
the completion-only SFT loss teaches the check and the repair, never the error). ``trace_rows`` turns ``trees.jsonl`` rows into SFT
rows (``prompt``, ``completion``, ``id``, ``kind``).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from roadmap.core.errors import ConfigError, DataError
from roadmap.core.types import Node, Problem, Tree

__all__ = ["TraceConfig", "Detour", "TRACE_KINDS", "verified_path", "detour_candidates", "linearize", "trace_rows"]

#: the kinds of trace, in the order of ``TraceConfig``'s weights
TRACE_KINDS = ("clean", "correction", "backtrack")


@dataclass
class TraceConfig:
    """How searched trees become traces."""

    clean: float = field(default=0.4, metadata={"help": "Weight of clean paths (checked steps, no detour)."})
    correction: float = field(default=0.4, metadata={"help": "Weight of traces with a corrected wrong step."})
    backtrack: float = field(default=0.2, metadata={"help": "Weight of traces that back up from a wrong branch."})
    max_detours: int = field(default=1, metadata={"help": "Wrong siblings written into one trace (at most)."})
    max_value: float = field(default=0.5, metadata={
        "help": "A sibling counts as valued low when its visited mean value is at most this."})
    backtrack_depth: int = field(default=2, metadata={
        "help": "Steps followed down a wrong branch (the tree's best-valued ones) before backing up."})
    check_steps: bool = field(default=True, metadata={"help": "Write the task's self-check after every right step."})
    train_on_errors: bool = field(default=True, metadata={
        "help": "Train on the wrong step too; False puts the trace up to the first wrong step in the prompt."})
    traces_per_problem: int = field(default=1, metadata={"help": "Traces drawn from each tree (distinct texts)."})
    seed: int = field(default=0, metadata={"help": "Seed of the kind and detour draws."})

    def __post_init__(self) -> None:
        weights = (self.clean, self.correction, self.backtrack)
        if min(weights) < 0 or sum(weights) <= 0:
            raise ConfigError(f"trace weights clean/correction/backtrack={weights} must be >= 0 with a positive sum; "
                              "e.g. 0.4/0.4/0.2")
        for name in ("max_detours", "backtrack_depth", "traces_per_problem"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}={getattr(self, name)} must be at least 1")


@dataclass(frozen=True)
class Detour:
    """A wrong sibling written before step ``index`` (0-based, over the path's step lines).

    ``kind`` is "correction" or "backtrack"; ``sibling`` the node id; ``line`` which line of the
    sibling's step text is the wrong one (a node's text may hold several steps, e.g. a last step
    and the answer line; the lines before ``line`` are the path's own).
    """

    index: int
    kind: str
    sibling: int
    line: int = 0


def _lines(task, node: Node) -> list[str]:
    return [s.strip() for s in task.split_steps(node.step)]


def _flat(task, path: Sequence[Node]) -> list[str]:
    return [line for node in path for line in _lines(task, node)]


def verified_path(tree: Tree, task, problem: Problem) -> list[Node] | None:
    """The best-valued terminal path with a right answer and, where the task can tell, every step right."""
    best = None
    for node in tree.nodes:
        if not node.terminal or not task.is_correct(problem, tree.text(node.id)):
            continue
        path = tree.path(node.id)
        steps = _flat(task, path)
        if any(task.step_verdict(problem, steps[:i], s) is False for i, s in enumerate(steps)):
            continue
        key = (node.value, node.visits, -node.id)
        if best is None or key > best[0]:
            best = (key, path)
    return None if best is None else best[1]


def _below(tree: Tree, task, problem: Problem, before: list[str], sibling: Node, line: int, depth: int) -> list[str]:
    """Up to ``depth`` steps after the wrong line of ``sibling``, down its best-valued visited children:
    right steps given the wrong branch (never an answer line, never a step wrong in itself)."""
    branch = list(before) + [_lines(task, sibling)[line]]
    pending = _lines(task, sibling)[line + 1:]
    node, out = sibling, list[str]()
    while len(out) < depth:
        if not pending:
            kids = [c for c in tree.children(node.id) if c.visits > 0 and c.step.strip()]
            if not kids:
                break
            node = max(kids, key=lambda c: (c.value, c.visits))
            pending = _lines(task, node)
            continue
        step = pending.pop(0)
        if task.extract_answer(step) is not None or task.step_verdict(problem, branch, step) is False:
            break
        out.append(step)
        branch.append(step)
    return out


def detour_candidates(tree: Tree, task, problem: Problem, path: Sequence[Node], config: TraceConfig
                      ) -> dict[str, list[Detour]]:
    """Every possible detour along ``path``, by kind: visited siblings valued at most ``max_value`` whose
    first line that departs from the path is wrong (by the task's checker; a task without one: by the
    value alone). Every such sibling is also a backtrack; its continuation (``_below``) may be empty."""
    out: dict[str, list[Detour]] = {"correction": [], "backtrack": []}
    flat = _flat(task, path)
    offset = 0
    for node in path:
        mine = _lines(task, node)
        for sib in tree.children(node.parent):
            if sib.id == node.id or sib.visits == 0 or sib.value > config.max_value:
                continue
            theirs = _lines(task, sib)
            j = 0
            while j < min(len(theirs), len(mine)) and theirs[j] == mine[j]:
                j += 1
            if j >= len(theirs) or offset + j >= len(flat):
                continue
            before = flat[: offset + j]
            if task.step_verdict(problem, before, theirs[j]) is True:
                continue
            out["correction"].append(Detour(offset + j, "correction", sib.id, j))
            out["backtrack"].append(Detour(offset + j, "backtrack", sib.id, j))
        offset += len(mine)
    return out


def _trace_lines(tree: Tree, task, problem: Problem, path: Sequence[Node], detours: Sequence[Detour],
                 check_steps: bool, backtrack_depth: int) -> tuple[list[str], list[int]]:
    """The non-empty lines of the trace and the positions (in those lines) of the wrong sibling steps."""
    at = {d.index: d for d in detours}
    lines: list[str] = []
    wrong_at: list[int] = []
    before: list[str] = []

    def put(line: str) -> None:
        if line:
            lines.append(line)

    for i, step in enumerate(_flat(task, path)):
        d = at.get(i)
        if d is not None:
            sibling = tree.nodes[d.sibling]
            wrong = _lines(task, sibling)[d.line]
            wrong_at.append(len(lines))
            put(wrong)
            if d.kind == "correction":
                put(task.correction_text(problem, before, wrong))
            elif d.kind == "backtrack":
                branch = before + [wrong]
                for below in _below(tree, task, problem, before, sibling, d.line, backtrack_depth):
                    put(below)
                    if check_steps:
                        put(task.check_text(problem, branch, below))
                    branch.append(below)
                put(task.backtrack_text(problem, before, wrong, i + 1))
            else:
                raise ValueError(f"detour kind={d.kind!r} is not one of ('correction', 'backtrack')")
        put(step)
        if check_steps and task.extract_answer(step) is None:
            put(task.check_text(problem, before, step))
        before.append(step)
    return lines, wrong_at


def linearize(tree: Tree, task, problem: Problem, path: Sequence[Node], detours: Sequence[Detour] = (), *,
              check_steps: bool = True, backtrack_depth: int = 2) -> str:
    """The trace text of ``path`` with ``detours`` written in, joined by the task's step delimiter."""
    lines, _ = _trace_lines(tree, task, problem, path, detours, check_steps, backtrack_depth)
    return task.step_delimiter.join(lines)


def _draw(rng: random.Random, config: TraceConfig, candidates: dict[str, list[Detour]]) -> list[Detour]:
    kind = rng.choices(TRACE_KINDS, weights=(config.clean, config.correction, config.backtrack))[0]
    if kind == "clean" or not candidates[kind]:
        return []
    pool = list(candidates[kind])
    rng.shuffle(pool)
    chosen: dict[int, Detour] = {}
    for d in pool:
        if len(chosen) < config.max_detours and d.index not in chosen:
            chosen[d.index] = d
    return sorted(chosen.values(), key=lambda d: d.index)


def trace_rows(rows: Sequence[dict[str, Any]], task, config: TraceConfig | None = None):
    """SFT rows of traces from ``trees.jsonl`` rows: ``prompt``, ``completion``, ``id`` and ``kind``
    ("clean", "correction", "backtrack", or "mixed" when detours of both kinds are drawn).

    Problems whose tree holds no verified path are dropped. A detour drawn for a tree without a
    wrong low-valued sibling falls back to a clean trace, so that the realised mix
    (``Counter(ds["kind"])``) can be below the configured one. With ``train_on_errors=False`` a row
    with a detour has the trace up to and including its first wrong step appended to ``prompt``.
    """
    from datasets import Dataset

    from search import row_tree

    config = config or TraceConfig()
    rng = random.Random(f"traces-{config.seed}")
    out: dict[str, list] = {"prompt": [], "completion": [], "id": [], "kind": []}
    for i, r in enumerate(rows):
        missing = {"problem_id", "prompt", "question", "reference", "tree"} - set(r)
        if missing:
            raise DataError(f"row {i} lacks {sorted(missing)}; pass rows of a trees.jsonl from `roadmap search`")
        tree = row_tree(r)
        if tree is None:
            continue
        problem = Problem(id=r["problem_id"], question=r["question"], answer=r["reference"])
        path = verified_path(tree, task, problem)
        if path is None:
            continue
        candidates = detour_candidates(tree, task, problem, path, config)
        seen: set[str] = set()
        for _ in range(config.traces_per_problem):
            detours = _draw(rng, config, candidates)
            lines, wrong_at = _trace_lines(tree, task, problem, path, detours, config.check_steps,
                                           config.backtrack_depth)
            delim = task.step_delimiter
            text = delim.join(lines)
            if text in seen:
                continue
            seen.add(text)
            kinds = {d.kind for d in detours}
            cut = wrong_at[0] + 1 if wrong_at and not config.train_on_errors else 0
            out["prompt"].append(r["prompt"] + "".join(line + delim for line in lines[:cut]))
            out["completion"].append(delim.join(lines[cut:]))
            out["id"].append(r["problem_id"])
            out["kind"].append("clean" if not kinds else kinds.pop() if len(kinds) == 1 else "mixed")
    return Dataset.from_dict(out)
