"""Searched data as training data: trees and search results become Hugging Face datasets.

Input rows are what ``search.trees.result_row`` writes (``roadmap search``'s ``trees.jsonl``):
a problem's prompt, its candidates with their verdicts, and the search tree.

- ``sft_rows``: the verified solutions, deduplicated, at most k per problem (expert
  iteration / ReST-EM, arXiv 2312.06585);
- ``solution_pairs``: DPO pairs at solution level (a verified solution against a wrong one);
- ``step_pairs``: DPO pairs at step level: siblings under one prefix whose MCTS Q-values differ
  by more than a margin (ReST-MCTS*, arXiv 2406.03816; rStar-Math, arXiv 2501.04519);
- ``grpo_rows``: prompts with their reference answers, for online RL.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from roadmap.core.errors import ConfigError, DataError
from roadmap.core.tasks.base import Task
from roadmap.core.types import Problem

__all__ = ["verified_solutions", "sft_rows", "solution_pairs", "step_pairs", "exact_value", "grpo_rows"]


def _check(rows: Sequence[dict[str, Any]]) -> None:
    for i, r in enumerate(rows):
        missing = {"problem_id", "prompt", "candidates", "candidate_correct"} - set(r)
        if missing:
            raise DataError(f"row {i} lacks {sorted(missing)}; pass rows of a trees.jsonl from `roadmap search`")


def _tree_solutions(row: dict[str, Any]) -> list[str]:
    """Texts of the terminal nodes of the row's tree (candidates may list only some of them)."""
    from search import row_tree

    tree = row_tree(row)
    if tree is None:
        return []
    return [tree.text(n.id) for n in tree.nodes if n.terminal]


def _row_problem(row: dict[str, Any]) -> Problem:
    """The problem a trees row was searched for (its reference answer included)."""
    return Problem(id=row["problem_id"], question=row.get("question", ""), answer=row.get("reference", ""))


def verified_solutions(row: dict[str, Any], task=None) -> list[str]:
    """Distinct verified solutions of one row, in the row's order (best first).

    With ``task`` given, terminal nodes of the tree that the candidates missed are checked too.
    """
    seen: dict[str, None] = {}
    for text, ok in zip(row["candidates"], row["candidate_correct"]):
        if ok and text.strip():
            seen.setdefault(text.strip(), None)
    if task is not None:
        problem = _row_problem(row)
        for text in _tree_solutions(row):
            if text.strip() and text.strip() not in seen and task.is_correct(problem, text):
                seen.setdefault(text.strip(), None)
    return list(seen)


def sft_rows(rows: Sequence[dict[str, Any]], k: int = 1, *, task=None, scorer=None, min_score: float | None = None):
    """Prompt/completion rows from verified solutions: at most ``k`` distinct ones per problem.

    When a problem has more than ``k``, the first ``k`` in the search's order are kept (beam and
    MCTS put their best first). Problems with none are dropped.

    A final-answer check lets through solutions whose step errors cancel (on arith, one in four
    at temperature 1). With ``scorer`` (a PRM ``StepScorer``, e.g. min-aggregated) the verified
    solutions are ranked by its score, best first, and those scoring below ``min_score`` are
    dropped; this is the process-reward filter of ReST-MCTS* (arXiv 2406.03816).
    """
    from datasets import Dataset

    if k < 1:
        raise ConfigError(f"k={k} must be at least 1")
    if min_score is not None and scorer is None:
        raise ConfigError("min_score needs scorer=... (a PRM StepScorer) to score the verified solutions")
    _check(rows)
    kept = [(r, verified_solutions(r, task)) for r in rows]
    if scorer is not None:
        from search import score_many

        kept = [(r, sols) for r, sols in kept if sols]
        scores = score_many(scorer, [_row_problem(r) for r, _ in kept], [sols for _, sols in kept])
        floor = -1.0 if min_score is None else min_score
        kept = [(r, [t for x, t in sorted(zip(sc, sols), key=lambda z: -z[0]) if x >= floor])
                for (r, sols), sc in zip(kept, scores)]
    out: dict[str, list] = {"prompt": [], "completion": [], "id": []}
    pair = task.training_text if isinstance(task, Task) else (lambda prompt, text: (prompt, text))
    for r, sols in kept:
        for text in sols[:k]:
            prompt, completion = pair(r["prompt"], text)  # chat: one BOS, completion ends with end-of-turn
            out["prompt"].append(prompt)
            out["completion"].append(completion)
            out["id"].append(r["problem_id"])
    return Dataset.from_dict(out)


def solution_pairs(rows: Sequence[dict[str, Any]], max_pairs_per_problem: int = 2, *, seed: int = 0):
    """DPO rows (prompt, chosen, rejected): a verified solution against a wrong one of the same problem."""
    from datasets import Dataset

    _check(rows)
    rng = random.Random(seed)
    out: dict[str, list] = {"prompt": [], "chosen": [], "rejected": [], "id": [], "level": []}
    for r in rows:
        verdicts = {t.strip(): ok for t, ok in zip(r["candidates"], r["candidate_correct"]) if t.strip()}
        good = [t for t, ok in verdicts.items() if ok]
        bad = [t for t, ok in verdicts.items() if not ok]
        pairs = [(g, b) for g in good for b in bad]
        rng.shuffle(pairs)
        for g, b in pairs[:max_pairs_per_problem]:
            out["prompt"].append(r["prompt"])
            out["chosen"].append(g)
            out["rejected"].append(b)
            out["id"].append(r["problem_id"])
            out["level"].append("solution")
    return Dataset.from_dict(out)


def _q_value(tree, node) -> float:
    """A node's mean value in its search tree (MCTS's Q)."""
    return node.value


def _finish(tree, node, value=_q_value) -> str | None:
    """Text from ``node``'s step down its best-valued path to a terminal node (by ``value``, then Q, then
    visits), or None."""
    text = node.step
    while not node.terminal:
        below = [c for c in tree.children(node.id) if c.visits > 0]
        if not below:
            return None
        node = max(below, key=lambda c: (value(tree, c), c.value, c.visits))
        text += node.step
    return text


def exact_value(task, problems: Sequence[Problem]):
    """A node value for ``step_pairs`` from the task's exact step checker: 1.0 when the partial solution at the
    node is right so far (its last ``task.step_labels`` label; countdown's: its state can still reach the target),
    else 0.0. ``problems`` are those the trees were searched on, found by ``tree.problem_id``.

    Raises ``ConfigError`` for a task without exact step labels."""
    labels = getattr(task, "step_labels", None)
    if labels is None:
        raise ConfigError(f"step_values='exact' needs a task with exact step labels (task.step_labels); "
                          f"{type(task).__name__} has none: use step_values='q'")
    by_id = {p.id: p for p in problems}
    memo: dict[tuple[str, str], float] = {}

    def value(tree, node) -> float:
        text = tree.text(node.id)
        key = (tree.problem_id, text)  # the partial solution itself: two trees of one problem share nothing else
        if key not in memo:
            problem = by_id.get(tree.problem_id)
            if problem is None:
                raise DataError(f"a search tree's problem {tree.problem_id!r} is not among the problems given "
                                "for its exact values; pass the problems the trees were searched on")
            got = labels(problem, text)
            memo[key] = float(bool(got and got[-1]))
        return memo[key]

    return value


def step_pairs(rows: Sequence[dict[str, Any]], margin: float = 0.3, *, min_visits: int = 1,
               max_pairs_per_node: int = 1, value=None):
    """Step-level DPO rows: under one prefix, the sibling with the higher value against a lower one.

    A pair is kept when both siblings were visited at least ``min_visits`` times and their values
    differ by more than ``margin``. A node's value is its mean value in the tree (MCTS's Q, estimated
    from rollouts), or ``value(tree, node)`` when given (``exact_value``: the task's exact step
    checker). The prompt is the problem's prompt plus the shared prefix. Chosen and rejected are the
    sibling's step followed by its best-valued path down to a finished solution in the tree, so that
    both are complete solutions (TRL's DPOTrainer ends them with EOS); siblings with no finished
    descendant are skipped.
    """
    from datasets import Dataset

    from search import row_tree

    if not 0 <= margin < 1:
        raise ConfigError(f"margin={margin} must lie in [0, 1)")
    value = value or _q_value
    out: dict[str, list] = {"prompt": [], "chosen": [], "rejected": [], "id": [], "level": [], "margin": []}
    for r in rows:
        tree = row_tree(r)
        if tree is None:
            continue
        for parent in range(len(tree.nodes)):
            sibs = sorted((n for n in tree.children(parent) if n.visits >= min_visits and n.step.strip()),
                          key=lambda n: (-value(tree, n), -n.value))
            if len(sibs) < 2:
                continue
            best = sibs[0]
            chosen = _finish(tree, best, value)
            if chosen is None:
                continue
            made = 0
            for n in sibs[::-1]:  # the clearest contrast first
                gap = value(tree, best) - value(tree, n)
                if made >= max_pairs_per_node or gap <= margin:
                    break
                rejected = _finish(tree, n, value)
                if rejected is None or rejected == chosen:
                    continue
                out["prompt"].append(tree.prompt + tree.text(parent))
                out["chosen"].append(chosen)
                out["rejected"].append(rejected)
                out["id"].append(r["problem_id"])
                out["level"].append("step")
                out["margin"].append(gap)
                made += 1
    return Dataset.from_dict(out)


def grpo_rows(task, problems: Sequence[Problem]):
    """Prompt rows for GRPO: ``prompt``, and the columns that rewards read (TRL passes them as keyword arguments).

    ``answer`` is what the verifier reward checks against, ``question`` what a scorer reward
    (``rewards.get_scorer_reward``: a PRM builds its prompt from it) scores under, and ``id``
    what no-positive-resampling counts pass rates by.
    """
    from datasets import Dataset

    return Dataset.from_dict({"prompt": [task.prompt(p) for p in problems], "answer": [p.answer for p in problems],
                              "question": [p.question for p in problems], "id": [p.id for p in problems]})
