"""policy_init.tiny: tokenizers made locally and a tiny Llama, loadable through the Auto classes."""

from __future__ import annotations

import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from policy_init.tiny import TinyConfig, build_bpe_tokenizer, build_char_tokenizer, build_tiny_model


def test_char_tokenizer_roundtrips_every_character():
    tok = build_char_tokenizer(["37+48=85\n-6+12=6\nAnswer: 6"])
    text = "-111+14=-97\nAnswer: -97"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert len(ids) == len(text)  # one token per character
    assert tok.decode(ids) == text
    assert tok(text)["input_ids"][0] == tok.bos_token_id
    assert tok.unk_token_id not in ids


def test_bpe_tokenizer_splits_digits_and_roundtrips():
    texts = ["Question: Tom has 12 apples and buys 30 more.\nAnswer:\nTom has 12+30=42 apples.\n#### 42"] * 50
    tok = build_bpe_tokenizer(texts, vocab_size=300)
    text = "Tom has 1234 apples.\n#### 1234"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == text
    digits = [t for t in tok.convert_ids_to_tokens(ids) if any(c.isdigit() for c in t)]
    assert all(len(t) == 1 for t in digits)


def test_saved_tiny_policy_loads_with_auto_classes(tiny_dir):
    tok = AutoTokenizer.from_pretrained(tiny_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_dir)
    assert model.config.model_type == "llama"
    assert model.config.vocab_size == len(tok)
    assert tok.decode(tok("12+3=15\n", add_special_tokens=False)["input_ids"]) == "12+3=15\n"


def test_default_size_is_about_1_8m_parameters():
    tok = build_char_tokenizer()
    model = build_tiny_model(tok, TinyConfig())
    n = sum(p.numel() for p in model.parameters())
    assert 1.5e6 < n < 2.1e6


def test_bad_config_is_named():
    with pytest.raises(ValueError, match="num_heads"):
        TinyConfig(hidden_size=100, num_heads=6)
    with pytest.raises(ValueError, match="tokenizer"):
        TinyConfig(tokenizer="words")
