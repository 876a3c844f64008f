"""Shards of independent work run in this process or on Ray actors, each actor holding its own models.

The expensive phases of the roadmap (train-time search, step labelling, evaluation, the test-time
bench) are independent over problems. They cut their problems into shards whose boundaries and
seeds depend on the problems alone (a shard's seed is derived from the global index of its first
problem), never on how many workers run them, so one worker and N workers give the same bytes.
``run_shards`` is the one engine they share, and ``ShardedJob`` the resumable phase over it whose finished shards
are sealed JSON files (train-time search, labelling, evaluation):

* ``Workers(n=1)``: every shard runs here, in order, on the models the caller already holds;
* ``Workers(n=N)`` starts a local Ray (``ray.init(num_cpus=N)``), ``Workers(address=ADDR)`` joins
  a cluster; N Ray actors each load their own models once (``Workers.load``, a picklable
  callable, e.g. the policy and PRM folders), with one CPU thread each, or one GPU each when the
  cluster has GPUs, and take shards one at a time (as OpenRLHF and verl put generation on Ray actors).

The driver alone writes results: ``on_result(key, result)`` runs here as each shard finishes, so a
shard is on disk (atomically) the moment it is done and a run killed with SIGKILL keeps every
finished shard. A worker that raises, or dies (killed, out of memory), stops new shards from
starting; the shards already running finish and are written, and ``ShardError`` names the shard,
the worker and the cause. A rerun redoes only the shards not on disk. One tqdm bar counts the
work of all workers. Ray is an optional extra (``pip install 'o1-roadmap[ray]'``); without it
``Workers(n=1)`` runs as before and ``n > 1`` says how to install it.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from roadmap.core.errors import ConfigError, ShardError

logger = logging.getLogger(__name__)

__all__ = ["Workers", "Shard", "ShardError", "ShardedJob", "run_shards", "fresh_shard", "finished_shard", "shard_ranges",
           "ray_installed", "start_ray"]

RAY_INSTALL = "pip install 'o1-roadmap[ray]' (or pip install 'ray==2.60.0')"


@dataclass(frozen=True)
class Shard:
    """One unit of work: ``key`` names it in errors and results, ``weight`` is its size on the bar."""

    key: Any
    payload: Any
    weight: int = 1


@dataclass(frozen=True)
class Workers:
    """Where shards run.

    Attributes:
        n: Ray actors to start (1 with no ``address``: this process, no Ray).
        address: a Ray cluster to join ("auto", "HOST:PORT" or "ray://HOST:PORT"); None: local.
        load: picklable zero-argument callable each actor calls once to build its resources
            (a dict, e.g. ``{"policy": ..., "scorer": ...}``); unused in this process.
        provides: the names of the resources ``load`` builds, so a driver knows e.g. that a scorer exists.
        threads: CPU threads per actor (torch intra-op).
        retries: times a shard whose worker died is given to a fresh worker before the run stops.
    """

    n: int = 1
    address: str | None = None
    load: Callable[[], dict[str, Any]] | None = field(default=None, compare=False)
    provides: tuple[str, ...] = ()
    threads: int = 1
    retries: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.n, int) or self.n < 1:
            raise ConfigError(f"--workers {self.n!r} must be an integer >= 1 (1 runs in this process)")
        if self.threads < 1 or self.retries < 0:
            raise ConfigError(f"threads={self.threads} must be >= 1 and retries={self.retries} >= 0")
        if self.remote:
            if self.load is None:
                raise ConfigError("Workers with n > 1 or an address need load=, the callable that builds each "
                                  "actor's models from their folders")
            if not ray_installed():
                raise ConfigError(f"--workers {self.n}{' --ray-address ' + self.address if self.address else ''} "
                                  f"needs Ray, which is not installed; install it with {RAY_INSTALL}, "
                                  "or run with --workers 1")

    @property
    def remote(self) -> bool:
        """Whether shards run on Ray actors."""
        return self.n > 1 or self.address is not None


def ray_installed() -> bool:
    """Whether ``import ray`` would work (without importing it)."""
    import importlib.util

    return importlib.util.find_spec("ray") is not None


def shard_ranges(n: int, size: int) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` cutting ``n`` problems into shards of ``size`` (the last may be shorter)."""
    if size < 1:
        raise ConfigError(f"shard_size={size} must be >= 1")
    return [(s, min(n, s + size)) for s in range(0, n, size)]


def finished_shard(path, wanted: dict[str, Any], overwrite: bool = False) -> dict[str, Any] | None:
    """The JSON shard at ``path`` when its ``provenance`` equals ``wanted`` (reuse it), else None (run it).

    A shard made with other settings raises ``StaleOutputError`` naming both, unless ``overwrite``
    lets it be redone. A shard that is not what was written (emptied, truncated, garbled: its seal,
    ``roadmap.core.integrity``, does not match) is named in a warning and run again, never dropped.
    Write shards with ``roadmap.core.integrity.write_sealed_json``.
    """
    from pathlib import Path

    from roadmap.core.errors import StaleOutputError
    from roadmap.core.integrity import read_sealed_json

    path = Path(path)
    if not path.exists():
        return None
    recorded, why = read_sealed_json(path)
    if recorded is None:
        logger.warning("%s %s; that shard is run again", path, why)
        return None
    if recorded.get("provenance") == wanted:
        return recorded
    if not overwrite:
        raise StaleOutputError.mismatch(str(path), recorded.get("provenance"), wanted)
    return None


def fresh_shard(resources: dict[str, Any]) -> None:
    """Forget what earlier shards left in the models (the policy's KV prefix cache), so that a
    shard's output and its counted usage depend on the shard alone, wherever it runs."""
    for value in resources.values():
        cache = getattr(value, "prefix_cache", None)
        if cache is not None and hasattr(cache, "clear"):
            cache.clear()


def run_shards(shards: Sequence[Shard], fn: Callable[[dict[str, Any], Any], Any], workers: Workers, *,
               local: dict[str, Any] | None = None, on_result: Callable[[Any, Any], None],
               desc: str = "shards", unit: str = "problem", progress: bool = True, initial: int = 0,
               total: int | None = None) -> int:
    """Run ``fn(resources, shard.payload)`` for every shard; call ``on_result(shard.key, result)`` here.

    ``fn`` must be a module-level function (it is pickled to the actors). In this process
    ``resources`` is ``local``; on an actor it is what ``workers.load()`` built there. ``initial``
    and ``total`` size the one progress bar (work already on disk counts as done). Returns the
    number of shards run. Raises ``ShardError`` for the first shard that failed, after the
    shards still running have finished and been passed to ``on_result``.
    """
    from tqdm.auto import tqdm

    total = total if total is not None else initial + sum(s.weight for s in shards)
    with tqdm(total=total, initial=initial, desc=desc, unit=unit, disable=not progress) as bar:
        if not workers.remote:
            resources = local or {}
            for shard in shards:
                fresh_shard(resources)
                try:
                    result = fn(resources, shard.payload)
                except Exception as e:  # keeps its type (callers catch ValueError ...); the note names the shard
                    if hasattr(e, "add_note"):
                        e.add_note(f"(in shard {shard.key}; the shards finished before it are kept)")
                    raise
                on_result(shard.key, result)
                bar.update(shard.weight)
            return len(shards)
        return _run_on_ray(shards, fn, workers, on_result, bar)


@dataclass(frozen=True)
class ShardedJob:
    """A resumable sharded phase over problems: each shard's result is a sealed JSON file ``folder/NNNNN.json``,
    ``{"provenance": ..., **result}``, written by the driver the moment the shard is done.

    A shard's provenance is ``base``, its index and first problem (``shard``, ``start``), ``extra(start)`` (e.g. its
    seed) and a fingerprint of its problems. A rerun reuses every shard on disk whose provenance matches
    (``finished_shard``), refuses one made with other settings (``StaleOutputError``) unless ``overwrite`` redoes it,
    and runs the rest. The caller declares only the shard function and its payload.

    Attributes:
        fn: module-level ``fn(resources, payload) -> dict`` (JSON-able), run by ``run_shards``.
        base: the provenance every shard shares (the settings, what identifies the models).
        folder: where finished shards go; None keeps them in memory (no resume).
        overwrite: redo shards whose provenance differs instead of refusing them.
        desc: the progress bar's label.
    """

    fn: Callable[[dict[str, Any], Any], dict[str, Any]]
    base: dict[str, Any]
    folder: Any = None
    overwrite: bool = False
    desc: str = "shards"

    def run(self, problems: Sequence[Any], size: int, payload: Callable[[int, list], Any], workers: Workers, *,
            local: dict[str, Any] | None = None, extra: Callable[[int], dict[str, Any]] | None = None,
            progress: bool = True, ran: list[int] | None = None) -> list[dict[str, Any]]:
        """Cut ``problems`` into shards of ``size``, reuse the finished ones, run the rest (``payload(start, part)``
        is what ``fn`` gets) and return every shard's row in order, in its JSON form: a resumed phase returns the
        bytes an uninterrupted one does. ``ran``, when given, receives the indices of the shards this call ran."""
        import json
        from pathlib import Path

        from roadmap.core.integrity import write_sealed_json
        from roadmap.core.io import json_fingerprint

        folder = Path(self.folder) if self.folder is not None else None
        rows: dict[int, dict[str, Any]] = {}
        wanted_of: dict[int, dict[str, Any]] = {}
        todo = []
        for s, (start, stop) in enumerate(shard_ranges(len(problems), size)):
            part = list(problems[start:stop])
            wanted_of[s] = {**self.base, "shard": s, "start": start, **(extra(start) if extra else {}),
                            "problems": json_fingerprint([(p.id, p.question, p.answer) for p in part])}
            recorded = finished_shard(folder / f"{s:05d}.json", wanted_of[s], self.overwrite) if folder else None
            if recorded is not None:
                rows[s] = recorded
            else:
                todo.append(Shard(s, payload(start, part), len(part)))
        if ran is not None:
            ran.extend(shard.key for shard in todo)

        def write(s: int, result: dict[str, Any]) -> None:
            rows[s] = json.loads(json.dumps({"provenance": wanted_of[s], **result}))
            if folder is not None:  # on one line: a search shard of 512 trees is megabytes
                write_sealed_json(folder / f"{s:05d}.json", rows[s], compact=True)

        run_shards(todo, self.fn, workers, local=local, on_result=write, desc=self.desc, progress=progress,
                   initial=len(problems) - sum(x.weight for x in todo), total=len(problems))
        return [rows[s] for s in sorted(rows)]


# ---------------------------------------------------------------------------------------------- Ray
def _check_address(address: str) -> None:
    """Fail fast (a TCP connect of a few seconds) on an address where no Ray head listens: ray.init
    itself waits minutes before it gives up."""
    if address == "auto":
        return
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--ray-address {address!r} is not HOST:PORT (or ray://HOST:PORT, or auto); give the "
                          "address `ray start --head` printed, e.g. 10.0.0.1:6379")
    try:
        with socket.create_connection((host, int(port)), timeout=5):
            pass
    except OSError as e:
        raise ConfigError(f"--ray-address {address!r} is unreachable ({e.strerror or e}); start the head node with "
                          f"`ray start --head --port {port}` there, check the host and port, or drop --ray-address "
                          "to start a local Ray") from None


def _init_ray(workers: Workers) -> bool:
    """Start (or join) Ray unless this process already runs it; return whether we started it."""
    return start_ray(workers.address, workers.n * workers.threads)


def start_ray(address: str | None, num_cpus: int) -> bool:
    """Join the Ray cluster at ``address`` (``--ray-address``), or start a local one of ``num_cpus`` CPUs,
    unless this process already runs Ray; return whether it was started here (the caller shuts it down)."""
    import ray

    if address is not None:
        _check_address(address)  # also when Ray runs already: the address given must be a real one
    if ray.is_initialized():
        return False
    if address is not None:
        try:
            ray.init(address=address, log_to_driver=False)
        except ConnectionError as e:
            raise ConfigError(f"--ray-address {address!r}: could not join the Ray cluster ({e}); start it "
                              "with `ray start --head`, or drop --ray-address") from None
    else:
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
    return True


def _actor_class():
    import ray

    class ShardWorker:
        """A Ray actor that loads its models once and runs shards one at a time."""

        def __init__(self, load, threads: int):
            os.environ["OMP_NUM_THREADS"] = str(threads)
            os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
            import torch

            torch.set_num_threads(threads)
            self.resources = load()

        def run(self, fn, payload):
            fresh_shard(self.resources)
            return fn(self.resources, payload)

    return ray.remote(ShardWorker)


def _run_on_ray(shards, fn, workers: Workers, on_result, bar) -> int:
    import ray
    from ray.exceptions import RayActorError, RayTaskError

    started = _init_ray(workers)
    try:
        gpus = ray.cluster_resources().get("GPU", 0)
        actor = _actor_class().options(num_cpus=workers.threads, num_gpus=1 if gpus >= workers.n else 0)
        load_ref, fn_ref = ray.put(workers.load), ray.put(fn)
        pending = list(shards)[::-1]  # popped from the end: in order
        retries = dict.fromkeys(range(len(shards)), workers.retries)
        index = {id(s): i for i, s in enumerate(shards)}
        actors = [actor.remote(load_ref, workers.threads) for _ in range(min(workers.n, len(shards)))]
        running: dict[Any, tuple[Any, Shard]] = {}
        failure: ShardError | None = None
        done = 0

        def submit(a) -> None:
            shard = pending.pop()
            running[a.run.remote(fn_ref, shard.payload)] = (a, shard)

        for a in actors:
            if pending:
                submit(a)
        while running:
            ready, _ = ray.wait(list(running), num_returns=1)
            ref = ready[0]
            a, shard = running.pop(ref)
            try:
                result = ray.get(ref)
            except RayTaskError as e:
                cause = e.cause if getattr(e, "cause", None) is not None else e
                failure = failure or ShardError(
                    f"shard {shard.key} failed on a worker: {type(cause).__name__}: {cause}; the shards finished "
                    "before it are kept, fix the cause and rerun to resume")
                continue
            except RayActorError as e:
                ray.kill(a, no_restart=True)
                if retries[index[id(shard)]] > 0 and failure is None:
                    retries[index[id(shard)]] -= 1
                    logger.warning("the worker running shard %s died (%s); giving it to a fresh worker", shard.key, e)
                    pending.append(shard)
                    a = actor.remote(load_ref, workers.threads)
                    actors.append(a)
                    submit(a)
                    continue
                failure = failure or ShardError(
                    f"shard {shard.key}: its worker died ({type(e).__name__}: killed, out of memory, or its node "
                    "was lost); the shards finished before it are kept, rerun to redo only the unfinished ones")
                continue
            on_result(shard.key, result)
            done += 1
            bar.update(shard.weight)
            if pending and failure is None:
                submit(a)
        for a in actors:
            ray.kill(a, no_restart=True)
        if failure is not None:
            raise failure
        return done
    finally:
        if started:
            ray.shutdown()
