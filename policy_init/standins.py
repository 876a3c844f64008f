"""Stand-ins of real model families: tiny random weights, a real tokenizer format, a real chat template.

No machine here reaches a model hub, yet users bring Qwen2.5, Llama-3, GPT-2 and Mistral
checkpoints. A stand-in reproduces what matters to the code paths, not the weights: the
architecture class (``Qwen2ForCausalLM``, ``LlamaForCausalLM``, ``GPT2LMHeadModel``,
``MistralForCausalLM`` with a sliding window), the tokenizer family (byte-level BPE with the
family's own split regex, or SentencePiece-style Metaspace BPE), the special tokens (BOS or
none, the end-of-turn token) and the family's chat template. ``build_standin`` saves one with
``save_pretrained``, so ``AutoTokenizer``/``AutoModelForCausalLM`` (and ``HFPolicy``, TRL, the
CLI) load it exactly as they load the real checkpoint's folder.

    >>> build_standin("qwen2", "standins/qwen2")        # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from roadmap.core.errors import ConfigError

logger = logging.getLogger(__name__)

__all__ = ["FAMILIES", "StandinConfig", "build_standin", "build_standin_tokenizer", "default_corpus"]

# The split regexes of the real tokenizers (tokenizer.json "pre_tokenizer" of each family).
_QWEN2_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")
_LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                 r"|\s*[\r\n]+|\s+(?!\S)|\s+")

_CHATML = (
    "{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
    "{%- else %}{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{%- endif %}"
    "{%- for message in messages %}{%- if message['role'] != 'system' %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endif %}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
_LLAMA3_CHAT = (
    "{{- bos_token }}{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}"
    "{%- endfor %}{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"
)
_MISTRAL_CHAT = (
    "{{- bos_token }}{%- for message in messages %}{%- if message['role'] == 'user' %}"
    "{{- '[INST] ' + message['content'] + ' [/INST]' }}{%- elif message['role'] == 'assistant' %}"
    "{{- message['content'] + eos_token }}{%- elif message['role'] == 'system' %}{{- message['content'] + '\\n\\n' }}"
    "{%- endif %}{%- endfor %}"
)


@dataclass(frozen=True)
class _Family:
    architecture: str  # transformers config class name
    tokenizer: str  # "bytelevel" or "metaspace"
    split: str | None  # the byte-level family's split regex (None: GPT-2's built-in one)
    special: dict  # bos/eos/pad/unk token strings (None: the family has none)
    extra_special: tuple[str, ...]
    chat_template: str | None
    add_bos: bool


#: family name -> what its stand-in reproduces
FAMILIES: dict[str, _Family] = {
    "qwen2": _Family("Qwen2Config", "bytelevel", _QWEN2_SPLIT,
                     {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"},
                     ("<|endoftext|>", "<|im_start|>", "<|im_end|>"), _CHATML, add_bos=False),
    "llama3": _Family("LlamaConfig", "bytelevel", _LLAMA3_SPLIT,
                      {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>", "pad_token": "<|end_of_text|>"},
                      ("<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"),
                      _LLAMA3_CHAT, add_bos=True),
    "gpt2": _Family("GPT2Config", "bytelevel", None,
                    {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>"},
                    ("<|endoftext|>",), None, add_bos=False),
    "mistral": _Family("MistralConfig", "metaspace", None,
                       {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "</s>"},
                       ("<unk>", "<s>", "</s>"), _MISTRAL_CHAT, add_bos=True),
}


@dataclass
class StandinConfig:
    """Shape of a stand-in. Defaults are a few hundred thousand parameters: fast on a CPU.

    Attributes:
        vocab_size: tokens the tokenizer learns (special tokens included).
        model_vocab_size: rows of the embedding and LM head; None means the tokenizer's size.
            Set it to 151936 to get Qwen2's vocabulary width (e.g. to measure logit memory).
        sliding_window: attention window of a Mistral stand-in (None: full attention).
        extra_special_tokens: more special tokens (e.g. a PRM's step tag "<extra_0>").
    """

    vocab_size: int = 1024
    model_vocab_size: int | None = None
    hidden_size: int = 64
    num_layers: int = 2
    num_heads: int = 4
    num_kv_heads: int = 2
    intermediate_size: int = 128
    max_position_embeddings: int = 1024
    sliding_window: int | None = 32
    extra_special_tokens: tuple[str, ...] = ()
    seed: int = 0
    extra: dict = field(default_factory=dict)


def default_corpus() -> list[str]:
    """Text a stand-in tokenizer learns from: word problems, worked solutions with "\\n\\n" steps and \\boxed answers."""
    names, things = ["Tom", "Ana", "Li", "Sam", "Maria"], ["apples", "books", "coins", "pens", "cars"]
    out = []
    for i in range(400):
        a, b, who, what = 3 + i % 47, 2 + (i * 7) % 31, names[i % 5], things[(i // 5) % 5]
        out.append(
            f"{who} has {a} {what}. {who} buys {b} more {what}. How many {what} does {who} have now?\n"
            f"{who} starts with {a} {what}.\n\nAfter buying {b} more, {who} has {a} + {b} = {a + b} {what}.\n\n"
            f"The answer is {a + b}.\n\nTherefore, the final answer is $\\boxed{{{a + b}}}$.\n#### {a + b}\n"
            f"Question: What is {a}-{b}? Answer: {a}-{b}={a - b} so \\frac{{{a}}}{{{b}}} and x^2 = {a * a}."
        )
    return out


def build_standin_tokenizer(family: str, corpus: Iterable[str] | None = None, vocab_size: int = 1024,
                            extra_special_tokens: Sequence[str] = (), model_max_length: int = 1024):
    """A tokenizer of ``family``'s format trained on ``corpus`` (default: ``default_corpus()``)."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    spec = _family(family)
    special = list(dict.fromkeys([*spec.extra_special, *spec.special.values(), *extra_special_tokens]))
    if spec.tokenizer == "bytelevel":
        tok = Tokenizer(models.BPE(unk_token=None))
        if spec.split is None:
            tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        else:
            tok.pre_tokenizer = pre_tokenizers.Sequence([
                pre_tokenizers.Split(Regex(spec.split), behavior="isolated"),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
            ])
        tok.decoder = decoders.ByteLevel()
        alphabet = pre_tokenizers.ByteLevel.alphabet()
    else:  # SentencePiece-style: spaces become "▁", one is prepended to the first word only
        tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=False))
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
        tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first")
        alphabet = sorted(set("".join(default_corpus())) | set("▁0123456789\n"))
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=special, initial_alphabet=alphabet,
                                  show_progress=False)
    tok.train_from_iterator(list(corpus if corpus is not None else default_corpus()), trainer=trainer)
    if spec.add_bos:
        bos = spec.special["bos_token"]
        tok.post_processor = processors.TemplateProcessing(single=f"{bos} $A", pair=f"{bos} $A $B",
                                                           special_tokens=[(bos, tok.token_to_id(bos))])
    elif spec.tokenizer == "bytelevel":
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
    wrapped = PreTrainedTokenizerFast(tokenizer_object=tok, model_max_length=model_max_length, **spec.special)
    extra = [t for t in special if t not in spec.special.values()]
    if extra:
        wrapped.add_special_tokens({"additional_special_tokens": extra})
    if spec.chat_template is not None:
        wrapped.chat_template = spec.chat_template
    return wrapped


def _family(name: str) -> _Family:
    if name not in FAMILIES:
        raise ConfigError(f"family={name!r} is not a stand-in family; use one of {sorted(FAMILIES)}")
    return FAMILIES[name]


def _build_model(family: str, tokenizer, config: StandinConfig):
    import torch
    import transformers

    spec = _family(family)
    torch.manual_seed(config.seed)
    vocab = config.model_vocab_size or len(tokenizer)
    if vocab < len(tokenizer):
        raise ConfigError(f"model_vocab_size={vocab} is smaller than the tokenizer's {len(tokenizer)} tokens")
    ids = {k: tokenizer.convert_tokens_to_ids(v) for k, v in spec.special.items() if k != "unk_token"}
    common = {"vocab_size": vocab, "bos_token_id": ids.get("bos_token"), "eos_token_id": ids["eos_token"],
              "pad_token_id": ids["pad_token"], "tie_word_embeddings": True}
    if spec.architecture == "GPT2Config":
        cfg = transformers.GPT2Config(n_embd=config.hidden_size, n_layer=config.num_layers, n_head=config.num_heads,
                                      n_positions=config.max_position_embeddings, **common, **config.extra)
    else:
        shape: dict[str, int | None] = {"hidden_size": config.hidden_size, "intermediate_size": config.intermediate_size,
                 "num_hidden_layers": config.num_layers, "num_attention_heads": config.num_heads,
                 "num_key_value_heads": config.num_kv_heads,
                 "max_position_embeddings": config.max_position_embeddings}
        if spec.architecture == "MistralConfig":
            shape["sliding_window"] = config.sliding_window
        cfg = getattr(transformers, spec.architecture)(**shape, **common, **config.extra)
    model = transformers.AutoModelForCausalLM.from_config(cfg)
    model.generation_config.pad_token_id = ids["pad_token"]
    model.generation_config.eos_token_id = ids["eos_token"]
    return model


def build_standin(family: str, out_dir: str | Path, config: StandinConfig | None = None, *,
                  corpus: Iterable[str] | None = None, overwrite: bool = False) -> Path:
    """Save a stand-in of ``family`` ("qwen2", "llama3", "gpt2", "mistral") to ``out_dir``; return it.

    The folder is written atomically (kind "tiny"), like ``policy_init.tiny.create_tiny``.
    """
    from roadmap.core.io import write_json
    from roadmap.core.outputs import StagedOutput

    config = config or StandinConfig()
    _family(family)
    recipe = {"family": family, **{k: v for k, v in vars(config).items()}}
    recipe["extra_special_tokens"] = list(config.extra_special_tokens)
    with StagedOutput(out_dir, "tiny", overwrite=overwrite, config=recipe) as stage:
        tokenizer = build_standin_tokenizer(family, corpus, config.vocab_size, config.extra_special_tokens,
                                            config.max_position_embeddings)
        model = _build_model(family, tokenizer, config)
        tokenizer.save_pretrained(stage.path)
        model.save_pretrained(stage.path)
        write_json(stage.path / "standin.json", recipe)
        logger.info("built a %s stand-in: %.2fM parameters, %d tokens", family,
                    sum(p.numel() for p in model.parameters()) / 1e6, len(tokenizer))
        return stage.finish()
