"""What each Ray actor of a sharded command loads: the policy folder, and the PRM folder when one guides.

``roadmap.core.distributed`` runs shards on actors; this module says, for ``roadmap search``,
``label``, ``eval``, ``bench test-time`` and the loop's search and label phases, which models an
actor builds from their folders (``ModelSpec.load``: ``load_policy`` and ``rewards.load_step_scorer``
with the same options as this process would use) and builds the ``Workers`` of ``--workers N`` and
``--ray-address ADDR``. A spec is plain data: it pickles to the actors, never the models themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from roadmap.core.backends import ModelOptions
from roadmap.core.distributed import Workers

__all__ = ["ModelSpec", "workers_for"]


@dataclass(frozen=True)
class ModelSpec:
    """The folders and loading options of one actor's models.

    Attributes:
        task: the task (with its prompt format bound): the PRM reads its steps.
        policy: policy folder (``load_policy``).
        backend, batch_size, options: how the policy loads, as in this process.
        prm: reward-model folder guiding the search (``rewards.load_step_scorer``), or None.
        prm_format, aggregation: how the PRM loads and aggregates its step scores.
        completer: a second policy folder that rolls out for labelling (``roadmap label --completer``).
        prm_batch_size: the PRM's batch size (None: the scorer's default).
    """

    task: Any
    policy: str
    backend: str = "hf"
    batch_size: int = 64
    options: ModelOptions = field(default_factory=ModelOptions)
    prm: str | None = None
    prm_format: str = "auto"
    aggregation: str = "min"
    completer: str | None = None
    prm_batch_size: int | None = None

    def load(self) -> dict[str, Any]:
        """The actor's models: ``policy``, and ``scorer`` / ``completer`` when their folders are given."""
        from roadmap.app.plugins import load_plugins
        from roadmap.core.backends import load_policy

        load_plugins()  # ROADMAP_PLUGINS: a plugin's search method or task, as in the driver
        out: dict[str, Any] = {"policy": load_policy(self.policy, backend=self.backend, batch_size=self.batch_size,
                                                     options=self.options)}
        if self.prm:
            from rewards import load_step_scorer

            extra = {"batch_size": self.prm_batch_size} if self.prm_batch_size else {}
            out["scorer"] = load_step_scorer(self.prm, self.task, self.aggregation, options=self.options,
                                             prm_format=self.prm_format, **extra)
        if self.completer:
            out["completer"] = load_policy(self.completer, backend=self.backend, batch_size=self.batch_size,
                                           options=self.options)
        return out

    def provides(self) -> tuple[str, ...]:
        """The names of the resources ``load`` builds."""
        return ("policy",) + (("scorer",) if self.prm else ()) + (("completer",) if self.completer else ())


def workers_for(spec: ModelSpec, n: int = 1, address: str | None = None, retries: int = 0) -> Workers:
    """The ``Workers`` of ``--workers n`` / ``--ray-address address`` whose actors load ``spec``."""
    return Workers(n=n, address=address, load=spec.load, provides=spec.provides(), retries=retries)
