"""Every test-time method by name: one typed registry, as search-and-learn's ``APPROACHES`` dict.

``TEST_TIME_METHODS`` holds one ``TestTimeMethod`` per name. Its ``kind`` says who runs it and what its budget N
means, and ``needs_scorer`` whether it needs a reward model:

- ``sampling``: ``greedy`` (one greedy solution; N unused) and ``majority`` (N sampled solutions, the most frequent
  answer), run by ``roadmap.app.evaluate.evaluate``;
- ``search``: a ``SearchFn`` over a ``SearchBudget``. Every one takes ``(policy, task, problems, scorer, budget, *,
  verifier=None)`` and returns one ``SearchResult`` per problem. ``SearchBudget`` is the one knob set every search
  method shares (a budget N per problem, a width M, a seed, a temperature); each maps it to its own algorithm's
  config, so that methods compared at one N spend comparable compute:

  - ``bon``/``weighted`` sample N solutions (best score, or score-weighted vote);
  - ``beam``/``dvts`` keep N beams of width ``min(M, N)``, so they sample N steps at every depth;
  - ``mcts`` runs N simulations that each expand ``min(M, N)`` children: one step per simulation
    along the deepest path, so on solutions of about M steps it samples about as many steps as
    beam search at the same N;
- ``sequential``: one greedy chain of thought under budget forcing (``search.budget_forcing``): the bench runs it
  at N × ``thinking_unit`` thinking tokens, ``roadmap eval --method sequential`` as greedy under
  ``--thinking-budget`` tokens.

The CLI's choices, the benchmark's methods and train-time search all read this registry, so a
new search method is one ``register_search`` entry (``needs_scorer=False`` for one that runs without a
scorer; ``docs/extending.md`` walks through one). A search function sees a task only through ``SearchTask``.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from roadmap.core.errors import ConfigError
from roadmap.core.lengths import Lengths
from roadmap.core.types import Problem, SearchResult, StepScorer

if TYPE_CHECKING:
    from roadmap.core.policy import Policy

__all__ = ["SearchBudget", "SearchFn", "SearchTask", "TestTimeMethod", "TEST_TIME_METHODS", "SEARCH_METHODS",
           "register_search", "unregister_search", "get_search", "search_method_names", "search_needs_scorer",
           "test_time_method", "test_time_method_names", "longest_candidate"]


@runtime_checkable
class SearchTask(Protocol):
    """What the search methods read of a task (``roadmap.core.tasks.Task`` has all of it, and so do test fakes)."""

    #: the text that ends a step (beam, DVTS and MCTS expand one step at a time)
    step_delimiter: str

    def prompt(self, problem: Problem) -> str: ...

    def extract_answer(self, text: str) -> str | None: ...

    def answers_match(self, predicted: str, reference: str) -> bool: ...

    def is_correct(self, problem: Problem, text: str) -> bool: ...


class SearchFn(Protocol):
    """A search method: one ``SearchResult`` per problem. ``scorer`` is None at train time (or for a method
    registered with ``needs_scorer=False``); ``verifier`` is an outcome check a train-time search may use."""

    def __call__(self, policy: Policy, task: SearchTask, problems: Sequence[Problem], scorer: StepScorer | None,
                 budget: SearchBudget, *, verifier: Any = None) -> list[SearchResult]: ...


KINDS = ("sampling", "search", "sequential")


@dataclass(frozen=True)
class TestTimeMethod:
    """One registry entry: who runs the method (``kind``), whether it needs a scorer, what its budget N means,
    and, for a search method, its function."""

    __test__ = False  # not a pytest class

    name: str
    kind: str
    needs_scorer: bool
    budget: str
    fn: SearchFn | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"kind={self.kind!r} of test-time method {self.name!r} is unknown; use one of {KINDS}")
        if (self.fn is not None) != (self.kind == "search"):
            raise ConfigError(f"test-time method {self.name!r}: a search method has a function, no other kind has")


#: method name -> its entry, in registration order; ``register_search`` adds to it
TEST_TIME_METHODS: dict[str, TestTimeMethod] = {}



class _SearchMethods(MutableMapping):
    """The ``search`` kind of ``TEST_TIME_METHODS`` as name -> function: a live view (setting an item registers or
    replaces a method's function, deleting one unregisters it)."""

    def __getitem__(self, name: str) -> SearchFn:
        entry = TEST_TIME_METHODS.get(name)
        if entry is None or entry.fn is None:
            raise KeyError(name)
        return entry.fn

    def __setitem__(self, name: str, fn: SearchFn) -> None:
        """Replace the function of a search method (as a dict would: ``monkeypatch.setitem`` works), keeping its
        ``needs_scorer``; a new name is registered as ``register_search(name, fn)`` would."""
        entry = TEST_TIME_METHODS.get(name)
        if entry is not None and entry.fn is None:
            raise ValueError(f"test-time method {name!r} is the {entry.kind} method, not a search function; pick another name")
        needs = entry.needs_scorer if entry is not None else True
        TEST_TIME_METHODS[name] = TestTimeMethod(name, "search", needs, "search", fn)

    def __delitem__(self, name: str) -> None:
        self[name]  # noqa: B018  # KeyError for a name that is not a search method
        del TEST_TIME_METHODS[name]

    def __iter__(self) -> Iterator[str]:
        return iter(test_time_method_names("search"))

    def __len__(self) -> int:
        return len(test_time_method_names("search"))

    def __repr__(self) -> str:
        return repr(dict(self))


#: search method name -> search function: a live view of the ``search`` kind of ``TEST_TIME_METHODS``
SEARCH_METHODS: MutableMapping[str, SearchFn] = _SearchMethods()

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
    """Add the search function ``fn`` under ``name`` (``TEST_TIME_METHODS``, ``SEARCH_METHODS``); without ``fn``,
    a decorator that does.

    ``needs_scorer=False`` says the method runs without a scorer (it is then passed ``scorer=None`` at test
    time): ``roadmap eval`` and ``roadmap bench`` run it without ``--prm``. Registering a different function
    under a name already taken raises ValueError.
    """

    def add(f: SearchFn) -> SearchFn:
        taken = TEST_TIME_METHODS.get(name)
        if taken is not None and taken.fn is not f:
            what = getattr(taken.fn, "__qualname__", repr(taken.fn)) if taken.fn is not None else f"the {taken.kind} method"
            raise ValueError(f"test-time method {name!r} is already registered to {what}; pick another name")
        TEST_TIME_METHODS[name] = TestTimeMethod(name, "search", needs_scorer, "search", f)
        return f

    return add if fn is None else add(fn)


def unregister_search(name: str) -> None:
    """Remove the search method ``name`` (a plugin's or a test's) from the registry; an unknown name is a no-op,
    and the other kinds (greedy, majority, sequential) stay."""
    if name in SEARCH_METHODS:
        del SEARCH_METHODS[name]


def test_time_method(name: str) -> TestTimeMethod:
    """The entry of the test-time method ``name``; an unknown name is refused, naming every method."""
    if name not in TEST_TIME_METHODS:
        raise ConfigError(f"method={name!r} is not a test-time method; use one of {test_time_method_names()} "
                          "(add a search method with search.register_search)")
    return TEST_TIME_METHODS[name]


test_time_method.__test__ = False  # type: ignore[attr-defined]  # not a pytest test when imported into one


def test_time_method_names(*kinds: str) -> tuple[str, ...]:
    """The registered test-time methods of ``kinds`` (all kinds when none is given), in registration order."""
    return tuple(n for n, m in TEST_TIME_METHODS.items() if not kinds or m.kind in kinds)


test_time_method_names.__test__ = False  # type: ignore[attr-defined]


def search_method_names() -> tuple[str, ...]:
    """The registered search methods, in registration order."""
    return test_time_method_names("search")


def search_needs_scorer(name: str) -> bool:
    """Whether the registered search method ``name`` needs a scorer at test time (a PRM, ``--prm``)."""
    get_search(name)  # names the registered methods when it is not one
    return TEST_TIME_METHODS[name].needs_scorer


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
    def run(policy: Policy, task: SearchTask, problems: Sequence[Problem], scorer: StepScorer | None,
            budget: SearchBudget, *, verifier: Any = None) -> list[SearchResult]:
        from search.best_of_n import BestOfNConfig, best_of_n

        config = BestOfNConfig(n=budget.budget, selection=selection, seed=budget.seed, temperature=budget.temperature,
                               lengths=budget.lengths)
        return best_of_n(policy, task, problems, _guide(scorer, verifier), config)

    run.__qualname__ = f"best_of_n[{selection}]"
    return run


def _beam(groups: str) -> SearchFn:
    def run(policy: Policy, task: SearchTask, problems: Sequence[Problem], scorer: StepScorer | None,
            budget: SearchBudget, *, verifier: Any = None) -> list[SearchResult]:
        from search.beam import BeamConfig, beam_search, dvts
        from search.expand import ExpandConfig

        m = min(budget.width, budget.budget)
        config = BeamConfig(n=budget.budget - budget.budget % m, width=m, seed=budget.seed,
                            expand=ExpandConfig(temperature=budget.temperature, lengths=budget.lengths))
        return (beam_search if groups == "beam" else dvts)(policy, task, problems, _guide(scorer, verifier), config)

    run.__qualname__ = groups
    return run


def _mcts(policy: Policy, task: SearchTask, problems: Sequence[Problem], scorer: StepScorer | None,
          budget: SearchBudget, *, verifier: Any = None) -> list[SearchResult]:
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


for _name, _budget in (("greedy", "none: one greedy solution"), ("majority", "N sampled solutions")):
    TEST_TIME_METHODS[_name] = TestTimeMethod(_name, "sampling", needs_scorer=False, budget=_budget)
del _name, _budget
register_search("bon", _best_of_n("best"))
register_search("weighted", _best_of_n("weighted"))
register_search("beam", _beam("beam"))
register_search("dvts", _beam("dvts"))
register_search("mcts", _mcts)
TEST_TIME_METHODS["sequential"] = TestTimeMethod("sequential", "sequential", needs_scorer=False,
                                                 budget="bench: N × thinking_unit thinking tokens; eval: --thinking-budget tokens")
