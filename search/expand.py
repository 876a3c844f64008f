"""The one batched expansion primitive that every tree search here uses.

``expand`` takes frontier nodes from many trees (many problems) at once and asks the policy for
k next steps of each in a single ``Policy.sample`` call, stopping at the task's step delimiter.
With ``HFPolicy`` a node's prefix was cached when the node itself was sampled, so an expansion
prefills about one token per node (``roadmap.core.prefix_cache``). ``score_many`` is the
matching batched call into a ``StepScorer`` (its ``score_batch``), with the scores checked.

Children that repeat a sibling's step text are merged (their prior mass adds up), so that
beams and visits are not wasted on duplicates.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from roadmap.core.errors import ConfigError
from roadmap.core.lengths import Lengths
from roadmap.core.types import Problem, StepScorer, Tree, Usage

__all__ = ["ExpandConfig", "expand", "score_many", "share_usage", "new_tree"]


@dataclass
class ExpandConfig:
    """How next steps are sampled, and the length limits of the stepwise search that samples them."""

    temperature: float = field(default=1.0, metadata={"help": "Sampling temperature of next steps."})
    top_p: float = field(default=1.0, metadata={"help": "Nucleus sampling threshold."})
    lengths: Lengths = field(default_factory=Lengths, metadata={
        "help": "Length limits: max_step_tokens per step, max_steps per solution, rollout_tokens (MCTS)."})


def new_tree(task, problem: Problem) -> Tree:
    """A tree holding only the root: the bare prompt."""
    tree = Tree(problem_id=problem.id, prompt=task.prompt(problem))
    tree.add(-1, "")
    return tree


def expand(
    policy, task, frontier: Sequence[tuple[Tree, int]], k: int, config: ExpandConfig, *, seed: int | None = None,
) -> tuple[list[list[int]], Usage]:
    """Sample ``k`` next steps for every (tree, node) in ``frontier``, in one policy call.

    Returns the ids of the new (deduplicated) children of each frontier node, and the compute
    spent. A child is terminal when the policy ended the solution (EOS), when its step states a
    final answer, when the step ran past ``lengths.max_step_tokens`` without a delimiter, or at
    ``lengths.max_steps``; a step cut by its token limit, and a solution with no answer at
    ``max_steps``, are marked ``truncated``. Priors are the siblings' per-token-normalised probabilities
    exp(logprob / tokens), normalised to sum to one; duplicates add their mass.
    """
    if k < 1:
        raise ConfigError(f"k={k} must be at least 1")
    if not frontier:
        return [], Usage()
    before = policy.usage.copy()
    prefixes = [tree.prompt + tree.text(node) for tree, node in frontier]
    outs = policy.sample(
        prefixes, n=k, stop=task.step_delimiter, max_new_tokens=config.lengths.max_step_tokens,
        temperature=config.temperature, top_p=config.top_p, seed=seed,
    )
    children: list[list[int]] = []
    for (tree, node_id), completions in zip(frontier, outs):
        parent = tree.nodes[node_id]
        by_text: dict[str, int] = {}
        mass: dict[int, float] = {}
        for c in completions:
            if c.text in by_text:
                mass[by_text[c.text]] += _per_token_prob(c)
                continue
            answer = task.extract_answer(c.text) if c.text.strip() else None
            depth = parent.depth + 1
            at_limit = depth >= config.lengths.max_steps and not c.finished and answer is None
            terminal = c.finished or answer is not None or c.truncated or at_limit
            child = tree.add(node_id, c.text, logprob=c.logprob, terminal=terminal, answer=answer,
                             truncated=c.truncated or at_limit)
            if terminal and answer is None:
                child.answer = task.extract_answer(tree.text(child.id))
            by_text[c.text] = child.id
            mass[child.id] = _per_token_prob(c)
        total = sum(mass.values()) or 1.0
        for cid, m in mass.items():
            tree.nodes[cid].prior = m / total
        children.append(list(mass))
    return children, policy.usage - before


def share_usage(usage: list[Usage], spent: Usage, weights: Sequence[int]) -> None:
    """Add ``spent`` (one batched call's compute) to per-problem ``usage`` in proportion to ``weights``."""
    for u, part in zip(usage, spent.split(weights)):
        u += part


def _per_token_prob(c) -> float:
    return math.exp(c.logprob / max(1, c.num_tokens))


def score_many(scorer: StepScorer, problems: Sequence[Problem], texts: Sequence[Sequence[str]]) -> list[list[float]]:
    """``scorer``'s scores of ``texts[i]`` (partial solutions of ``problems[i]``), in one ``score_batch`` call.

    Scores are checked to be finite numbers in [0, 1], one per text.
    """
    if not isinstance(scorer, StepScorer):
        raise TypeError(
            f"scorer={scorer!r} is not a StepScorer: it needs score(problem, texts) and score_batch(problems, texts); "
            "subclass roadmap.core.StepScorer to get score_batch from score"
        )
    out = scorer.score_batch(list(problems), [list(t) for t in texts])
    if len(out) != len(problems):
        raise ValueError(f"{scorer!r} returned scores for {len(out)} problems, not {len(problems)}")
    for p, t, s in zip(problems, texts, out):
        if len(s) != len(t):
            raise ValueError(f"{scorer!r} returned {len(s)} scores for {len(t)} solutions of problem {p.id}")
        for x in s:
            if not (isinstance(x, (int, float)) and 0.0 <= x <= 1.0):
                raise ValueError(
                    f"{scorer!r} returned the score {x!r} for problem {p.id}; a StepScorer must return numbers in "
                    "[0, 1]; NaN is not a score. Fix the scorer, or wrap it to map bad values to 0"
                )
    return out
