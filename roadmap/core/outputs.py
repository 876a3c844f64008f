"""Output folders the library owns: the marker, the rule that never deletes a user's file, and staging.

Every output folder the library writes (a policy, a PRM or ORM, a label set, a tiny model) carries
a marker, ``.o1-roadmap.json``, written last: the kind of output, whether its run completed its
work budget (``completed``, ``stopped_by``), the settings that made it, a hash of each input folder
and the list of files the library wrote. The library replaces an existing folder only when it is
empty or holds nothing but its own output (``prepare_output``), and it never deletes a file it did
not write, not even with ``overwrite``: it refuses instead (``OutputExistsError``), because moving
only its own files out of a folder cannot be made atomic, and a crash in the middle would leave the
user's files in a temporary folder that the next start cleans away.

``StagedOutput`` writes a folder through a unique temporary sibling and renames it into place.

The write guard every command runs before any work (``roadmap.app.cli_checks.check_inputs``, and the
library entry points themselves): ``check_overlap`` refuses an output that is, contains or lies
inside an input (a policy, PRM, label set, data file, recipe), with or without ``overwrite``;
``check_writable`` refuses an output that cannot be written before the work, not after;
``check_output_file`` refuses to replace a single output file (an eval report) the library did
not write; ``claim_output_dir`` does the same for folders written in place over many starts (a
run, a search, a bench), marking them as the library's on their first start.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from roadmap.core.errors import ConfigError, OutputExistsError
from roadmap.core.io import (
    LOCK_NAME,
    _provenance,
    clean_stale_temps,
    folder_fingerprint,
    fsync_path,
    fsync_tree,
    is_main_process,
    temp_sibling,
    write_json,
)

logger = logging.getLogger(__name__)

__all__ = [
    "MARKER_NAME",
    "OUTPUT_FILE_KEY",
    "OutputExistsError",
    "check_overlap",
    "check_writable",
    "check_output_file",
    "claim_output_dir",
    "holds_only",
    "owned_payload",
    "StagedOutput",
    "folder_hash",
    "read_marker",
    "write_marker",
    "prepare_output",
    "replace_dir",
]

#: the marker file every output folder the library writes carries
MARKER_NAME = ".o1-roadmap.json"


#: kinds of folders written in place over many starts (``claim_output_dir``), never replaced by another kind
RESUMABLE_KINDS = ("run", "search", "bench", "quickstart")

#: the key of a single output file (a JSON report) that says which command of the library wrote it
OUTPUT_FILE_KEY = "written_by"


def _files(folder: Path) -> list[str]:
    """Every file under ``folder`` (relative POSIX paths, sorted), without the marker."""
    out = []
    for root, _, files in os.walk(folder):
        for name in files:
            rel = (Path(root) / name).relative_to(folder).as_posix()
            if rel != MARKER_NAME:
                out.append(rel)
    return sorted(out)


#: the provenance hash of an input folder (its model files): one hash for markers, shards and cells
folder_hash = folder_fingerprint


def read_marker(folder: str | Path) -> dict[str, Any] | None:
    """The marker of an output folder, or None when it has none (or an unreadable one)."""
    try:
        data = json.loads((Path(folder) / MARKER_NAME).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and "kind" in data else None


def write_marker(
    folder: str | Path, kind: str, *, config: Mapping[str, Any] | None = None,
    inputs: Mapping[str, str | Path] | None = None, completed: bool = True, stopped_by: str | None = None,
) -> dict[str, Any]:
    """Write the marker of a finished output folder (the last file written into it) and return it.

    The marker holds ``library``, ``kind``, ``completed`` (whether the run finished its work budget),
    ``stopped_by``, ``config`` (the settings), ``inputs`` (name -> {"path", "sha256"} of each input
    folder), ``files`` (every file the library wrote there) and ``created`` (Unix time).
    """
    folder = Path(folder)
    marker = {
        "library": "o1-roadmap",
        "kind": kind,
        "completed": bool(completed),
        "stopped_by": stopped_by,
        "config": dict(config or {}),
        "inputs": {name: {"path": str(p), "sha256": folder_hash(p) if Path(p).is_dir() else None}
                   for name, p in (inputs or {}).items()},
        "files": _files(folder),
        "created": time.time(),
    }
    (folder / MARKER_NAME).write_text(json.dumps(marker, indent=2, default=_provenance) + "\n")
    return marker


def _listing(names: list[str]) -> str:
    return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def prepare_output(out: str | Path, kind: str, *, overwrite: bool = False) -> Path:
    """Check that the library may write its ``kind`` output to ``out``; raise ``OutputExistsError`` if not.

    - ``out`` does not exist, or is an empty folder: fine.
    - ``out`` holds an output of the same ``kind`` (its marker says so) and nothing but the files the
      library wrote there: fine, it will be replaced (a rerun).
    - ``out`` holds a library output of another kind: refused unless ``overwrite``.
    - ``out`` holds any file the library did not write (no marker, or files beyond the marker's list):
      refused, even with ``overwrite``. The library never deletes what it did not write; the user moves
      those files or picks another folder.
    - ``out`` is a file: refused.
    """
    out = Path(out)
    if not out.exists():
        return out
    if not out.is_dir():
        raise OutputExistsError(f"output folder {str(out)!r} is an existing file; choose another folder")
    present = _files(out)
    marker = read_marker(out)
    if marker is None and not present and not (out / MARKER_NAME).exists():
        return out
    if marker is not None and marker["kind"] in RESUMABLE_KINDS and marker["kind"] != kind:
        raise OutputExistsError(
            f"output folder {str(out)!r} holds a {marker['kind']!r} folder, which `roadmap {marker['kind']}` writes "
            "in place over many starts; another command never replaces it, not even with overwrite: choose another "
            "folder")
    if marker is None and (out / MARKER_NAME).exists():
        raise OutputExistsError(
            f"output folder {str(out)!r} has a damaged marker {MARKER_NAME} (emptied, cut or garbled), so which of "
            "its files o1-roadmap wrote cannot be told, and none is deleted, not even with overwrite: move the folder "
            "away (or delete it, if it is only the library's output), or choose another folder")
    foreign = present if marker is None else sorted(set(present) - set(marker.get("files", [])))
    if marker is None or foreign:
        raise OutputExistsError(
            f"output folder {str(out)!r} holds files o1-roadmap did not write ({_listing(foreign) or MARKER_NAME}); "
            "they are never deleted, not even with overwrite: choose another folder, or move those files away"
        )
    if marker["kind"] != kind and not overwrite:
        raise OutputExistsError(
            f"output folder {str(out)!r} holds a {marker['kind']!r} output, not a {kind!r} one; pass overwrite=True "
            "(--overwrite) to replace it, or choose another folder"
        )
    return out


def replace_dir(tmp: str | Path, out: str | Path, *, kind: str | None = None, overwrite: bool = False) -> Path:
    """Move the finished folder ``tmp`` to ``out`` (the last step of a run), replacing only library output.

    ``out`` is checked with ``prepare_output`` (with ``kind``, or the kind in ``tmp``'s marker) right
    before the swap. The old folder is renamed aside, the new one renamed in, and only then is the old
    one removed, so ``out`` always names a whole folder and a crash leaves a temporary that the next
    start cleans. ``tmp`` is fsynced first.
    """
    tmp, out = Path(tmp), Path(out)
    kind = kind or (read_marker(tmp) or {}).get("kind")
    if kind is None:
        raise ValueError(f"replace_dir: {str(tmp)!r} has no {MARKER_NAME}; pass kind=... or write_marker first")
    prepare_output(out, kind, overwrite=overwrite)
    fsync_tree(tmp)
    old = None
    if out.exists():
        old = temp_sibling(out, "old")
        os.replace(out, old)
        try:  # a file dropped in since the first check must survive too
            prepare_output(old, kind, overwrite=overwrite)
        except OutputExistsError:
            os.replace(old, out)
            prepare_output(out, kind, overwrite=overwrite)  # raises, naming ``out``
            raise
    try:
        os.replace(tmp, out)
    except BaseException:
        if old is not None:
            os.replace(old, out)
        raise
    fsync_path(out.parent, directory=True)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return out


class StagedOutput:
    """An output folder written through a unique temporary folder; use as a context manager.

    On entry ``out`` is checked (``prepare_output``: refused with ``OutputExistsError`` unless it is
    missing, empty, or a library output of the same ``kind``; ``overwrite`` admits another kind) and
    stale temporaries of dead runs beside it are removed. Write into ``path``; ``scratch`` is for
    trainer checkpoints and is never kept. ``finish`` writes the result JSON and the marker, fsyncs
    and renames; leaving the block without ``finish`` (an error, an interrupt) removes ``path``.
    """

    def __init__(self, out: str | Path, kind: str, *, overwrite: bool = False, config: Mapping[str, Any] | None = None,
                 inputs: Mapping[str, str | Path] | None = None) -> None:
        self.out, self.kind, self.overwrite = Path(out), kind, overwrite
        self.config, self.inputs = dict(config or {}), dict(inputs or {})
        self.path = temp_sibling(self.out)
        self.finished = False

    @property
    def scratch(self) -> Path:
        return self.path / "trainer"

    def __enter__(self) -> StagedOutput:
        check_overlap({"output folder": self.out}, self.inputs)
        prepare_output(self.out, self.kind, overwrite=self.overwrite)  # every rank: the same refusal everywhere
        for p in clean_stale_temps(self.out) if is_main_process() else ():
            logger.info("removed %s, left by a run that died", p)
        self.path.mkdir(parents=True)
        return self

    def finish(self, result: Mapping[str, Any] | None = None, result_file: str | None = None) -> Path:
        """Write ``result`` (a ``TrainResult`` or dict, with the config) to ``result_file``, the marker, then rename.

        Under ``accelerate launch`` only the main process does; another rank drops its staging folder.
        """
        if not is_main_process():
            shutil.rmtree(self.path, ignore_errors=True)
            self.finished = True
            return self.out
        shutil.rmtree(self.scratch, ignore_errors=True)
        result = dict(result or {})
        if result_file is not None:
            write_json(self.path / result_file, {**result, "config": self.config})
        write_marker(self.path, self.kind, config=self.config, inputs=self.inputs,
                     completed=result.get("completed", True), stopped_by=result.get("stopped_by"))
        replace_dir(self.path, self.out, kind=self.kind, overwrite=self.overwrite)
        self.finished = True
        return self.out

    def __exit__(self, *exc) -> None:
        if not self.finished:
            shutil.rmtree(self.path, ignore_errors=True)


# ---------------------------------------------------------------------- the write guard
def _real(path: str | Path) -> Path:
    return Path(str(path)).expanduser().resolve()


def check_overlap(outputs: Mapping[str, str | Path | None], inputs: Mapping[str, str | Path | None]) -> None:
    """Refuse (``OutputExistsError``) when an output is, contains or lies inside an input, whatever ``overwrite``.

    ``outputs`` and ``inputs`` map a name for the message ("--out", "--policy folder") to a path; None
    and inputs that do not exist locally (a Hub id) are skipped. Paths are compared resolved, so a
    symlink or a ``..`` does not hide an overlap.
    """
    for oname, out in outputs.items():
        if not out:
            continue
        o = _real(out)
        for iname, given in inputs.items():
            if not given or not Path(str(given)).expanduser().exists():
                continue
            i = _real(given)
            if o == i:
                how = "is"
            elif i.is_relative_to(o):
                how = "contains"
            elif o.is_relative_to(i):
                how = "lies inside"
            else:
                continue
            raise OutputExistsError(
                f"{oname} {str(out)!r} {how} the input {iname} {str(given)!r}; an output may never replace or "
                f"write into what the command reads, not even with --overwrite: pick an {oname} outside it")


def check_writable(path: str | Path, what: str = "--out") -> None:
    """Refuse (``ConfigError``) an output ``path`` that cannot be written, before any work.

    The nearest existing folder at or above ``path`` (``path`` itself when it is a folder) gets a probe
    file, created and removed at once: that catches a read-only folder or file system, and a folder of
    another user, which ``os.access`` misses for root and on some mounts.
    """
    path = Path(str(path)).expanduser()
    here = path if path.is_dir() else next((p for p in path.absolute().parents if p.exists()), None)
    if here is None:
        return
    if not here.is_dir():
        raise ConfigError(f"{what} {str(path)!r}: {here} is a file, not a folder; pick another {what}")
    probe = here / f".o1-roadmap-probe-{os.getpid()}-{time.time_ns()}"
    try:
        probe.touch(exist_ok=False)
    except OSError as err:
        raise ConfigError(f"{what} {str(path)!r} cannot be written: {here} refuses a new file ({err.strerror}); "
                          f"pick another {what}, or make {here} writable") from None
    probe.unlink(missing_ok=True)


def owned_payload(payload: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """``payload`` with the key that marks it as the library's ``kind`` output file (``check_output_file``)."""
    return {OUTPUT_FILE_KEY: f"o1-roadmap {kind}", **payload}


def check_output_file(path: str | Path, kind: str, *, legacy_keys: tuple[str, ...] = (), what: str = "--out") -> None:
    """Refuse (``OutputExistsError``) to replace an existing file ``path`` that the library's ``kind`` did not write.

    The library's file is JSON whose ``OUTPUT_FILE_KEY`` names ``kind`` (``owned_payload``), or, from
    older versions, a JSON object holding every key of ``legacy_keys``. Anything else (the user's
    notes, a report of another command, a file that is not JSON) is never replaced, not even with
    ``--overwrite``.
    """
    path = Path(str(path)).expanduser()
    if not path.exists() or path.is_dir():
        return
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = None
    if isinstance(data, dict) and (data.get(OUTPUT_FILE_KEY) == f"o1-roadmap {kind}"
                                   or (legacy_keys and OUTPUT_FILE_KEY not in data
                                       and all(k in data for k in legacy_keys))):
        return
    raise OutputExistsError(
        f"{what} {str(path)!r} is an existing file that `roadmap {kind}` did not write; it is never replaced, not "
        f"even with --overwrite: pick another {what}, or move that file away")


def holds_only(folder: Path, names: tuple[str, ...]) -> bool:
    """Whether ``folder`` holds nothing at its top level (hidden names aside) but ``names``: the ``legacy`` test
    of ``claim_output_dir`` for a folder written before output folders carried a marker."""
    return all(p.name in names for p in Path(folder).iterdir() if not p.name.startswith("."))


def claim_output_dir(out: str | Path, kind: str, *, legacy: Callable[[Path], bool] | None = None,
                     check_only: bool = False) -> Path:
    """Make sure the folder ``out``, written in place over many starts (a run, a search), is the library's.

    - missing or empty (but for a lock or a probe): created, and the marker of ``kind`` written;
    - holds the marker of ``kind``: the library's own, resumed;
    - holds the marker of another kind, or no marker and files ``legacy(out)`` does not accept as the
      library's (a folder from before markers): refused (``OutputExistsError``), naming the files.
    Nothing is ever deleted here; with ``check_only`` nothing is written either (the CLI's check before
    any work).
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OutputExistsError(f"output folder {str(out)!r} is an existing file; choose another folder")
    marker = read_marker(out) if out.is_dir() else None
    if marker is not None:
        if marker.get("kind") != kind:
            raise OutputExistsError(
                f"output folder {str(out)!r} holds a {marker.get('kind')!r} output, not a {kind!r} one; it is "
                "resumed only by the same command: choose another folder")
        return out
    present = [f for f in _files(out) if f != LOCK_NAME] if out.is_dir() else []
    damaged = (out / MARKER_NAME).exists()
    if damaged and not (legacy is not None and legacy(out)):
        raise OutputExistsError(
            f"output folder {str(out)!r} has a damaged marker {MARKER_NAME} (emptied, cut or garbled), and its files "
            f"are not only what `roadmap {kind}` writes, so it is not resumed and nothing in it is replaced: move "
            "the folder away, or choose another folder")
    if damaged and not check_only:  # the legacy check vouches for the files: only the marker was lost
        logger.warning("%s is damaged; the folder holds only what `roadmap %s` writes: marker rewritten", out / MARKER_NAME, kind)
    elif not damaged and present and not (legacy is not None and legacy(out)):
        raise OutputExistsError(
            f"output folder {str(out)!r} holds files o1-roadmap did not write ({_listing(present) or MARKER_NAME}); "
            "they are never replaced, not even with --overwrite: choose another folder, or move those files away")
    if check_only:
        return out
    out.mkdir(parents=True, exist_ok=True)
    if is_main_process():
        write_marker(out, kind, completed=False)
    return out
