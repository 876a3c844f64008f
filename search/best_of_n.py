"""Best-of-N family: sample N complete solutions per problem, then pick one answer.

- majority vote, i.e. self-consistency (Wang et al., arXiv 2203.11171): the most frequent answer;
- best-of-N by a ``StepScorer``: the answer of the highest-scoring solution (Cobbe et al.,
  arXiv 2110.14168; Lightman et al., arXiv 2305.20050);
- weighted best-of-N: scores summed per distinct answer, the largest sum wins (Li et al.,
  arXiv 2206.02336; search-and-learn's "weighted BoN").

All problems are sampled in one batched policy call. Each ``SearchResult`` has the problem's
exact generated tokens and sequences; prefill tokens and forward passes of the shared batch are
shared out in proportion to the problem's generated tokens.
"""

from __future__ import annotations

import dataclasses
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from roadmap.core.errors import ConfigError
from roadmap.core.lengths import Lengths
from roadmap.core.types import Problem, SearchResult
from search.expand import score_many

__all__ = ["BestOfNConfig", "majority_vote", "weighted_vote", "best_answer", "sample_candidates", "best_of_n",
           "SELECTIONS"]

SELECTIONS = ("majority", "best", "weighted")


@dataclass
class BestOfNConfig:
    """How N solutions are sampled and one is picked."""

    n: int = field(default=16, metadata={"help": "Solutions sampled per problem."})
    selection: str = field(default="weighted", metadata={"help": "'majority', 'best' (top score) or 'weighted'."})
    temperature: float = field(default=1.0, metadata={"help": "Sampling temperature."})
    top_p: float = field(default=1.0, metadata={"help": "Nucleus sampling threshold."})
    lengths: Lengths = field(default_factory=Lengths, metadata={
        "help": "Length limits; a solution is at most lengths.max_solution_tokens long."})
    seed: int = field(default=0, metadata={"help": "Sampling seed."})

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ConfigError(f"n={self.n} must be at least 1")
        if self.selection not in SELECTIONS:
            raise ConfigError(f"selection={self.selection!r} is unknown; use one of {SELECTIONS}")


def majority_vote(answers: Sequence[str | None]) -> str | None:
    """The most frequent non-None answer; ties go to the answer seen first. None if all are None."""
    counts = Counter(a for a in answers if a is not None)
    if not counts:
        return None
    best = max(counts.values())
    return next(a for a in answers if a is not None and counts[a] == best)


def weighted_vote(answers: Sequence[str | None], scores: Sequence[float]) -> str | None:
    """The answer whose solutions' scores sum highest; ties go to the answer seen first."""
    totals: dict[str, float] = defaultdict(float)
    for a, s in zip(answers, scores):
        if a is not None:
            totals[a] += s
    if not totals:
        return None
    best = max(totals.values())
    return next(a for a in answers if a is not None and totals[a] == best)


def best_answer(answers: Sequence[str | None], scores: Sequence[float]) -> str | None:
    """The answer of the highest-scoring solution that states one (a solution with no answer cannot
    be picked, however well it scores); ties go to the solution seen first. None if none answers."""
    best = max((i for i, a in enumerate(answers) if a is not None), key=lambda i: scores[i], default=None)
    return None if best is None else answers[best]


def sample_candidates(policy, task, problems: Sequence[Problem], config: BestOfNConfig) -> list[SearchResult]:
    """N sampled solutions per problem as ``SearchResult`` candidates (no answer chosen yet).

    ``truncated`` counts the solutions that ``lengths.max_solution_tokens`` cut.
    """
    before = policy.usage.copy()
    outs = policy.sample(
        [task.prompt(p) for p in problems], n=config.n, max_new_tokens=config.lengths.max_solution_tokens,
        temperature=config.temperature, top_p=config.top_p, seed=config.seed,
    )
    generated = [sum(c.num_tokens for c in row) for row in outs]
    shares = (policy.usage - before).split(generated)
    results = []
    for p, row, gen, share in zip(problems, outs, generated, shares):
        # a problem's own tokens and sequences are known exactly; the rest is its share of the batch
        usage = dataclasses.replace(share, generated_tokens=gen, sampled_sequences=len(row))
        results.append(SearchResult(problem_id=p.id, answer=None, candidates=[c.text for c in row], usage=usage,
                                    truncated=sum(c.truncated for c in row)))
    return results


def best_of_n(
    policy, task, problems: Sequence[Problem], scorer=None, config: BestOfNConfig | None = None
) -> list[SearchResult]:
    """Sample ``config.n`` solutions per problem and choose an answer by ``config.selection``.

    ``scorer`` (a ``StepScorer``) is needed for "best" and "weighted". Candidates are returned
    best first when scored, with their scores.
    """
    config = config or BestOfNConfig()
    if config.selection != "majority" and scorer is None:
        raise ConfigError(f"selection={config.selection!r} needs a scorer (a PRM, ORM or verifier); pass scorer=...")
    results = sample_candidates(policy, task, problems, config)
    if config.selection == "majority":
        for r in results:
            r.answer = majority_vote([task.extract_answer(c) for c in r.candidates])
        return results
    scores = score_many(scorer, problems, [r.candidates for r in results])
    for r, s in zip(results, scores):
        answers = [task.extract_answer(c) for c in r.candidates]
        order = sorted(range(len(s)), key=lambda i: -s[i])
        r.answer = best_answer(answers, s) if config.selection == "best" else weighted_vote(answers, s)
        r.candidates = [r.candidates[i] for i in order]
        r.scores = [s[i] for i in order]
    return results
