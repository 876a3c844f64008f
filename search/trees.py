"""Search results as data: JSONL files and ``datasets.Dataset`` rows that learning reads.

One row per searched problem: the problem (question, reference answer), the method's answer
and whether it is right, every complete candidate with its verdict and score, how many candidates a
length limit cut (``truncated``), the whole tree (flat node list, ``roadmap.core.types.Tree``) and the
compute it cost. Writing is atomic
(temporary name, then rename), so a killed run never leaves half a file under the real name.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from roadmap.core.errors import DataError, MissingPathError
from roadmap.core.tasks.base import selection_correct
from roadmap.core.types import Problem, SearchResult, Tree, Usage

__all__ = ["result_row", "write_trees", "read_trees", "trees_dataset", "row_tree", "row_result"]


def result_row(task, problem: Problem, result: SearchResult, method: str = "") -> dict[str, Any]:
    """One JSON-serialisable row for ``result`` on ``problem``, with the task's verdicts."""
    if result.problem_id != problem.id:
        raise ValueError(f"result is for problem {result.problem_id!r} but was paired with {problem.id!r}")
    correct = [bool(task.is_correct(problem, text)) for text in result.candidates]
    return {
        "problem_id": problem.id,
        "question": problem.question,
        "reference": problem.answer,
        "prompt": task.prompt(problem),
        "method": method,
        "answer": result.answer,
        "correct": selection_correct(task, problem, result.answer, result.candidates),
        "candidates": list(result.candidates),
        "candidate_correct": correct,
        "scores": [float(s) for s in result.scores],
        "tree": result.tree.to_dict() if result.tree is not None else None,
        "usage": result.usage.to_dict(),
        "truncated": result.truncated,
    }


def write_trees(rows: Iterable[dict[str, Any]], path: str | Path) -> Path:
    """Write rows (from ``result_row``) as JSONL at ``path``, atomically (``roadmap.core.io.atomic_write_text``:
    a temporary a killed run leaves behind is cleaned by the next write)."""
    from roadmap.core.io import atomic_write_text

    return atomic_write_text(path, "".join(json.dumps(row) + "\n" for row in rows))


def read_trees(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a trees JSONL file, with an error naming the file and line when one is broken."""
    p = Path(path)
    if not p.is_file():
        raise MissingPathError(f"{path} is not a trees file; write one with `roadmap search --out DIR`")
    rows = []
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{path} is not UTF-8 text (byte {e.start}: {e.reason}); the file is damaged, rerun the "
                        "search") from None
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise DataError(f"{path}:{i} is not a JSON row ({e}); the file is damaged, rerun the search") from e
    return rows


def trees_dataset(rows: Sequence[dict[str, Any]]):
    """The rows as a ``datasets.Dataset``; trees and usage are kept as JSON strings."""
    from datasets import Dataset

    flat = [{**r, "tree": json.dumps(r["tree"]), "usage": json.dumps(r["usage"])} for r in rows]
    return Dataset.from_list(flat)


def row_tree(row: dict[str, Any]) -> Tree | None:
    """The ``Tree`` of a row (from JSONL or a dataset), or None when the method built none."""
    tree = row.get("tree")
    if isinstance(tree, str):
        tree = json.loads(tree)
    return Tree.from_dict(tree) if tree else None


def row_result(row: dict[str, Any]) -> SearchResult:
    """Rebuild the ``SearchResult`` of a row."""
    usage = row["usage"] if isinstance(row["usage"], dict) else json.loads(row["usage"])
    return SearchResult(problem_id=row["problem_id"], answer=row["answer"], candidates=list(row["candidates"]),
                        tree=row_tree(row), usage=Usage(**usage), scores=list(row["scores"]),
                        truncated=int(row.get("truncated", 0)))
