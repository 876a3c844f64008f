"""Small I/O helpers shared by every layer: atomic writes, temporaries, fsync, run locks, tables.

Everything a run writes goes to a unique temporary name first (pid + random suffix), is fsynced,
and is renamed when complete, so a crash never leaves a half-written file under the final name,
and two runs never share a temporary. A failed write removes its temporary; a killed one leaves
it behind under a name that says whose it was, and the next start cleans it once that pid is dead.

Output folders (models, label sets) and the rule that the library never deletes what it did not
write are ``roadmap.core.outputs``; its names (``OutputExistsError``, ``replace_dir``,
``prepare_output``, ...) are importable from here too.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import socket
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from roadmap.core.errors import RunLockedError

__all__ = [
    "LOCK_NAME",
    "RunLockedError",
    "atomic_write_text",
    "write_json",
    "fsync_tree",
    "fsync_path",
    "temp_sibling",
    "clean_stale_temps",
    "pid_alive",
    "run_lock",
    "save_figure",
    "format_table",
    "is_main_process",
    "wait_for_everyone",
    "sum_over_ranks",
]

#: the lock file of a run folder (``run_lock``)
LOCK_NAME = ".o1-roadmap.lock"


# ---------------------------------------------------------------------- ranks (accelerate launch)
def is_main_process() -> bool:
    """Whether this process writes outputs: rank 0 under ``accelerate launch``/torchrun (``RANK``), else always.

    Every rank trains; only the main one writes checkpoints, result JSON, markers and plots.
    """
    return int(os.environ.get("RANK", "0") or 0) == 0


def _process_group():
    try:
        import torch.distributed as dist
    except ImportError:
        return None
    return dist if dist.is_available() and dist.is_initialized() else None


def wait_for_everyone() -> None:
    """A barrier over the ranks of a distributed run (nothing in a single process)."""
    dist = _process_group()
    if dist is not None:
        dist.barrier()


def sum_over_ranks(value: int) -> int:
    """``value`` summed over the ranks of a distributed run (itself in a single process)."""
    dist = _process_group()
    if dist is None:
        return value
    import torch

    device = f"cuda:{torch.cuda.current_device()}" if dist.get_backend() == "nccl" else "cpu"
    t = torch.tensor([int(value)], dtype=torch.long, device=device)
    dist.all_reduce(t)
    return int(t.item())


# ---------------------------------------------------------------------- temporaries and fsync
def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine (a process of another user counts as alive)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def temp_sibling(path: str | Path, tag: str = "tmp") -> Path:
    """A unique hidden name beside ``path`` (same folder, so a rename is atomic): ``.NAME.TAG-PID-HEX``."""
    path = Path(path)
    return path.with_name(f".{path.name}.{tag}-{os.getpid()}-{secrets.token_hex(4)}")


def clean_stale_temps(path: str | Path) -> list[Path]:
    """Remove the temporaries beside ``path`` (``temp_sibling`` names) left by processes that are dead.

    A temporary of a live process (another run writing right now) is left alone. Returns what was removed.
    """
    path = Path(path)
    removed: list[Path] = []
    if not path.parent.is_dir():
        return removed
    pattern = re.compile(rf"\.{re.escape(path.name)}\.(tmp|old)-(\d+)-[0-9a-f]{{8}}")
    for p in path.parent.iterdir():
        m = pattern.fullmatch(p.name)
        if m is None or pid_alive(int(m.group(2))):
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
        removed.append(p)
    return removed


def fsync_path(path: Path, directory: bool = False) -> None:
    """fsync one file (or, with ``directory``, one folder: its entries, so a rename in it is durable)."""
    fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0))
    try:
        os.fsync(fd)
    except OSError:  # some filesystems refuse fsync on a directory; the data files were synced
        if not directory:
            raise
    finally:
        os.close(fd)


def fsync_tree(path: str | Path) -> None:
    """fsync every file and folder under ``path`` (and ``path`` itself), so a rename after it is durable."""
    path = Path(path)
    if path.is_file():
        fsync_path(path)
        return
    for root, _, files in os.walk(path):
        for name in files:
            if not os.path.islink(os.path.join(root, name)):
                fsync_path(Path(root) / name)
        fsync_path(Path(root), directory=True)


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically: a unique temporary, fsync, rename, fsync of the folder.

    On any failure (a full disk, an interrupt) the temporary is removed and the old ``path``, if
    any, is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_temps(path)
    tmp = temp_sibling(path)
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_path(path.parent, directory=True)
    return path


def _jsonable(obj: Any) -> Any:
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if isinstance(obj, Mapping):
        return dict(obj)
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serializable; convert it to a dict, list or scalar first")


def _provenance(obj: Any) -> Any:
    try:
        return _jsonable(obj)
    except TypeError:
        return repr(obj)


def write_json(path: str | Path, payload: Any, indent: int | None = 2) -> Path:
    """Write ``payload`` as indented JSON (``indent=None``: on one line), atomically (results, paths and sets are
    converted).

    Under ``accelerate launch`` only the main process writes (``is_main_process``); the others return the path.
    """
    if not is_main_process():
        return Path(path)
    return atomic_write_text(path, json.dumps(payload, indent=indent, default=_jsonable) + "\n")


def save_figure(fig, path: str | Path, dpi: int = 120) -> Path:
    """Save a matplotlib figure through a unique temporary file and a rename, then close it (on the main
    process only, under ``accelerate launch``)."""
    import matplotlib.pyplot as plt

    path = Path(path)
    if not is_main_process():
        plt.close(fig)
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_sibling(path)
    try:
        fig.savefig(tmp, dpi=dpi, format=path.suffix.lstrip(".") or "png")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        plt.close(fig)
    return path


# ---------------------------------------------------------------------- run lock
def _read_lock(lock: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(lock.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and "pid" in data and "host" in data else None


#: tries to take a lock, 0.1 s apart while an unreadable one may still be being written
_LOCK_TRIES = 20
#: an unreadable lock younger than this may be being written (O_EXCL create, then the pid); older is garbage
_LOCK_FILL_SECONDS = 10.0


def _lock_pid(holder: dict[str, Any]) -> int:
    try:
        return int(holder.get("pid", -1))
    except (TypeError, ValueError):
        return -1


@contextlib.contextmanager
def run_lock(folder: str | Path) -> Iterator[Path]:
    """Hold the exclusive lock of a run folder for the ``with`` block; raise ``RunLockedError`` if held.

    The lock is the file ``folder/.o1-roadmap.lock``, created with O_EXCL and holding the holder's pid
    and host. A lock whose pid is dead on this host is stale (a killed run) and is taken over; a live
    one (or one of another host, which cannot be checked) raises naming the holder's pid. The lock is
    removed when the block ends, however it ends.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / LOCK_NAME
    me = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}
    unreadable = 0  # tries that found a lock with no readable holder (being written, or garbage)
    for _ in range(_LOCK_TRIES):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _read_lock(lock)
            if holder is None:
                # being written right now (created, not yet filled) or garbage: stale only once it is old
                try:
                    age = time.time() - lock.stat().st_mtime
                except FileNotFoundError:
                    continue
                if age < _LOCK_FILL_SECONDS:
                    unreadable += 1
                    time.sleep(0.1)
                    continue
            elif holder.get("host") != me["host"] or pid_alive(_lock_pid(holder)):
                raise RunLockedError(
                    f"run folder {str(folder)!r} is in use by process {holder.get('pid')} on {holder.get('host')} "
                    f"(lock {lock}); wait for it to finish, or use another folder. If that process is gone, delete the lock file"
                ) from None
            lock.unlink(missing_ok=True)  # stale: its holder is dead (or it is garbage older than a write takes)
            continue
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(me))
            f.flush()
            os.fsync(f.fileno())
        break
    else:
        if unreadable:
            raise RunLockedError(
                f"the lock file {lock} of run folder {str(folder)!r} is unreadable (not a pid and host written by "
                f"o1-roadmap) and was changed less than {_LOCK_FILL_SECONDS:.0f} s ago; if no run is starting in "
                "that folder, delete the lock file and rerun")
        raise RunLockedError(f"could not take the lock {lock} of run folder {str(folder)!r}: it was created and "
                             "removed again on every try; retry, or delete the lock file if no run uses the folder")
    try:
        yield lock
    finally:
        if (_read_lock(lock) or {}).get("pid") == me["pid"]:
            lock.unlink(missing_ok=True)


# ---------------------------------------------------------------------- tables
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


#: names of ``roadmap.core.outputs`` that this module re-exports (lazily: outputs imports this module)
_OUTPUT_NAMES = ("MARKER_NAME", "OutputExistsError", "StagedOutput", "folder_hash", "prepare_output", "read_marker",
                 "replace_dir", "write_marker")


def __getattr__(name: str) -> Any:
    if name in _OUTPUT_NAMES:
        from roadmap.core import outputs

        return getattr(outputs, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
