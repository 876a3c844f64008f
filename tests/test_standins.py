"""Stand-ins of real families load through the Auto classes with their family's format."""

import pytest

from policy_init.standins import FAMILIES, StandinConfig, build_standin

ARCH = {"qwen2": "Qwen2ForCausalLM", "llama3": "LlamaForCausalLM", "gpt2": "GPT2LMHeadModel",
        "mistral": "MistralForCausalLM"}


@pytest.fixture(scope="module")
def standins(tmp_path_factory):
    root = tmp_path_factory.mktemp("standins")
    return {f: build_standin(f, root / f) for f in FAMILIES}


@pytest.mark.parametrize("family", sorted(ARCH))
def test_standin_loads_with_its_architecture_and_format(standins, family):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(standins[family])
    model = AutoModelForCausalLM.from_pretrained(standins[family])
    assert type(model).__name__ == ARCH[family]
    ids = tok("Tom has 5 apples.\n\nSo", add_special_tokens=True)["input_ids"]
    starts_with_bos = tok.bos_token_id is not None and ids[0] == tok.bos_token_id
    assert starts_with_bos == FAMILIES[family].add_bos
    assert tok.decode(ids, skip_special_tokens=True).strip() == "Tom has 5 apples.\n\nSo"
    assert (tok.chat_template is not None) == (family != "gpt2")
    assert model.generation_config.eos_token_id == tok.eos_token_id


def test_qwen2_standin_has_qwen_tokens_and_chat_template(standins):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(standins["qwen2"])
    pieces = tok.convert_ids_to_tokens(tok("apples.\n\nSo 72", add_special_tokens=False)["input_ids"])
    assert ".ĊĊ" in pieces  # punctuation fused with the step delimiter, as Qwen's regex makes it
    assert pieces[-2:] == ["7", "2"]  # digits one per token
    chat = tok.apply_chat_template([{"role": "user", "content": "2+3?"}], tokenize=False, add_generation_prompt=True)
    assert chat.endswith("<|im_start|>user\n2+3?<|im_end|>\n<|im_start|>assistant\n")


def test_mistral_standin_has_a_sliding_window_and_a_wide_vocabulary_on_request(tmp_path):
    from transformers import AutoConfig

    path = build_standin("mistral", tmp_path / "m", StandinConfig(sliding_window=8, model_vocab_size=4096))
    cfg = AutoConfig.from_pretrained(path)
    assert cfg.sliding_window == 8 and cfg.vocab_size == 4096


def test_unknown_family_is_refused(tmp_path):
    with pytest.raises(ValueError, match="family='gemma9'.*qwen2"):
        build_standin("gemma9", tmp_path / "g")
