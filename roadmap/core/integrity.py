"""What the library reads back is what it wrote: sizes and sha256 digests of its own files.

A run resumes from files it wrote earlier (shards, cells, phase markers, the recipe as run). Atomic
writes keep a crash from leaving half a file under its real name, but a file can still be emptied,
cut short or garbled afterwards (a full disk, a copy gone wrong, a hand edit). Such a file must be
named and redone, never trusted and never silently dropped. One check serves every reader:

* a JSON object carries its own seal, ``"sha256"`` over its canonical JSON (``seal`` / ``unseal``);
  a JSONL file seals each line, so one bad line is found and only its item is redone;
* a file written whole can record its size and sha256 elsewhere (``digest`` / ``damage``; the fault-injection
  benchmark uses them to tell what it damaged);
* a text file (the recipe as run) starts with a header line holding the digest of what follows
  (``sealed_text`` / ``read_sealed_text``).

Files written before seals existed (no seal at all) are read as before: only what the check can see
is refused. ``damage`` and ``read_sealed_json`` return the reason a file is unusable, worded for a
warning that names the file ("is empty", "is truncated (120 of 512 bytes)", "does not match its
sha256 (garbled)").
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

__all__ = ["SEAL", "digest", "damage", "seal", "unseal", "read_sealed_json", "write_sealed_json", "sealed_line",
           "read_sealed_line", "sealed_text", "read_sealed_text", "TEXT_SEAL"]

#: the key of a sealed JSON object that holds the sha256 of the rest
SEAL = "sha256"
#: the first line of a sealed text file, before the hex digest of everything after that line
TEXT_SEAL = "# o1-roadmap sha256 of what follows: "


def _canonical(payload: Any) -> bytes:
    return json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8")


def digest(data: bytes | str | Path) -> dict[str, Any]:
    """``{"bytes": N, "sha256": HEX}`` of ``data`` (bytes, text, or the contents of a file)."""
    if isinstance(data, Path):
        data = data.read_bytes()
    elif isinstance(data, str):
        data = data.encode("utf-8")
    return {"bytes": len(data), SEAL: hashlib.sha256(data).hexdigest()}


def damage(path: str | Path, record: dict[str, Any]) -> str | None:
    """Why the file at ``path`` is not the one ``record`` (a ``digest``) describes, or None when it is."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return "is missing"
    except OSError as e:
        return f"cannot be read ({e.strerror or e})"
    want = int(record.get("bytes", -1))
    if not data and want:
        return f"is empty (0 of {want} bytes)"
    if len(data) < want:
        return f"is truncated ({len(data)} of {want} bytes)"
    if len(data) != want:
        return f"has {len(data)} bytes, not the {want} written (garbled)"
    if hashlib.sha256(data).hexdigest() != record.get(SEAL):
        return "does not match the sha256 recorded when it was written (garbled)"
    return None


def seal(payload: dict[str, Any]) -> dict[str, Any]:
    """``payload`` with ``"sha256"``: the digest of its canonical JSON (the key must be free)."""
    if SEAL in payload:
        raise ValueError(f"seal: the payload already has a {SEAL!r} key")
    return {**payload, SEAL: hashlib.sha256(_canonical(payload)).hexdigest()}


def unseal(obj: Any) -> tuple[dict[str, Any] | None, str | None]:
    """``(payload, None)`` for an intact sealed object (seal removed) or an unsealed one (written before
    seals); ``(None, reason)`` for anything else."""
    if not isinstance(obj, dict):
        return None, f"holds a JSON {type(obj).__name__}, not the object written"
    if SEAL not in obj:
        return obj, None
    payload = {k: v for k, v in obj.items() if k != SEAL}
    if hashlib.sha256(_canonical(payload)).hexdigest() != obj[SEAL]:
        return None, "does not match the sha256 recorded when it was written (garbled)"
    return payload, None


def _parse(raw: bytes) -> tuple[Any, str | None]:
    if not raw.strip():
        return None, "is empty"
    try:
        return json.loads(raw.decode("utf-8")), None
    except UnicodeDecodeError as e:
        return None, f"is not UTF-8 (byte {e.start}: {e.reason}; garbled)"
    except ValueError as e:
        return None, f"is not valid JSON ({e}; truncated or garbled)"


def read_sealed_json(path: str | Path) -> tuple[dict[str, Any] | None, str | None]:
    """The payload of a JSON file written by ``write_sealed_json``: ``(payload, None)``, or ``(None, reason)``
    when it is empty, truncated or garbled. A missing file is ``(None, "is missing")``."""
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        return None, "is missing"
    obj, why = _parse(raw)
    return (None, why) if why else unseal(obj)


def write_sealed_json(path: str | Path, payload: dict[str, Any], compact: bool = False) -> Path:
    """Write ``payload`` sealed, as indented JSON (``compact``: on one line, for large shards), atomically
    (``roadmap.core.io.write_json``). The seal covers the canonical JSON, so either layout reads back."""
    from roadmap.core.io import _jsonable, write_json

    sealed = seal(json.loads(json.dumps(payload, default=_jsonable)))  # sealed as it reads back
    return write_json(path, sealed, indent=None if compact else 2)


def sealed_line(payload: dict[str, Any]) -> str:
    """One JSONL line (with its newline) holding ``payload`` sealed."""
    return json.dumps(seal(payload)) + "\n"


def read_sealed_line(line: bytes | str) -> tuple[dict[str, Any] | None, str | None]:
    """The payload of one ``sealed_line`` (or of an unsealed JSON line): ``(payload, None)`` or ``(None, reason)``."""
    raw = line.encode("utf-8") if isinstance(line, str) else line
    obj, why = _parse(raw)
    return (None, why) if why else unseal(obj)


def sealed_text(text: str) -> str:
    """``text`` with a first line holding the sha256 of ``text`` (``read_sealed_text`` checks it)."""
    return f"{TEXT_SEAL}{hashlib.sha256(text.encode('utf-8')).hexdigest()}\n{text}"


def read_sealed_text(path: str | Path) -> tuple[str | None, str | None]:
    """The text of a file written as ``sealed_text``: ``(text, None)``, ``(None, reason)`` when it is empty,
    truncated or garbled. A file without the header line (written before seals) is returned whole."""
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        return None, "is missing"
    if not raw.strip():
        return None, "is empty"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return None, f"is not UTF-8 (byte {e.start}: {e.reason}; garbled)"
    if not (text.startswith(TEXT_SEAL[:12]) or TEXT_SEAL.startswith(text)):  # no header (cut inside it counts)
        return text, None
    head, _, body = text.partition("\n")
    if hashlib.sha256(body.encode("utf-8")).hexdigest() != head[len(TEXT_SEAL):].strip():
        return None, "does not match the sha256 in its first line (truncated or garbled)"
    return body, None
