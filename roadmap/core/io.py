"""Small I/O helpers shared by every layer: atomic writes and plain-text tables.

Everything a run writes goes to a temporary name first and is renamed when complete, so a
crash never leaves a half-written file under the final name.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["atomic_write_text", "write_json", "replace_dir", "save_figure", "format_table"]


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path


def write_json(path: str | Path, payload: Any) -> Path:
    """Write ``payload`` as indented JSON, atomically."""
    return atomic_write_text(path, json.dumps(payload, indent=2) + "\n")


def replace_dir(tmp: str | Path, out: str | Path) -> Path:
    """Move the finished folder ``tmp`` to ``out``, replacing what was there (the last step of a run)."""
    import shutil

    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    return out


def save_figure(fig, path: str | Path, dpi: int = 120) -> Path:
    """Save a matplotlib figure through a temporary file and a rename, then close it."""
    path = Path(path)
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=dpi)
    import matplotlib.pyplot as plt

    plt.close(fig)
    os.replace(tmp, path)
    return path


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3f}"
    if isinstance(v, (tuple, list)) and v and all(isinstance(x, float) for x in v):
        return "[" + ", ".join(f"{x:.3f}" for x in v) + "]"
    return str(v)


def format_table(rows: Sequence[dict[str, Any]], columns: Sequence[str], markdown: bool = False) -> str:
    """A plain-text (or markdown) table of ``rows`` over ``columns``; floats get 3 decimals."""
    cells = [[_cell(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) if cells else len(c) for i, c in enumerate(columns)]
    if markdown:
        lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(columns, widths)) + " |",
                 "| " + " | ".join("-" * w for w in widths) + " |"]
        lines += ["| " + " | ".join(v.ljust(w) for v, w in zip(row, widths)) + " |" for row in cells]
        return "\n".join(lines)
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in cells]
    return "\n".join(lines)


# ---------------------------------------------------------------- input paths and provenance
#: files of a model folder that decide its outputs (configs, tokenizer, weights); logs and
#: optimizer state are left out so that resuming training elsewhere does not change the hash
_FINGERPRINT_SUFFIXES = (".json", ".safetensors", ".bin", ".model", ".txt", ".pt")
_FINGERPRINT_SKIP = ("optimizer", "scheduler", "rng_state", "trainer_state", "training_args")


def looks_like_path(name: str | Path) -> bool:
    """Whether ``name`` is meant as a local path rather than a Hub id ("owner/name").

    True when it exists, starts with '/', '.' or '~', holds a backslash or more than one '/',
    has no '/' at all (Hub ids are "owner/name"), its first component exists locally, or the
    Hub is switched off (``HF_HUB_OFFLINE=1``).
    """
    text = str(name)
    if isinstance(name, Path) or Path(text).expanduser().exists():
        return True
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return True
    if text.startswith(("/", ".", "~")) or "\\" in text or text.count("/") != 1:
        return True
    return Path(text.split("/", 1)[0]).exists()


def require_local_path(path: str | Path, what: str = "path") -> None:
    """Raise ``MissingPathError`` (naming ``what`` and ``path``) when ``path`` looks like a local
    path (``looks_like_path``) and does not exist; a Hub id (a str "owner/name") passes through,
    a ``Path`` never does. No network."""
    from roadmap.core.errors import MissingPathError

    if looks_like_path(path) and not Path(str(path)).expanduser().exists():
        where = Path(str(path)).expanduser().absolute()
        hub = "" if isinstance(path, Path) else ", or write a Hub model id as owner/name"
        raise MissingPathError(f"{what} {str(path)!r} does not exist (looked for {where}); check the spelling{hub}")


def folder_fingerprint(path: str | Path) -> str:
    """A short sha256 over the names, sizes and contents of a folder's config and weight files.

    Two folders with the same model files give the same fingerprint wherever they lie, so a
    result can record which model made it and a resume can tell a match from a stale leftover.
    A file (rather than a folder) is hashed whole; a missing path raises ``MissingPathError``.
    """
    import hashlib

    from roadmap.core.errors import MissingPathError

    root = Path(path).expanduser()
    if not root.exists():
        raise MissingPathError(f"cannot fingerprint {str(path)!r}: it does not exist")
    if root.is_file():
        files = [root]
    else:
        files = sorted(f for f in root.rglob("*") if f.is_file() and f.suffix in _FINGERPRINT_SUFFIXES
                       and not any(s in f.name for s in _FINGERPRINT_SKIP) and not f.name.startswith("."))
    digest = hashlib.sha256()
    for f in files:
        name = f.name if f == root else f.relative_to(root).as_posix()
        digest.update(f"{name}\0{f.stat().st_size}\0".encode())
        with f.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def json_fingerprint(payload: Any) -> str:
    """A short sha256 of ``payload`` as canonical JSON (sorted keys): the identity of settings or inputs."""
    import hashlib

    text = json.dumps(payload, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
