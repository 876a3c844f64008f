"""Loading a transformers causal LM and its tokenizer from a checkpoint folder, refusing bad folders clearly.

Before transformers sees the path: a missing path is refused before any Hub lookup, a folder
without ``config.json`` is named as not a model folder, and a folder that ships its own Python
code (an ``auto_map`` in its config) while ``trust_remote_code`` is off is refused naming the
folder and the flag, instead of transformers' interactive prompt or traceback. ``check_model_files``
names a folder without a tokenizer, truncated or damaged safetensors weights, and (after loading,
``check_tokenizer_fits``) a tokenizer with more tokens than the model has embeddings, each in one
line with the file and the fix, instead of a SafetensorError, an "install sentencepiece" or an
IndexError in the middle of a run.
"""

from __future__ import annotations

import json
from pathlib import Path

from roadmap.core.errors import ConfigError, DataError, MissingPathError

__all__ = ["check_remote_code", "check_model_files", "check_tokenizer_fits", "load_causal_lm"]

#: files any of which holds a tokenizer (fast tokenizer.json, or what a slow one converts from)
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "vocab.txt", "spiece.model",
                   "sentencepiece.bpe.model", "tiktoken.model")


def _safetensors_problem(f: Path) -> str | None:
    """Why the safetensors file ``f`` cannot be whole (its header against its size), or None when it can."""
    size = f.stat().st_size
    if size < 8:
        return f"{size} bytes, shorter than a safetensors header"
    with f.open("rb") as fh:
        n = int.from_bytes(fh.read(8), "little")
        if n > size - 8:
            return f"{size} bytes, but its header claims {n} header bytes"
        try:
            header = json.loads(fh.read(n))
        except ValueError:
            return "its header is not the JSON safetensors writes"
    if not isinstance(header, dict):
        return "its header is not the JSON safetensors writes"
    try:
        end = max((int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"), default=0)
    except (KeyError, TypeError, ValueError, IndexError):
        return "its header lists tensors without data offsets"
    if 8 + n + end != size:
        return f"{size} bytes, but its header describes {8 + n + end}"
    return None


def check_model_files(path, what: str = "model folder", *, tokenizer: bool = True) -> None:
    """Refuse a local model folder whose tokenizer is missing or whose safetensors weights are cut or damaged.

    Reads only headers and sizes (no weights). A path that is not a local model folder (a Hub id)
    passes. Raises ``MissingPathError`` (no tokenizer; a shard named in the index missing) or
    ``DataError`` (a truncated or garbled weights file), each naming the file and the fix.
    """
    p = Path(str(path)).expanduser()
    if not p.is_dir() or not (p / "config.json").is_file():
        return
    for name in ("config.json", "generation_config.json", "tokenizer_config.json", "tokenizer.json"):
        f = p / name
        try:
            json.loads(f.read_text(encoding="utf-8")) if f.is_file() else None
        except ValueError as err:  # not JSON, or not UTF-8: cut or garbled
            raise DataError(f"{what} {path}: {name} is not valid JSON ({err}); copy it again from where the model "
                            "was saved, or re-save the model with save_pretrained") from None
    if tokenizer and not any((p / name).is_file() for name in TOKENIZER_FILES):
        raise MissingPathError(
            f"{what} {path} has no tokenizer (no tokenizer.json, nor a vocabulary a slow tokenizer reads); copy the "
            "tokenizer files the model was saved with (tokenizer.json, tokenizer_config.json) into it, or save them "
            "there with tokenizer.save_pretrained")
    index = p / "model.safetensors.index.json"
    if index.is_file():
        try:
            shards = sorted(set(json.loads(index.read_text()).get("weight_map", {}).values()))
        except (OSError, ValueError, AttributeError):
            raise DataError(f"{what} {path}: {index.name} is not valid JSON; copy the model folder again, or re-save "
                            "it with save_pretrained") from None
        missing = [s for s in shards if not (p / s).is_file()]
        if missing:
            raise MissingPathError(f"{what} {path}: the weights shard(s) {missing} named in {index.name} are missing; "
                                   "copy the whole model folder again")
    for f in sorted(p.glob("*.safetensors")):
        problem = _safetensors_problem(f)
        if problem is not None:
            raise DataError(f"{what} {path}: the weights file {f.name} is truncated or damaged ({problem}); copy it "
                            "again from where the model was saved, or re-save the model with save_pretrained")


def check_tokenizer_fits(model, tokenizer, path, what: str = "model folder") -> None:
    """Refuse (``ConfigError``) a tokenizer with more tokens than ``model`` has input embeddings: its ids past
    the table would raise an IndexError mid-run (a tokenizer copied from another model)."""
    embeddings = getattr(model, "get_input_embeddings", lambda: None)()
    rows = getattr(embeddings, "num_embeddings", None)
    if isinstance(rows, int) and len(tokenizer) > rows:
        raise ConfigError(
            f"{what} {path}: its tokenizer has {len(tokenizer)} tokens but the model only {rows} embeddings, so it is "
            "not the tokenizer the model was trained with; copy the model's own tokenizer files into the folder")


def check_remote_code(path, trust_remote_code: bool, what: str = "model folder") -> None:
    """Raise ``ConfigError`` when ``path`` needs its own code (``auto_map``) and ``trust_remote_code`` is off."""
    if trust_remote_code:
        return
    for name in ("config.json", "tokenizer_config.json"):
        f = Path(path).expanduser() / name
        try:
            auto_map = json.loads(f.read_text()).get("auto_map") if f.is_file() else None
        except (OSError, ValueError, AttributeError):
            continue
        if auto_map:
            raise ConfigError(
                f"{what} {path} needs its own Python code ({name} has an auto_map: {sorted(auto_map)}) and "
                "trust_remote_code is off; if you trust that code, pass --trust-remote-code "
                "(ModelOptions(trust_remote_code=True), from_pretrained(..., trust_remote_code=True))"
            )


def load_causal_lm(path, what: str = "model folder", *, dtype=None, device_map=None,
                   attn_implementation: str | None = None, trust_remote_code: bool = False):
    """``(model, tokenizer)`` of the folder ``path``; ``what`` names it in errors ("policy folder").

    ``dtype`` None or "auto" keeps the checkpoint's dtype; the other options go to transformers'
    ``from_pretrained``.
    """
    from roadmap.core.io import require_local_path

    require_local_path(path, what)  # before transformers asks the Hub about a typo
    p = Path(path).expanduser()
    if p.exists() and not (p / "config.json").exists():
        raise MissingPathError(
            f"{path} is not a model folder (no config.json); pass a folder written by save_pretrained, "
            "e.g. the output of `roadmap quickstart` or policy_init.sft"
        )
    check_remote_code(path, trust_remote_code, what)
    check_model_files(path, what)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    extra = {"device_map": device_map} if device_map is not None else {}
    if attn_implementation is not None:
        extra["attn_implementation"] = attn_implementation
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype or "auto", trust_remote_code=trust_remote_code,
                                                 **extra)
    check_tokenizer_fits(model, tokenizer, path, what)
    return model, tokenizer
