"""Search (roadmap component 3): best-of-N, voting, step beam search, DVTS and MCTS over a Policy.

Every algorithm takes (policy, task, problems, scorer, config) and returns one ``SearchResult``
per problem, with its tree and compute; none imports torch or a reward package: the scorer is
any ``roadmap.core.StepScorer``. ``search.registry`` names them (with greedy, majority and sequential: every test-time method): ``get_search(name)`` is the
function, ``SearchBudget`` the budget every method shares, ``register_search`` adds one.
"""

from search.beam import BeamConfig, beam_search, dvts
from search.best_of_n import (
    SELECTIONS,
    BestOfNConfig,
    best_answer,
    best_of_n,
    majority_vote,
    sample_candidates,
    weighted_vote,
)
from search.expand import ExpandConfig, expand, new_tree, score_many
from search.lift import can_lift, lifted_candidates
from search.mcts import EVALUATIONS, MCTSConfig, mcts
from search.registry import (
    SEARCH_METHODS,
    TEST_TIME_METHODS,
    SearchBudget,
    SearchFn,
    SearchTask,
    TestTimeMethod,
    get_search,
    register_search,
    search_method_names,
    search_needs_scorer,
    test_time_method,
    test_time_method_names,
    unregister_search,
)
from search.trees import read_trees, result_row, row_result, row_tree, trees_dataset, write_trees

__all__ = [
    "ExpandConfig",
    "expand",
    "new_tree",
    "score_many",
    "BestOfNConfig",
    "best_of_n",
    "sample_candidates",
    "majority_vote",
    "weighted_vote",
    "best_answer",
    "SELECTIONS",
    "BeamConfig",
    "beam_search",
    "dvts",
    "MCTSConfig",
    "mcts",
    "lifted_candidates",
    "can_lift",
    "SEARCH_METHODS",
    "TEST_TIME_METHODS",
    "SearchBudget",
    "SearchFn",
    "SearchTask",
    "TestTimeMethod",
    "test_time_method",
    "test_time_method_names",
    "get_search",
    "register_search",
    "search_method_names",
    "search_needs_scorer",
    "unregister_search",
    "EVALUATIONS",
    "result_row",
    "row_result",
    "row_tree",
    "write_trees",
    "read_trees",
    "trees_dataset",
]
