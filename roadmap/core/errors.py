"""Typed errors for bad input: what the library raises and the CLI turns into one line.

Every error names the input (argument, file, setting), the value found, and the fix. The
subclasses also derive from the built-in error a caller would expect (``ValueError`` for a bad
value, ``FileNotFoundError`` for a missing path), so ``except ValueError`` keeps working.
``roadmap.cli.main`` prints any of them as ``roadmap <command>: error: <message>`` and exits
with code 2; ``--debug`` adds the traceback.
"""

from __future__ import annotations

__all__ = ["RoadmapError", "ConfigError", "DataError", "MissingPathError", "StaleOutputError"]


class RoadmapError(Exception):
    """Base of the library's bad-input errors; the message names the input, the value and the fix."""


class ConfigError(RoadmapError, ValueError):
    """A setting (CLI argument, recipe key, task option, config field) has an unusable value."""


class DataError(RoadmapError, ValueError):
    """An input file cannot be read or holds unusable content (the message names file and row)."""


class MissingPathError(RoadmapError, FileNotFoundError):
    """A path given as input does not exist locally (checked before any Hub lookup)."""


class StaleOutputError(RoadmapError):
    """An output folder holds results made with other settings or inputs than this run's.

    The message names the differing setting and the fix: another output folder, or
    ``--overwrite`` (``overwrite=True``) to discard the stale results.
    """

    @classmethod
    def mismatch(cls, where: str, recorded: dict | None, wanted: dict) -> StaleOutputError:
        """The error for a result at ``where`` whose provenance ``recorded`` differs from ``wanted``."""
        if recorded is None:
            what = "records no provenance (written by an older version)"
        else:
            keys = sorted(set(recorded) | set(wanted), key=lambda k: (k not in wanted, k))
            diff = [f"{k}={recorded.get(k)!r} on disk, {wanted.get(k)!r} now" for k in keys
                    if recorded.get(k) != wanted.get(k)]
            what = "was made with other settings: " + "; ".join(diff)
        return cls(f"{where} {what}. Pass another --out (out_dir), or --overwrite (overwrite=True) to discard "
                   "the stale results")
