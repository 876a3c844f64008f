"""Shared vocabulary of o1-roadmap: problems, completions, usage counters, trees, results.

Everything here is plain data (dataclasses of str/int/float/tuple/dict) so that it can be
written to JSON, read back by another process, and passed across the layers without any of
them importing torch. The tree layout follows the flat-array style of google-deepmind/mctx:
a tree is a list of nodes that point at their parent by index.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "Problem",
    "Completion",
    "Usage",
    "Node",
    "Tree",
    "SearchResult",
    "StepScorer",
]


@dataclass(frozen=True)
class Problem:
    """One math problem with its reference answer.

    Attributes:
        id: stable identifier, unique within a task and split (e.g. "arith-3f2a9c1d").
        question: the problem statement shown to the policy (without any prompt template).
        answer: the reference final answer, as text ("85", "\\frac{1}{2}").
        steps: the reference solution steps, one string per step, when the source has them.
        meta: free-form metadata from the source (difficulty knobs, subject, level, ...).
    """

    id: str
    question: str
    answer: str
    steps: tuple[str, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "question": self.question,
            "answer": self.answer,
            "steps": list(self.steps),
            "meta": dict(self.meta),
        }

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> Problem:
        return cls(
            id=str(row["id"]),
            question=str(row["question"]),
            answer=str(row["answer"]),
            steps=tuple(row.get("steps") or ()),
            meta=dict(row.get("meta") or {}),
        )


@dataclass(frozen=True)
class Completion:
    """One sampled continuation of a prefix.

    Attributes:
        text: the generated text, exactly as it continues the prefix's document (a leading
            space stays; ``prefix + text`` is the document the model wrote). When generation
            stopped at a stop string, the text keeps the whole text of the token that completed
            the stop string (a token ".\n\n" with stop "\n" gives ".\n\n"), so joined steps lose
            no characters; the stop string is inside the text, usually at its end.
        num_tokens: generated tokens, including the one that contained the stop string or EOS.
        logprob: sum of the model's log-probabilities of the generated tokens under the
            untempered distribution (temperature 1, no top-p), i.e. log pi(text | prefix).
        finished: True when generation ended on EOS (the solution is complete); False when it
            stopped at a stop string or at ``max_new_tokens``.
        stopped: True when generation ended on a stop string (a step boundary).
    """

    text: str
    num_tokens: int
    logprob: float
    finished: bool
    stopped: bool = False

    @property
    def truncated(self) -> bool:
        """True when a length limit (``max_new_tokens``) ended the text: neither EOS nor a stop string."""
        return not (self.finished or self.stopped)


@dataclass
class Usage:
    """Compute counters, in tokens and forward passes.

    Attributes:
        prefill_tokens: prompt tokens pushed through the model (computed, not padding).
        cached_prefill_tokens: prompt tokens that were needed but served from a KV cache
            instead of being recomputed (e.g. a prefix shared by n samples counts n-1 times).
        generated_tokens: tokens sampled by the policy.
        forward_passes: calls of the model's forward.
        sampled_sequences: completions returned by ``sample`` (one per sample, not per token).
    """

    prefill_tokens: int = 0
    cached_prefill_tokens: int = 0
    generated_tokens: int = 0
    forward_passes: int = 0
    sampled_sequences: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in dataclasses.fields(self)})

    def __sub__(self, other: Usage) -> Usage:
        return Usage(**{f.name: getattr(self, f.name) - getattr(other, f.name) for f in dataclasses.fields(self)})

    def __iadd__(self, other: Usage) -> Usage:
        for f in dataclasses.fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
        return self

    def copy(self) -> Usage:
        return dataclasses.replace(self)

    def scaled(self, factor: float) -> Usage:
        """Every counter times ``factor``, rounded to the nearest integer (a share of a batched call)."""
        return Usage(**{f.name: round(getattr(self, f.name) * factor) for f in dataclasses.fields(self)})

    def split(self, weights: Sequence[float]) -> list[Usage]:
        """This usage shared out in proportion to ``weights``: one ``Usage`` per weight.

        A batched call (many problems in one ``Policy.sample``) is charged to each problem by
        its weight (e.g. its generated tokens or its nodes). Shares are rounded per counter, so
        they add up to the whole only up to rounding. All-zero weights give zero shares.
        """
        if any(w < 0 for w in weights):
            raise ValueError(f"weights={list(weights)} must be non-negative; pass e.g. each problem's token count")
        total = sum(weights) or 1
        return [self.scaled(w / total) for w in weights]

    def to_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


@dataclass
class Node:
    """One node of a search tree: a partial solution that ends after ``step``.

    Attributes:
        id: index of this node in ``Tree.nodes``.
        parent: index of the parent node, -1 for the root (the bare prompt).
        step: the step text that leads from the parent to this node ("" for the root).
        depth: number of steps from the root.
        prior: policy prior of this step (normalised over siblings), used by PUCT.
        logprob: log pi(step | parent prefix) under the policy.
        visits: number of simulations that passed through this node.
        value_sum: sum of values backed up through this node; the mean is ``value``.
        reward: the scorer's or verifier's reward at this node, if evaluated.
        terminal: True when the partial solution is complete (has a final answer or EOS).
        answer: the extracted final answer of a terminal node.
        truncated: True when a length limit ended this terminal node (its step, rollout or
            completion ran out of tokens, or the solution reached ``Lengths.max_steps`` with no
            answer), rather than EOS or a stated answer.
    """

    id: int
    parent: int
    step: str
    depth: int = 0
    prior: float = 1.0
    logprob: float = 0.0
    visits: int = 0
    value_sum: float = 0.0
    reward: float | None = None
    terminal: bool = False
    answer: str | None = None
    truncated: bool = False

    @property
    def value(self) -> float:
        return self.value_sum / self.visits if self.visits else 0.0


@dataclass
class Tree:
    """A search tree over one problem: flat list of nodes, node 0 is the root.

    The tree keeps an index from each node to its children (in the order they were added),
    built from ``nodes`` when the tree is made and extended by ``add``; it is not a field, so
    it is not written by ``to_dict`` nor compared by ``==``. Nodes are added with ``add``; a node's
    ``parent`` never changes.
    """

    problem_id: str
    prompt: str
    nodes: list[Node] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._children: dict[int, list[int]] = {}
        self._indexed = 0  # nodes[:_indexed] are in _children
        self._index()

    def _index(self) -> None:
        for node in self.nodes[self._indexed:]:
            self._children.setdefault(node.parent, []).append(node.id)
        self._indexed = len(self.nodes)

    def add(self, parent: int, step: str, **kwargs: Any) -> Node:
        """Append a child of ``parent`` (-1 for the root) with ``step`` and return it."""
        depth = self.nodes[parent].depth + 1 if parent >= 0 else 0
        node = Node(id=len(self.nodes), parent=parent, step=step, depth=depth, **kwargs)
        self.nodes.append(node)
        self._index()
        return node

    def child_ids(self, node_id: int) -> list[int]:
        """Ids of ``node_id``'s children, in the order they were added ([] for a leaf)."""
        if self._indexed != len(self.nodes):
            self._index()
        return list(self._children.get(node_id, ()))

    def children(self, node_id: int) -> list[Node]:
        """``node_id``'s children, in the order they were added ([] for a leaf)."""
        return [self.nodes[c] for c in self.child_ids(node_id)]

    def path(self, node_id: int) -> list[Node]:
        """Nodes from the root's first child down to ``node_id`` (root excluded)."""
        out = []
        while node_id > 0:
            node = self.nodes[node_id]
            out.append(node)
            node_id = node.parent
        return out[::-1]

    def text(self, node_id: int) -> str:
        """The solution text (steps concatenated) of the partial solution at ``node_id``."""
        return "".join(n.step for n in self.path(node_id))

    def to_dict(self) -> dict[str, Any]:
        return {
            "problem_id": self.problem_id,
            "prompt": self.prompt,
            "nodes": [dataclasses.asdict(n) for n in self.nodes],
        }

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> Tree:
        return cls(row["problem_id"], row["prompt"], [Node(**n) for n in row["nodes"]])


@dataclass
class SearchResult:
    """Output of a search or sampling method on one problem.

    Attributes:
        problem_id: the problem searched.
        answer: the final answer chosen by the method (None when no candidate had one).
        candidates: complete solution texts considered, best first when the method ranks them.
        tree: the search tree, when the method builds one.
        usage: compute spent on this problem.
        scores: one score per candidate when the method scores them.
        truncated: how many of ``candidates`` a length limit cut (``roadmap.core.Lengths``).
    """

    problem_id: str
    answer: str | None
    candidates: list[str] = field(default_factory=list)
    tree: Tree | None = None
    usage: Usage = field(default_factory=Usage)
    scores: list[float] = field(default_factory=list)
    truncated: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "problem_id": self.problem_id,
            "answer": self.answer,
            "candidates": list(self.candidates),
            "scores": list(self.scores),
            "tree": self.tree.to_dict() if self.tree is not None else None,
            "usage": self.usage.to_dict(),
            "truncated": self.truncated,
        }


@runtime_checkable
class StepScorer(Protocol):
    """Scores partial or complete solutions of one problem; every score lies in [0, 1].

    A PRM, an ORM, or a verifier seen through the same interface. ``partial_solutions`` are
    solution texts (without the prompt), each made of whole steps.

    Search calls ``score_batch`` (many problems in one call, so a model can batch across
    them). A scorer that subclasses ``StepScorer`` gets the default, one ``score`` call per
    problem; a scorer that can batch (``rewards.PRMScorer``) defines its own.
    """

    def score(self, problem: Problem, partial_solutions: Sequence[str]) -> list[float]:
        """One score in [0, 1] per partial solution of ``problem``."""
        ...

    def score_batch(self, problems: Sequence[Problem], solutions: Sequence[Sequence[str]]) -> list[list[float]]:
        """``score`` of ``solutions[i]`` under ``problems[i]`` for every i; a problem with no solutions gets []."""
        return [self.score(p, list(s)) if s else [] for p, s in zip(problems, solutions)]
