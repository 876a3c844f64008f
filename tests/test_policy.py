"""HFPolicy: batching, stopping, seeds, logprobs and usage counters on a tiny random model."""

from __future__ import annotations

import pytest
import torch

from roadmap.core import HFPolicy, Policy


@pytest.fixture(scope="module")
def prefixes(arith_task):
    # different lengths, so that batches need left padding
    problems = arith_task.problems("test", n=6, seed=3)
    return [arith_task.prompt(p) for p in problems] + ["7+8\n7+8=15\n", "1\n"]


def test_hfpolicy_is_a_policy(tiny_policy):
    assert isinstance(tiny_policy, Policy)


def test_batched_greedy_equals_unbatched(tiny_policy, prefixes):
    batched = tiny_policy.sample(prefixes, 1, temperature=0, max_new_tokens=24)
    for prefix, row in zip(prefixes, batched):
        alone = tiny_policy.sample([prefix], 1, temperature=0, max_new_tokens=24)[0][0]
        assert row[0].text == alone.text
        assert row[0].logprob == pytest.approx(alone.logprob, abs=1e-4)


def test_greedy_matches_transformers_generate(tiny_policy, prefixes):
    tok, model = tiny_policy.tokenizer, tiny_policy.model
    ours = tiny_policy.sample(prefixes[:3], 1, temperature=0, max_new_tokens=16)
    for prefix, row in zip(prefixes[:3], ours):
        ids = tok(prefix, return_tensors="pt")
        ref = model.generate(**ids, max_new_tokens=16, do_sample=False)
        assert row[0].text == tok.decode(ref[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)


def test_stop_string_ends_the_step(tiny_dir, arith_task):
    policy = HFPolicy.from_pretrained(tiny_dir)
    # make the newline very likely so that every sample stops at the delimiter soon
    nl = policy.tokenizer.convert_tokens_to_ids("\n")
    handle = policy.model.lm_head.register_forward_hook(lambda m, i, o: o.index_add(-1, torch.tensor([nl]), torch.full((*o.shape[:-1], 1), 3.0)))
    try:
        out = policy.sample(["12+34\n"], 8, stop="\n", max_new_tokens=40, seed=0)[0]
    finally:
        handle.remove()
    assert all(c.stopped and c.text.endswith("\n") and c.text.count("\n") == 1 for c in out)
    assert all(not c.finished for c in out)


def test_multi_char_stop_string(tiny_policy):
    out = tiny_policy.sample(["3+4\n"], 4, stop=["==", "\n"], max_new_tokens=60, seed=1)[0]
    stopped = [c for c in out if c.stopped]
    assert stopped  # a random char model writes a newline within 60 characters
    for c in stopped:
        assert c.text.endswith("==") or c.text.endswith("\n")
        assert "==" not in c.text[:-2] and "\n" not in c.text[:-1]


def test_same_seed_same_samples_and_new_seed_new_samples(tiny_policy, prefixes):
    a = tiny_policy.sample(prefixes[:2], 4, max_new_tokens=20, seed=7)
    b = tiny_policy.sample(prefixes[:2], 4, max_new_tokens=20, seed=7)
    c = tiny_policy.sample(prefixes[:2], 4, max_new_tokens=20, seed=8)
    texts = lambda r: [[x.text for x in row] for row in r]  # noqa: E731
    assert texts(a) == texts(b)
    assert texts(a) != texts(c)


def test_completion_logprob_matches_scoring(tiny_policy, prefixes):
    rows = tiny_policy.sample(prefixes[:3], 4, max_new_tokens=12, seed=0)
    pairs = [(p, c) for p, row in zip(prefixes, rows) for c in row]
    # a random model sometimes samples special tokens, which the text drops: compare the others
    pairs = [(p, c) for p, c in pairs if len(tiny_policy.encode_continuation(c.text)) == c.num_tokens]
    assert len(pairs) >= 3
    scored = tiny_policy.logprobs([p for p, _ in pairs], [c.text for _, c in pairs])
    for (_, c), s in zip(pairs, scored):
        assert s == pytest.approx(c.logprob, abs=1e-3)
    assert tiny_policy.logprobs(["1+1\n"], [""]) == [0.0]


def test_shared_prefix_is_prefilled_once(tiny_dir):
    policy = HFPolicy.from_pretrained(tiny_dir)
    prefix = "12+34-5\n"
    length = len(policy.encode_prefix(prefix))
    out = policy.sample([prefix], 8, max_new_tokens=5, seed=0)
    u = policy.usage
    assert u.prefill_tokens == length
    assert u.cached_prefill_tokens == 7 * length
    assert u.generated_tokens == sum(c.num_tokens for c in out[0])
    assert u.sampled_sequences == 8
    assert u.forward_passes <= 5


def test_batches_larger_than_batch_size(tiny_dir):
    policy = HFPolicy.from_pretrained(tiny_dir, batch_size=3)
    out = policy.sample(["1+2\n", "3+4\n"], 4, max_new_tokens=4, seed=0)
    assert [len(r) for r in out] == [4, 4]
    assert all(c.num_tokens <= 4 for r in out for c in r)


@pytest.mark.parametrize(
    "kwargs, match",
    [({"n": 0}, "n=0"), ({"temperature": -1.0}, "temperature"), ({"top_p": 0.0}, "top_p"),
     ({"max_new_tokens": 0}, "max_new_tokens"), ({"stop": ""}, "empty string")],
)
def test_bad_arguments_are_named(tiny_policy, kwargs, match):
    with pytest.raises(ValueError, match=match):
        tiny_policy.sample(["1+1\n"], **kwargs)


def test_top_p_keeps_only_the_nucleus(tiny_policy):
    # with a tiny nucleus, sampling equals greedy decoding
    greedy = tiny_policy.sample(["45-12\n"], 1, temperature=0, max_new_tokens=10)[0][0].text
    nucleus = tiny_policy.sample(["45-12\n"], 3, top_p=1e-6, max_new_tokens=10, seed=5)[0]
    assert all(c.text == greedy for c in nucleus)


def test_not_a_model_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        HFPolicy.from_pretrained(tmp_path)


def test_prefix_cache_reuses_step_states_without_changing_results(tiny_dir, arith_task):
    import string

    from roadmap.core import HFPolicy

    plain = HFPolicy.from_pretrained(tiny_dir, prefix_cache_tokens=0)
    cached = HFPolicy.from_pretrained(tiny_dir, prefix_cache_tokens=10_000)
    problems = arith_task.problems("test", n=6)
    runs = []
    for policy in (plain, cached):
        prefixes = [arith_task.prompt(p) for p in problems]
        for _ in range(3):  # three steps, each continuing the previous call's text
            # a random model: stop at almost any character, so that most samples end on a stop string
            outs = policy.sample(prefixes, 1, stop=list(string.ascii_letters + string.digits + "+-=\n "),
                                 temperature=0, max_new_tokens=6)
            prefixes = [p + o[0].text for p, o in zip(prefixes, outs)]
        runs.append(prefixes)
    assert runs[0] == runs[1]
    assert cached.usage.generated_tokens == plain.usage.generated_tokens
    assert cached.usage.prefill_tokens < plain.usage.prefill_tokens
    assert cached.usage.prefill_tokens + cached.usage.cached_prefill_tokens == plain.usage.prefill_tokens
    assert cached.prefix_cache.hits > 0


def test_prefix_cache_evicts_to_its_bound():
    from roadmap.core.prefix_cache import PrefixCache

    cache = PrefixCache(max_tokens=10)
    cache.put([1, 2, 3], "a")
    cache.put([1, 2, 3, 4, 5], "b")
    assert cache.lookup([1, 2, 3, 4, 5, 6]) == (5, "b")
    assert cache.lookup([1, 2, 3, 9]) == (3, "a")
    assert cache.lookup([1, 2, 3]) == (0, None)  # a prefix must leave a token to compute
    cache.put([7, 8, 9, 10], "c")  # 12 tokens > 10: the least recently used entry ("b") goes
    assert cache.tokens <= 10 and cache.lookup([1, 2, 3, 4, 5, 6]) == (3, "a")
    with pytest.raises(ValueError, match="max_tokens"):
        PrefixCache(0)


def test_folder_with_its_own_code_needs_trust_remote_code(tiny_dir, tmp_path):
    import json
    import shutil

    from roadmap.core.errors import ConfigError

    folder = tmp_path / "remote"
    shutil.copytree(tiny_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_mine.MineForCausalLM"}
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="trust-remote-code") as err:
        HFPolicy.from_pretrained(folder)
    assert str(folder) in str(err.value) and "trust_remote_code" in str(err.value)


def test_token_logprobs_equal_the_full_logits_computation(tiny_policy, prefixes):
    """Chunked fp32 head (no [B, T, V] tensor) gives what log_softmax over full logits gives."""
    conts = ["12+3=15\n", "7", "", "99-1=98\n"]
    pres = prefixes[: len(conts)]
    ours = tiny_policy.token_logprobs(pres, conts)
    for p, c, lp in zip(pres, conts, ours):
        pre, cont = tiny_policy.encode_prefix(p), tiny_policy.encode_continuation(c)
        ids = torch.tensor([pre + cont])
        with torch.no_grad():
            logits = tiny_policy.model(input_ids=ids).logits.float()
        full = torch.log_softmax(logits[0, :-1], dim=-1).gather(-1, ids[0, 1:, None]).squeeze(-1)
        assert len(lp) == len(cont)
        assert lp == pytest.approx(full[len(pre) - 1 :].tolist(), abs=1e-5)
