"""Loading a transformers causal LM and its tokenizer from a checkpoint folder, refusing bad folders clearly.

Before transformers sees the path: a missing path is refused before any Hub lookup, a folder
without ``config.json`` is named as not a model folder, and a folder that ships its own Python
code (an ``auto_map`` in its config) while ``trust_remote_code`` is off is refused naming the
folder and the flag, instead of transformers' interactive prompt or traceback.
"""

from __future__ import annotations

import json
from pathlib import Path

from roadmap.core.errors import ConfigError, MissingPathError

__all__ = ["check_remote_code", "load_causal_lm"]


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
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    extra = {"device_map": device_map} if device_map is not None else {}
    if attn_implementation is not None:
        extra["attn_implementation"] = attn_implementation
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype or "auto", trust_remote_code=trust_remote_code,
                                                 **extra)
    return model, tokenizer
