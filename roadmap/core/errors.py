"""Typed errors for bad input: what the library raises and the CLI turns into one line.

Every error names the input (argument, file, setting), the value found, and the fix. The
subclasses also derive from the built-in error a caller would expect (``ValueError`` for a bad
value, ``FileNotFoundError`` for a missing path), so ``except ValueError`` keeps working.
``roadmap.app.cli.main`` prints any of them as ``roadmap <command>: error: <message>`` and exits
with code 2; ``--debug`` adds the traceback. Any other exception is a bug and keeps its traceback.

The rule: every error the library raises for bad input or a failed run is defined here, so a
reader finds the whole vocabulary in one place (``tests/test_errors_rule.py`` checks it). The
modules that raise them re-export them under their old names (``from rewards.prm import
PRMLengthError`` still works). Two exceptions are internal control flow and stay beside their
one catcher: ``roadmap.core.tasks.countdown_traces._Capped`` and ``learning.registry.NothingToLearn``.
This module is the bottom of the bottom layer: it imports nothing from the library.
"""

from __future__ import annotations

__all__ = [
    "RoadmapError",
    "ConfigError",
    "DataError",
    "MissingPathError",
    "StaleOutputError",
    "RecipeError",
    "NoStepCheckerError",
    "BadRowError",
    "MissingColumnError",
    "GGUFError",
    "DependencyError",
    "GGUFDependencyError",
    "SourceUnavailableError",
    "OutputExistsError",
    "PRMLengthError",
    "PRMFormatError",
    "EngineDeadError",
    "RunLockedError",
    "ShardError",
    "LearnLaunchError",
    "RLActorError",
]


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


# ---------------------------------------------------------------------- settings (ConfigError)
class RecipeError(ConfigError):
    """A recipe key or value the loop cannot run; the message names it, its section and the fix.

    Raised by ``roadmap.app.loop_config`` (which re-exports it)."""


class NoStepCheckerError(ConfigError, TypeError):
    """A step verifier was asked for on a task without a step checker (a TypeError, as before, and bad input).

    Raised by ``rewards.verifier`` (where it was the private ``_NoStepChecker``)."""


# ---------------------------------------------------------------------- input data (DataError)
class BadRowError(DataError):
    """A source row has no usable question or answer. Raised by ``roadmap.core.tasks``."""


class MissingColumnError(DataError, KeyError):
    """A dataset lacks a column a reward function reads (a KeyError, as before, and bad input).

    Raised by the TRL reward functions of ``rewards.verifier`` and ``rewards.shaping``."""

    def __str__(self) -> str:  # KeyError's own __str__ would quote the whole message
        return Exception.__str__(self)


class GGUFError(DataError):
    """A GGUF file that cannot be imported: not GGUF, truncated, or an unsupported architecture/quantization.

    Raised by ``policy_init.gguf_import``."""


class DependencyError(RoadmapError, ImportError):
    """An optional package a feature needs is not installed; the message names it and the pip command."""


class GGUFDependencyError(DependencyError):
    """A package the GGUF import needs (``gguf``, or the distribution that ships the model) is not installed."""


class SourceUnavailableError(RoadmapError, ConnectionError):
    """A Hub dataset could not be loaded (typically: this machine cannot reach the Hub)."""


# ---------------------------------------------------------------------- outputs and models
class OutputExistsError(RoadmapError, ValueError):
    """An output exists and the library may not replace it (it is not the library's own output), or it
    would overwrite one of the command's own inputs. Raised by ``roadmap.core.outputs``."""


class PRMLengthError(RoadmapError, ValueError):
    """A run's prompts alone are longer than the reward model's positions: no step could be scored.

    Raised by ``rewards.prm``."""


class PRMFormatError(RoadmapError, FileNotFoundError):
    """A reward model folder is in no supported format, or lacks what its format needs.

    Raised by ``rewards.public_prm``."""


# ---------------------------------------------------------------------- runs that failed (RuntimeError)
class EngineDeadError(RoadmapError, RuntimeError):
    """The vLLM engine process died; the message names the model and what to do."""


class RunLockedError(RoadmapError, RuntimeError):
    """Another process holds the lock of a run folder (or its lock file cannot be read); the CLI prints one line."""


class ShardError(RoadmapError, RuntimeError):
    """A shard failed on a worker (it raised, or its worker died); finished shards were kept."""


class LearnLaunchError(RoadmapError, RuntimeError):
    """The learn phase's ``accelerate launch`` subprocess failed; the message names the config and the log."""


class RLActorError(RoadmapError, RuntimeError):
    """The sampler or the learner actor died (and could not be restarted); the last checkpoint was kept."""
