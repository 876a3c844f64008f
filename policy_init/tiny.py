"""Tiny from-scratch policies: a small Llama built from a config and a tokenizer made locally.

No machine here reaches a model hub, so the roadmap's policy starts from random weights:
a char-level tokenizer for arith and countdown (every digit its own token; a countdown trace of
c characters is c tokens), or a byte-level BPE trained with
the ``tokenizers`` library on the task's own text for word problems. Both tokenizer and model
are saved with ``save_pretrained`` so that ``AutoTokenizer`` / ``AutoModelForCausalLM`` (and
therefore ``HFPolicy.from_pretrained`` and TRL) load them like any Hub checkpoint.
"""

from __future__ import annotations

import logging
import string
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from roadmap.core.errors import ConfigError
from roadmap.core.ranges import check_ranges

logger = logging.getLogger(__name__)

__all__ = ["TinyConfig", "build_char_tokenizer", "build_bpe_tokenizer", "build_tiny_model", "task_texts", "create_tiny"]

#: tasks whose text is digits and operators, so ``tokenizer="auto"`` gives them the char tokenizer
CHAR_TASKS = ("arith", "countdown")
#: the tokenizers ``create_tiny`` builds: auto picks char for ``CHAR_TASKS``, else bpe
TOKENIZERS = ("auto", "char", "bpe")

SPECIAL_TOKENS = {"pad_token": "<pad>", "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}


@dataclass
class TinyConfig:
    """Shape of a tiny Llama-family policy. The defaults give ~1.8M parameters with a char vocab.

    Attributes:
        hidden_size: width of the residual stream.
        num_layers: transformer blocks.
        num_heads: attention heads (hidden_size must divide evenly).
        intermediate_size: width of the SwiGLU MLP.
        max_position_embeddings: longest sequence (prompt + solution) in tokens.
        tokenizer: "char" (arith, countdown), "bpe" (word problems) or "auto" (char for the tasks in
            ``CHAR_TASKS``, else bpe).
        bpe_vocab_size: vocabulary size of a trained BPE tokenizer.
        seed: seed of the weight initialisation.
    """

    hidden_size: int = field(default=192, metadata={"help": "Width of the residual stream."})
    num_layers: int = field(default=4, metadata={"help": "Transformer blocks."})
    num_heads: int = field(default=6, metadata={"help": "Attention heads (they must divide hidden_size)."})
    intermediate_size: int = field(default=512, metadata={"help": "Width of the SwiGLU MLP."})
    max_position_embeddings: int = field(default=256, metadata={
        "help": "Longest prompt + solution the model takes, in tokens; countdown search traces need "
                "trace_max_chars + 64 under the char tokenizer."})
    tokenizer: str = field(default="auto", metadata={
        "help": "char (arith, countdown), bpe (word problems), or auto (char for the tasks in CHAR_TASKS, else bpe)."})
    bpe_vocab_size: int = field(default=2048, metadata={"help": "Vocabulary size of a trained BPE tokenizer."})
    seed: int = field(default=0, metadata={"help": "Seed of the weight initialisation."})
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_ranges({k: getattr(self, k) for k in ("hidden_size", "num_layers", "num_heads", "intermediate_size",
                                                   "max_position_embeddings", "bpe_vocab_size")})
        if self.hidden_size % self.num_heads:
            raise ConfigError(
                f"hidden_size={self.hidden_size} is not divisible by num_heads={self.num_heads}; "
                "pick num_heads that divides hidden_size"
            )
        if self.tokenizer not in TOKENIZERS:
            raise ConfigError(f"tokenizer={self.tokenizer!r} must be one of {TOKENIZERS}")


def _wrap(tok, model_max_length: int):
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(tokenizer_object=tok, model_max_length=model_max_length, **SPECIAL_TOKENS)


def _add_bos(tok) -> None:
    from tokenizers import processors

    bos = SPECIAL_TOKENS["bos_token"]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A $B", special_tokens=[(bos, tok.token_to_id(bos))]
    )


def build_char_tokenizer(texts: Iterable[str] = (), model_max_length: int = 256):
    """A char-level tokenizer: printable ASCII, newline, and any other character in ``texts``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    chars = sorted(set(string.printable) - set("\t\r\x0b\x0c") | {c for t in texts for c in t})
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS.values())}
    for c in chars:
        vocab.setdefault(c, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=SPECIAL_TOKENS["unk_token"]))
    tok.pre_tokenizer = pre_tokenizers.FixedLength(length=1)
    tok.decoder = decoders.Fuse()
    _add_bos(tok)
    return _wrap(tok, model_max_length)


def build_bpe_tokenizer(texts: Iterable[str], vocab_size: int = 2048, model_max_length: int = 512):
    """A byte-level BPE trained on ``texts``, with digits split one per token."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS.values()),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(texts), trainer=trainer)
    _add_bos(tok)
    return _wrap(tok, model_max_length)


def build_tiny_model(tokenizer, config: TinyConfig | None = None):
    """A randomly initialised ``LlamaForCausalLM`` sized by ``config`` for ``tokenizer``."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = config or TinyConfig()
    torch.manual_seed(config.seed)
    llama = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.num_layers,
        num_attention_heads=config.num_heads,
        num_key_value_heads=config.num_heads,
        max_position_embeddings=config.max_position_embeddings,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **config.extra,
    )
    model = LlamaForCausalLM(llama)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    n = sum(p.numel() for p in model.parameters())
    logger.info("built a tiny Llama with %.2fM parameters, vocab %d", n / 1e6, len(tokenizer))
    return model


def task_texts(task, n: int = 2000, seed: int = 0) -> list[str]:
    """Prompts and reference solutions of ``n`` train problems: the corpus a tokenizer learns."""
    return [task.prompt(p) + task.reference_solution(p) for p in task.problems("train", n=n, seed=seed)]


def create_tiny(task, out_dir: str | Path, config: TinyConfig | None = None, *, overwrite: bool = False) -> Path:
    """Build a tokenizer for ``task`` and a tiny model, save both to ``out_dir``, return it.

    The folder (kind "tiny") is written atomically: into a temporary folder, renamed when whole, so
    a full disk never leaves a config.json without weights. An existing ``out_dir`` that is not a
    tiny model the library wrote is refused (``roadmap.core.io.OutputExistsError``); ``overwrite``
    admits another kind of library output, never files the library did not write.
    """
    from roadmap.core.io import write_json
    from roadmap.core.outputs import StagedOutput

    config = config or TinyConfig()
    kind = config.tokenizer if config.tokenizer != "auto" else ("char" if task.name in CHAR_TASKS else "bpe")
    recipe = {**asdict(config), "tokenizer_kind": kind}
    with StagedOutput(out_dir, "tiny", overwrite=overwrite, config=recipe) as stage:
        texts = task_texts(task)
        if kind == "char":
            tokenizer = build_char_tokenizer(texts, model_max_length=config.max_position_embeddings)
        else:
            tokenizer = build_bpe_tokenizer(texts, config.bpe_vocab_size, model_max_length=config.max_position_embeddings)
        model = build_tiny_model(tokenizer, config)
        tokenizer.save_pretrained(stage.path)
        model.save_pretrained(stage.path)
        write_json(stage.path / "tiny_config.json", recipe)
        return stage.finish()
