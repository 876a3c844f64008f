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
