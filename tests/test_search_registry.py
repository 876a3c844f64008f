"""search.registry: one entry makes a method reachable from the CLI, the benchmark and train-time search."""

from __future__ import annotations

import pytest
from fakes import BanditPolicy, BanditTask, PathScorer

from roadmap.app.bench import TestTimeConfig, bench_methods, bench_test_time
from roadmap.app.cli import build_parser
from roadmap.app.cli_fields import config_values
from roadmap.app.evaluate import run_search
from roadmap.app.train_search import TrainSearchConfig, search_train
from search import SEARCH_METHODS, SearchBudget, get_search, register_search, search_method_names


@pytest.fixture
def toy_method():
    """A method registered once, as a user would: it runs best-of-N and records what it was given."""
    calls: list[dict] = []

    def toy(policy, task, problems, scorer, budget, *, verifier=None):
        calls.append({"budget": budget, "scorer": scorer, "verifier": verifier, "problems": len(problems)})
        return get_search("bon")(policy, task, problems, scorer, budget, verifier=verifier)

    register_search("toy", toy)
    try:
        yield calls
    finally:
        del SEARCH_METHODS["toy"]


def test_a_registered_method_reaches_cli_bench_and_train_time_search(toy_method, tmp_path):
    assert search_method_names()[-1] == "toy"
    # the CLI's choices
    parser = build_parser()
    assert parser.parse_args(["eval", "--policy", "p", "--method", "toy"]).method == "toy"
    assert parser.parse_args(["search", "--policy", "p", "--out", "o", "--method", "toy"]).method == "toy"
    bench_args = parser.parse_args(["bench", "test-time", "--policy", "p", "--out", "o"])
    assert "toy" in TestTimeConfig(**config_values(bench_args, "bench")).methods  # the default grid takes it
    assert parser.parse_args(["bench", "test-time", "--policy", "p", "--out", "o", "--methods", "greedy,toy"]).methods \
        == ("greedy", "toy")
    with pytest.raises(SystemExit):
        parser.parse_args(["search", "--policy", "p", "--out", "o", "--method", "nosuch"])

    # the benchmark's methods, and its grid runs the method
    assert bench_methods() == ("greedy", "majority", "bon", "weighted", "beam", "dvts", "mcts", "toy")
    task, policy = BanditTask("LLL"), BanditPolicy(depth=3)
    result = bench_test_time(policy, task, [task.problem(0), task.problem(1)], tmp_path / "bench",
                             TestTimeConfig(methods=("toy",), budgets=(3,), seeds=(0,)), scorer=PathScorer("LLL"),
                             progress=False)
    assert [(c["method"], c["budget"]) for c in result["cells"]] == [("toy", 3)]
    assert toy_method[-1]["budget"].budget == 3

    # train-time search: the verifier reaches the method, and its trees are written
    toy_method.clear()
    summary = search_train(policy, task, [task.problem(i) for i in range(3)], tmp_path / "search",
                           TrainSearchConfig(method="toy", budget=2, width=2, shard_size=2, seed=5),
                           verifier=PathScorer("LLL"), progress=False)
    assert summary["method"] == "toy" and summary["problems"] == 3
    assert [c["problems"] for c in toy_method] == [2, 1]  # one call per shard
    assert [c["budget"].seed for c in toy_method] == [5, 7]  # shard s searches with seed + s * shard_size
    assert all(c["verifier"] is not None and c["scorer"] is None for c in toy_method)


def test_registry_refuses_a_second_function_under_a_taken_name_and_names_unknown_methods():
    with pytest.raises(ValueError, match="already registered"):
        register_search("beam", lambda *a, **k: [])
    assert register_search("beam", SEARCH_METHODS["beam"]) is SEARCH_METHODS["beam"]  # the same entry again is fine
    with pytest.raises(ValueError, match=r"method='beem' is not a search method; use one of \('bon'"):
        get_search("beem")
    with pytest.raises(ValueError, match="not a search method"):
        TrainSearchConfig(method="beem")
    with pytest.raises(ValueError, match="mcts_evaluation='rollouts' is unknown"):
        TrainSearchConfig(mcts_evaluation="rollouts")
    with pytest.raises(ValueError, match="budget=0 must be at least 1"):
        SearchBudget(budget=0)


def test_every_test_time_method_is_one_typed_registry_entry():
    """greedy, majority and sequential sit in the registry beside the search methods, each saying who runs it and
    whether it needs a scorer; the CLI, the benchmark and evaluate read their names from it."""
    from roadmap.app.evaluate import METHODS
    from roadmap.core.tasks import get_task
    from search import TEST_TIME_METHODS, SearchTask, test_time_method, test_time_method_names, unregister_search

    assert test_time_method_names() == ("greedy", "majority", *search_method_names(), "sequential")
    assert METHODS == test_time_method_names("sampling") == ("greedy", "majority")
    assert bench_methods() == ("greedy", "majority", *search_method_names())
    assert {m: (e.kind, e.needs_scorer, e.fn is None) for m, e in TEST_TIME_METHODS.items()} == {
        "greedy": ("sampling", False, True), "majority": ("sampling", False, True),
        **{m: ("search", True, False) for m in ("bon", "weighted", "beam", "dvts", "mcts")},
        "sequential": ("sequential", False, True)}
    parser = build_parser()
    for m in test_time_method_names():
        assert parser.parse_args(["eval", "--policy", "p", "--method", m]).method == m
    # a search method cannot take a name of another kind, and unregistering one leaves the other kinds alone
    with pytest.raises(ValueError, match="'greedy' is already registered to the sampling method"):
        register_search("greedy", get_search("bon"))
    unregister_search("greedy")
    assert "greedy" in TEST_TIME_METHODS and "greedy" not in SEARCH_METHODS
    # SEARCH_METHODS behaves as the dict it was: an item set replaces a method's function, keeping its entry
    bon = SEARCH_METHODS["bon"]
    try:
        SEARCH_METHODS["bon"] = get_search("weighted")
        assert get_search("bon") is get_search("weighted") and TEST_TIME_METHODS["bon"].needs_scorer
    finally:
        SEARCH_METHODS["bon"] = bon
    with pytest.raises(ValueError, match="'majority' is the sampling method"):
        SEARCH_METHODS["majority"] = bon
    with pytest.raises(ValueError, match=r"method='nosuch' is not a test-time method; use one of \('greedy', 'majority'"):
        test_time_method("nosuch")
    # the narrow task protocol the search functions read: the real tasks and the test fakes have it
    assert all(isinstance(t, SearchTask) for t in (get_task("arith"), get_task("countdown"), BanditTask()))


def test_bon_and_weighted_pick_from_the_same_samples_at_one_budget():
    """The two best-of-N entries differ only in selection: same seed, same samples, same compute."""
    task = BanditTask("LLL")
    spent = {}
    for method in ("bon", "weighted"):
        policy = BanditPolicy(depth=3)
        results = run_search(policy, task, [task.problem()], method, 6, PathScorer("LLL"), seed=1)
        spent[method] = (policy.usage.sampled_sequences, results[0].candidates)
    assert spent["bon"] == spent["weighted"]
    assert spent["bon"][0] == 6
