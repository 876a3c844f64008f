"""Stepwise text is the model's own document: joined greedy steps equal one greedy generation.

On stand-ins of real tokenizer families (byte-level BPE of Qwen2, Llama-3 and GPT-2; Metaspace
SentencePiece of Mistral), trained for a few seconds on worked solutions so that they write
step delimiters, a stepwise generation (each step sampled with a stop string from
``prompt + steps so far``, as ``search.expand`` does) must give exactly the text and the token
ids of one greedy call without a stop string.
"""

from __future__ import annotations

import logging

import pytest
import torch

from roadmap.core import HFPolicy
from roadmap.core.hf_text import DocumentMemory, continuation_text

FAMILIES = ["qwen2", "llama3", "gpt2", "mistral"]
PROMPT = "Ana has 12 pens. Ana buys 5 more pens. How many pens does Ana have now?\n"
BUDGET = 120  # generated tokens, stepwise and one-shot alike
#: (optimizer steps, learning rate) after which greedy output of the family's stand-in has several "\n\n"
_RECIPES = {"qwen2": (80, 5e-3), "llama3": (60, 1e-2), "gpt2": (40, 1e-2), "mistral": (120, 1e-2)}


def _train(family: str, out, steps: int, lr: float = 1e-2, **config):
    """A stand-in after ``steps`` SFT-style Adam steps on ``default_corpus()``, saved to ``out``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from policy_init.standins import StandinConfig, build_standin, default_corpus

    path = build_standin(family, out / "init", StandinConfig(**config))
    tok, model = AutoTokenizer.from_pretrained(path), AutoModelForCausalLM.from_pretrained(path)
    torch.manual_seed(0)
    docs = default_corpus()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for s in range(steps):
        enc = tok([docs[(s * 8 + i) % len(docs)] for i in range(8)], return_tensors="pt", padding=True,
                  truncation=True, max_length=128)
        loss = model(**enc, labels=enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.save_pretrained(out / "trained")
    tok.save_pretrained(out / "trained")
    return out / "trained"


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """family -> folder of a stand-in that writes "\\n\\n"-separated steps (trained once per session)."""
    folders: dict[str, object] = {}

    def get(family: str):
        if family not in folders:
            steps, lr = _RECIPES[family]
            folders[family] = _train(family, tmp_path_factory.mktemp(f"trained-{family}"), steps, lr)
        return folders[family]

    return get


def _stepwise(policy, prompt: str, stop: str, budget: int):
    text, used, steps = "", 0, []
    while used < budget:
        c = policy.sample([prompt + text], stop=stop, temperature=0, max_new_tokens=budget - used)[0][0]
        steps.append(c)
        text, used = text + c.text, used + c.num_tokens
        if not c.stopped:
            break
    return text, steps


@pytest.mark.parametrize("stop", ["\n", "\n\n"])
@pytest.mark.parametrize("family", FAMILIES)
def test_joined_greedy_steps_equal_one_greedy_generation(trained, family, stop):
    folder = trained(family)
    one = HFPolicy.from_pretrained(folder)
    whole = one.sample([PROMPT], temperature=0, max_new_tokens=BUDGET)[0][0]
    stepwise = HFPolicy.from_pretrained(folder)
    text, steps = _stepwise(stepwise, PROMPT, stop, BUDGET)

    assert sum(s.stopped for s in steps) >= 3  # several step boundaries were crossed
    assert all(stop in s.text for s in steps if s.stopped)
    assert text == whole.text
    assert sum(s.num_tokens for s in steps) == whole.num_tokens
    # the document the steps make is the one the model wrote, id for id, as transformers generates it
    tok = one.tokenizer
    prompt_ids = one.encode_prefix(PROMPT)
    ref = one.model.generate(torch.tensor([prompt_ids]), attention_mask=torch.ones(1, len(prompt_ids), dtype=torch.long),
                             max_new_tokens=BUDGET, do_sample=False)[0].tolist()
    ref = ref[:-1] if ref[-1] in one.eos_ids else ref
    assert stepwise.encode_prefix(PROMPT + text) == ref
    assert continuation_text(tok, prompt_ids, ref[len(prompt_ids):]) == (whole.text, True)
    if stepwise.prefix_cache is not None:  # each later step prefilled only the token its parent's state lacked
        assert stepwise.prefix_cache.hits >= len(steps) - 1
        assert stepwise.usage.prefill_tokens == len(prompt_ids) + len(steps) - 1


def _force(policy, token_ids):
    """Make the model emit ``token_ids`` in order, one per forward pass (then anything)."""
    calls = [0]

    def hook(module, inputs, out):
        i = min(calls[0], len(token_ids) - 1)
        calls[0] += 1
        bias = torch.zeros(out.shape[-1])
        bias[token_ids[i]] = 1e4
        return out + bias

    return policy.model.get_output_embeddings().register_forward_hook(hook)


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    from policy_init.standins import StandinConfig, build_standin

    def get(family, **config):
        return build_standin(family, tmp_path_factory.mktemp(family) / "m", StandinConfig(**config))

    return get


def test_a_token_that_completes_the_stop_string_is_kept_whole(standin):
    policy = HFPolicy.from_pretrained(standin("qwen2"))
    token = policy.tokenizer.convert_tokens_to_ids(".ĊĊ")  # ".\n\n" in byte-level form
    handle = _force(policy, [token])
    try:
        c = policy.sample(["Tom has 5 apples"], stop="\n", max_new_tokens=5)[0][0]
    finally:
        handle.remove()
    assert c.stopped and c.num_tokens == 1
    assert c.text == ".\n\n"  # not ".\n": the second newline is part of the document
    assert policy.encode_prefix("Tom has 5 apples" + c.text)[-1] == token


def test_sentencepiece_continuation_keeps_its_leading_space(standin):
    policy = HFPolicy.from_pretrained(standin("mistral"))
    tom = policy.tokenizer.convert_tokens_to_ids("▁Tom")
    handle = _force(policy, [tom])
    try:
        c = policy.sample(["Tom has 5"], max_new_tokens=1)[0][0]
    finally:
        handle.remove()
    assert c.text == " Tom"
    assert policy.encode_prefix("Tom has 5" + c.text) == policy.encode_prefix("Tom has 5") + [tom]


def test_prefix_plus_text_encodes_to_the_ids_the_model_wrote(standin):
    policy = HFPolicy.from_pretrained(standin("qwen2"))
    tok = policy.tokenizer
    pieces = tok.convert_tokens_to_ids(["T", "o", "m"])
    handle = _force(policy, pieces)
    try:
        c = policy.sample(["Ana has 5\n"], max_new_tokens=3)[0][0]
    finally:
        handle.remove()
    assert c.text == "Tom"
    own = policy.encode_prefix("Ana has 5\n" + c.text)
    assert own == tok("Ana has 5\n")["input_ids"] + pieces
    assert own != tok("Ana has 5\nTom")["input_ids"]  # BPE alone would merge the pieces into "Tom"
    # and the document is scored as written: log pi of the three pieces, not of the merged token
    assert len(policy.token_logprobs(["Ana has 5\n"], [c.text])[0]) == 3


def test_a_character_split_over_tokens_is_held_back_until_complete():
    from policy_init.standins import build_standin_tokenizer

    tok = build_standin_tokenizer("qwen2")
    prefix = tok("Price:", add_special_tokens=False)["input_ids"]
    gen = tok(" \u20ac", add_special_tokens=False)["input_ids"]  # the euro sign is three bytes, unmerged
    assert len(gen) == 4
    first, complete = continuation_text(tok, prefix, gen[:2])  # a space and the euro sign's first byte
    rest, rest_complete = continuation_text(tok, prefix + gen[:2], gen[2:])
    assert (first, complete) == (" ", False)
    assert (rest, rest_complete) == ("\u20ac", True)
    assert tok.decode(gen[:2]).endswith("\ufffd")  # what decoding the piece alone would have written


def test_llama3_chat_prompt_gets_exactly_one_bos(standin):
    policy = HFPolicy.from_pretrained(standin("llama3"))
    tok = policy.tokenizer
    prompt = tok.apply_chat_template([{"role": "user", "content": "What is 2+3?"}], tokenize=False,
                                     add_generation_prompt=True)
    assert prompt.startswith("<|begin_of_text|>")
    ids = policy.encode_prefix(prompt)
    assert ids.count(tok.bos_token_id) == 1 and ids[0] == tok.bos_token_id
    assert policy.encode_prefix("What is 2+3?")[0] == tok.bos_token_id  # plain text still gets its BOS
    assert policy.encode_prefix("What is 2+3?").count(tok.bos_token_id) == 1


def test_sliding_window_model_runs_past_its_window_without_the_prefix_cache(standin, caplog):
    folder = standin("mistral", sliding_window=8)
    with caplog.at_level(logging.WARNING, logger="roadmap.core.hf_policy"):
        policy = HFPolicy.from_pretrained(folder)
    assert policy.prefix_cache is None
    assert "prefix cache off" in caplog.text and "sliding-window" in caplog.text
    prompt = "Tom has 5 apples. Tom buys 3 more apples. How many apples does Tom have now?\n"
    assert len(policy.encode_prefix(prompt)) > 8
    whole = policy.sample([prompt], temperature=0, max_new_tokens=30)[0][0]
    text, steps = _stepwise(policy, prompt, " ", 30)  # a random model writes spaces often
    assert len(steps) >= 2 and text == whole.text
    ids = policy.tokenizer(prompt, return_tensors="pt")
    ref = policy.model.generate(**ids, max_new_tokens=30, do_sample=False)[0, ids["input_ids"].shape[1]:].tolist()
    assert policy.encode_prefix(prompt + whole.text)[ids["input_ids"].shape[1]:] == [t for t in ref
                                                                                     if t not in policy.eos_ids]


def test_document_memory_is_bounded_and_finds_the_longest_prefix():
    memory = DocumentMemory(max_tokens=6)
    memory.put("Tom has", (1, 2))
    memory.put("Tom has 5", (1, 2, 3))
    assert memory.longest_prefix("Tom has 5") == (9, (1, 2, 3))
    assert memory.longest_prefix("Tom has 5 apples") == (9, (1, 2, 3))
    assert memory.longest_prefix("Tom has 4") == (7, (1, 2))
    assert memory.longest_prefix("Ana") is None
    memory.put("x" * 100, (7, 8))  # 7 ids > 6: the least recently used document ("Tom has 5") goes
    assert memory.tokens == 4 and memory.longest_prefix("Tom has 5 apples") == (7, (1, 2))
    assert memory.longest_prefix("x" * 101) == (100, (7, 8))
    with pytest.raises(ValueError, match="max_tokens"):
        DocumentMemory(0)
