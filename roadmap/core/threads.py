"""CPU threads from the cores this process may actually use, and a passive OpenMP wait policy.

torch starts one intra-op thread per core of the machine and OpenMP threads spin while they
wait for work. When another busy process shares the cores, spinning threads steal the time the
working thread needs and an eval slows down ~50x (issue 18: 70 s instead of 1.2 s).
``configure_threads`` (called first by ``roadmap.app.cli.main``) sets ``OMP_WAIT_POLICY=PASSIVE`` so
waiting threads sleep, and sizes the thread pool from the process's CPU affinity
(``os.sched_getaffinity``: what taskset, cgroups cpusets or a job scheduler left it), unless the
user chose a thread count. Imports no torch: the environment must be set before torch loads.
"""

from __future__ import annotations

import os
import sys

__all__ = ["available_cores", "configure_threads"]

#: environment variables by which a user chooses the thread count; any of them set wins
USER_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # no sched_getaffinity (macOS, Windows)
        return max(1, os.cpu_count() or 1)


def configure_threads(environ: dict[str, str] | None = None) -> int | None:
    """Set a passive OpenMP wait policy and the intra-op thread count; return the count set.

    Returns None (and changes no count) when the user set one of ``USER_THREAD_VARS``. Call it
    before torch is imported; if torch is already loaded its pool is resized with
    ``torch.set_num_threads``. ``environ`` defaults to ``os.environ``.
    """
    env = os.environ if environ is None else environ
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if any(env.get(var) for var in USER_THREAD_VARS):
        return None
    n = available_cores()
    env["OMP_NUM_THREADS"] = str(n)
    if environ is None and "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)
    return n
