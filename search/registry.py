"""Search methods by name: one name -> function registry, as search-and-learn's ``APPROACHES`` dict.

Every entry takes ``(policy, task, problems, scorer, budget, *, verifier=None)`` and returns one
``SearchResult`` per problem. ``SearchBudget`` is the one knob set every method shares (a budget N
per problem, a width M, a seed, a temperature); each entry maps it to its own algorithm's config,
so that methods compared at one N spend comparable compute:

- ``bon``/``weighted`` sample N solutions (best score, or score-weighted vote);
- ``beam``/``dvts`` keep N beams of width ``min(M, N)``, so they sample N steps at every depth;
- ``mcts`` runs N simulations that each expand ``min(M, N)`` children: one step per simulation
  along the deepest path, so on solutions of about M steps it samples about as many steps as
  beam search at the same N.

The CLI's choices, the benchmark's methods and train-time search all read this registry, so a
new method is one ``register_search`` entry (``needs_scorer=False`` for one that runs without a
scorer; ``docs/extending.md`` walks through one).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from roadmap.core.errors import ConfigError
from roadmap.core.lengths import Lengths
from roadmap.core.types import Problem, SearchResult

__all__ = ["SearchBudget", "SearchFn", "SEARCH_METHODS", "register_search", "unregister_search", "get_search",
           "search_method_names", "search_needs_scorer", "longest_candidate"]

#: ``(policy, task, problems, scorer, budget, *, verifier=None) -> list[SearchResult]``
SearchFn = Callable[..., list[SearchResult]]

#: method name -> search function; ``register_search`` adds to it, ``get_search`` reads it
SEARCH_METHODS: dict[str, SearchFn] = {}

#: the registered methods that run without a scorer (``register_search(..., needs_scorer=False)``)
_UNSCORED: set[str] = set()

MCTS_EVALUATIONS = ("scorer", "rollout", "both")


@dataclass(frozen=True)
class SearchBudget:
    """The settings every search method shares; each method maps them to its own config.

    Attributes:
        budget: N, solutions (bon), beams (beam, dvts) or simulations (mcts) per problem.
        width: M, beam width or children per MCTS expansion (capped at N).
        seed: sampling seed.
        temperature: sampling temperature of every step.
        mcts_evaluation: MCTS leaf values: "scorer" (the StepScorer; test time), "rollout"
            (verified rollouts; train time) or "both".
        lengths: the length limits (``roadmap.core.Lengths``): best-of-N solutions are at most
            ``max_solution_tokens`` long; beam, DVTS and MCTS steps ``max_step_tokens``, their
            solutions ``max_steps`` steps; MCTS rollouts ``rollout_tokens``.
    """

    budget: int
    width: int = 4
    seed: int = 0
    temperature: float = 1.0
    mcts_evaluation: str = "scorer"
    lengths: Lengths = field(default_factory=Lengths)

    def __post_init__(self) -> None:
        if self.budget < 1:
            raise ConfigError(f"budget={self.budget} must be at least 1")
        if self.width < 1:
            raise ConfigError(f"width={self.width} must be at least 1")
        if self.mcts_evaluation not in MCTS_EVALUATIONS:
            raise ConfigError(f"mcts_evaluation={self.mcts_evaluation!r} is unknown; use one of {MCTS_EVALUATIONS}")


def register_search(name: str, fn: SearchFn | None = None, *, needs_scorer: bool = True) -> Any:
    """Add ``fn`` to ``SEARCH_METHODS`` under ``name``; without ``fn``, a decorator that does.

    ``needs_scorer=False`` says the method runs without a scorer (it is then passed ``scorer=None`` at test
    time): ``roadmap eval`` and ``roadmap bench`` run it without ``--prm``. Registering a different function
    under a name already taken raises ValueError.
    """

    def add(f: SearchFn) -> SearchFn:
        if SEARCH_METHODS.get(name, f) is not f:
            raise ValueError(f"search method {name!r} is already registered to {SEARCH_METHODS[name].__qualname__}; "
                             "pick another name")
        SEARCH_METHODS[name] = f
        (_UNSCORED.discard if needs_scorer else _UNSCORED.add)(name)
        return f

    return add if fn is None else add(fn)


def unregister_search(name: str) -> None:
    """Remove the method ``name`` (a plugin's or a test's) from the registry; an unknown name is a no-op."""
    SEARCH_METHODS.pop(name, None)
    _UNSCORED.discard(name)


def search_method_names() -> tuple[str, ...]:
    """The registered search methods, in registration order."""
    return tuple(SEARCH_METHODS)


def search_needs_scorer(name: str) -> bool:
    """Whether the registered method ``name`` needs a scorer at test time (a PRM, ``--prm``)."""
    get_search(name)  # names the registered methods when it is not one
    return name not in _UNSCORED


def get_search(name: str) -> SearchFn:
    """The search function registered as ``name``."""
    if name not in SEARCH_METHODS:
        raise ConfigError(f"method={name!r} is not a search method; use one of {search_method_names()} "
                          "(add one with search.register_search)")
    return SEARCH_METHODS[name]


def longest_candidate(method: str, lengths: Lengths) -> tuple[int, str] | None:
    """The most solution tokens a candidate of ``method`` can have under ``lengths``, and the limits (with
    their CLI flags) that set it; None for a method registered elsewhere, whose lengths are unknown here.

    What a scorer must be able to read: ``bon``/``weighted`` score whole solutions, the stepwise
    methods up to ``max_steps`` steps of ``max_step_tokens``.
    """
    if method in ("bon", "weighted"):
        return lengths.max_solution_tokens, "lengths.max_solution_tokens (--max-new-tokens)"
    if method in ("beam", "dvts", "mcts"):
        return (lengths.max_steps * lengths.max_step_tokens,
                "lengths.max_steps × lengths.max_step_tokens (--max-solution-steps, --max-step-tokens)")
    return None


# A verifier passed to bon/beam/dvts guides them when there is no scorer (train time may look at
# the answer); MCTS takes it separately, for rollouts and terminal leaves.
def _guide(scorer, verifier):
    return scorer if scorer is not None else verifier


def _best_of_n(selection: str) -> SearchFn:
    def run(policy, task, problems: Sequence[Problem], scorer, budget: SearchBudget, *, verifier=None):
        from search.best_of_n import BestOfNConfig, best_of_n

        config = BestOfNConfig(n=budget.budget, selection=selection, seed=budget.seed, temperature=budget.temperature,
                               lengths=budget.lengths)
        return best_of_n(policy, task, problems, _guide(scorer, verifier), config)

    run.__qualname__ = f"best_of_n[{selection}]"
    return run


def _beam(groups: str) -> SearchFn:
    def run(policy, task, problems: Sequence[Problem], scorer, budget: SearchBudget, *, verifier=None):
        from search.beam import BeamConfig, beam_search, dvts
        from search.expand import ExpandConfig

        m = min(budget.width, budget.budget)
        config = BeamConfig(n=budget.budget - budget.budget % m, width=m, seed=budget.seed,
                            expand=ExpandConfig(temperature=budget.temperature, lengths=budget.lengths))
        return (beam_search if groups == "beam" else dvts)(policy, task, problems, _guide(scorer, verifier), config)

    run.__qualname__ = groups
    return run


def _mcts(policy, task, problems: Sequence[Problem], scorer, budget: SearchBudget, *, verifier=None):
    """MCTS guided by a scorer alone (test time) widens a node whose children all score below 0.5
    (``MCTSConfig.widen_below``): with a fixed M children per node it could not retry a step the
    policy gets wrong most of the time. Rollout-valued MCTS (train time) does not widen: a child
    valued 0 there is one failed rollout, not a judged step."""
    from search.expand import ExpandConfig
    from search.mcts import MCTSConfig, mcts

    evaluation = budget.mcts_evaluation
    config = MCTSConfig(simulations=budget.budget, k=min(budget.width, budget.budget), seed=budget.seed,
                        evaluation=evaluation, expand=ExpandConfig(temperature=budget.temperature, lengths=budget.lengths),
                        widen_below=0.5 if evaluation == "scorer" else None)
    return mcts(policy, task, problems, scorer, config, verifier=verifier)


register_search("bon", _best_of_n("best"))
register_search("weighted", _best_of_n("weighted"))
register_search("beam", _beam("beam"))
register_search("dvts", _beam("dvts"))
register_search("mcts", _mcts)
