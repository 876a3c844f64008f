"""Step-level beam search and DVTS, guided by a ``StepScorer`` (usually a PRM).

Definitions follow huggingface/search-and-learn (and Snell et al., arXiv 2408.03314):

- Beam search with N beams and beam width M: sample N first steps; at every depth score the
  candidates, keep the top N/M, and expand each with M next steps, so N candidates stay in play.
- DVTS (diverse verifier tree search, Beeching et al. 2024): N/M independent subtrees, each
  keeping only its best candidate and expanding it M ways; diversity comes from the split.

Both are one function over "groups": a group keeps its top ``keep`` partial solutions and
expands each ``width`` ways. Candidates of every group of every problem are expanded in one
batched policy call per depth and scored in one batched scorer call. A candidate that ends
(final answer or EOS) leaves the beam and joins the completed solutions; the search ends when
no beam is left or ``Lengths.max_steps`` is reached (``expand.lengths``). The answer is the completed solution with the
best score, or the weighted vote over completed solutions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from roadmap.core.errors import ConfigError
from roadmap.core.types import Problem, SearchResult, Usage
from search.best_of_n import weighted_vote
from search.expand import ExpandConfig, expand, new_tree, score_many, share_usage

__all__ = ["BeamConfig", "beam_search", "dvts"]


@dataclass
class BeamConfig:
    """Knobs of beam search and DVTS."""

    n: int = field(default=16, metadata={"help": "Total beams N (candidates in play per depth)."})
    width: int = field(default=4, metadata={"help": "Beam width M: next steps sampled per kept beam."})
    selection: str = field(default="best", metadata={"help": "Final answer: 'best' completed or 'weighted' vote."})
    expand: ExpandConfig = field(default_factory=ExpandConfig, metadata={"help": "Step sampling."})
    seed: int = field(default=0, metadata={"help": "Sampling seed."})

    def __post_init__(self) -> None:
        if self.width < 1 or self.n < self.width or self.n % self.width:
            raise ConfigError(f"n={self.n} must be a positive multiple of width={self.width}; e.g. n=16, width=4")
        if self.selection not in ("best", "weighted"):
            raise ConfigError(f"selection={self.selection!r} must be 'best' or 'weighted'")


def _reward(node) -> float:
    """A scored node's reward (every node beam search ranks was scored when it was expanded)."""
    if node.reward is None:
        raise RuntimeError(f"node {node.id} was ranked before it was scored")  # a bug, not bad input
    return node.reward


def _search(policy, task, problems, scorer, config: BeamConfig, groups: int, keep: int) -> list[SearchResult]:
    trees = [new_tree(task, p) for p in problems]
    usage = [Usage() for _ in problems]
    # beams[i][g]: node ids of problem i, group g, kept for expansion at this depth
    beams = [[[0] for _ in range(groups)] for _ in problems]
    completed: list[list[int]] = [[] for _ in problems]
    for depth in range(config.expand.lengths.max_steps):
        frontier, owners = [], []
        for i, per_group in enumerate(beams):
            for g, kept in enumerate(per_group):
                for node in kept:
                    frontier.append((trees[i], node))
                    owners.append((i, g))
        if not frontier:
            break
        # at the root every group draws its N/groups first steps from the prompt; afterwards
        # every kept beam is expanded `width` ways
        k = config.width if depth else config.n // groups
        kids, spent = expand(policy, task, frontier, k, config.expand, seed=config.seed + 1_000_003 * depth)
        candidates: dict[tuple[int, int], list[int]] = {}
        for (i, g), new in zip(owners, kids):
            candidates.setdefault((i, g), []).extend(new)
        per_problem: list[list[int]] = [[] for _ in problems]
        for (i, _), new in candidates.items():
            per_problem[i].extend(new)
        texts = [[trees[i].text(c) for c in per_problem[i]] for i in range(len(problems))]
        scored = score_many(scorer, problems, texts)
        for i, (ids, s) in enumerate(zip(per_problem, scored)):
            for c, x in zip(ids, s):
                trees[i].nodes[c].reward = x
        share_usage(usage, spent, [len(x) for x in per_problem])
        for i in range(len(problems)):
            nodes = trees[i].nodes
            for g in range(groups):
                cands = candidates.get((i, g), [])
                completed[i].extend(c for c in cands if nodes[c].terminal)
                alive = sorted((c for c in cands if not nodes[c].terminal), key=lambda c: -_reward(nodes[c]))
                beams[i][g] = alive[:keep]
    results = []
    for i, p in enumerate(problems):
        tree = trees[i]
        done = sorted(completed[i], key=lambda c: -_reward(tree.nodes[c]))
        answers = [tree.nodes[c].answer for c in done]
        scores = [_reward(tree.nodes[c]) for c in done]
        if config.selection == "best":
            answer = next((a for a in answers if a is not None), None)
        else:
            answer = weighted_vote(answers, scores)
        results.append(SearchResult(
            problem_id=p.id, answer=answer, candidates=[tree.text(c) for c in done],
            tree=tree, usage=usage[i], scores=scores, truncated=sum(tree.nodes[c].truncated for c in done),
        ))
    return results



def beam_search(policy, task, problems: Sequence[Problem], scorer, config: BeamConfig | None = None):
    """Step-level beam search: keep the top N/M candidates per depth, expand each M ways."""
    config = config or BeamConfig()
    return _search(policy, task, problems, scorer, config, groups=1, keep=config.n // config.width)


def dvts(policy, task, problems: Sequence[Problem], scorer, config: BeamConfig | None = None):
    """DVTS: N/M independent subtrees, each keeping its best candidate and expanding it M ways."""
    config = config or BeamConfig()
    return _search(policy, task, problems, scorer, config, groups=config.n // config.width, keep=1)
