"""`roadmap run` killed with SIGKILL at random points, the newest file it wrote truncated each time, resumes to
the results of an uninterrupted run (issue 26's fault-injection goal; benchmarks/fault_injection.py runs the
20-kill version, this is the CI-sized one)."""

from __future__ import annotations

import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from fault_injection import inject, newest_file, truncate  # noqa: E402


def test_newest_file_skips_hidden_bookkeeping_and_truncate_cuts(tmp_path):
    (tmp_path / "iter_1").mkdir()
    (tmp_path / "iter_1" / "eval.json").write_text("x" * 100)
    (tmp_path / ".o1-roadmap.lock").write_text("{}")
    (tmp_path / "iter_1" / ".policy.tmp-1-abcd0123").mkdir()
    (tmp_path / "iter_1" / ".policy.tmp-1-abcd0123" / "model.safetensors").write_text("w")
    assert newest_file(tmp_path) == tmp_path / "iter_1" / "eval.json"
    before, after = truncate(tmp_path / "iter_1" / "eval.json", random.Random(3))
    assert before == 100 and after < 100 and (tmp_path / "iter_1" / "eval.json").stat().st_size == after


def test_two_kills_with_a_truncated_file_each_resume_to_the_uninterrupted_results(tiny_dir, tmp_path):
    out = inject(kills=2, work=tmp_path, seed=1, per_run=2, say=lambda _: None, policy=tiny_dir)
    assert out["kills"][0]["exit"] == "SIGKILL", out["kills"]  # seed 1 draws an early first kill
    assert all(k["truncated"] != "-" for k in out["kills"]), out["kills"]
    assert out["runs"] == [{"run": "attacked_1", "kills": 2, "last_exit": 0, "identical": True}], out


def _killed_holding_the_lock(ready) -> None:
    import time

    from fault_injection import _fresh_tqdm_lock
    from tqdm.auto import tqdm

    _fresh_tqdm_lock()  # what the benchmark's forked start does first
    tqdm.get_lock().acquire()  # what a bar does while it draws
    ready.set()
    time.sleep(60)  # SIGKILLed here, as the benchmark kills a start


def test_a_start_killed_while_drawing_a_bar_leaves_the_parents_bars_free():
    """The hang seen in CI: a forked start SIGKILLed while it held tqdm's lock, whose multiprocessing half is shared
    across forks, left it taken, and the pytest worker's next progress bar waited forever. With the child's own
    locks the parent's stays free. (Without them this test fails, and it then gives this process fresh locks, so
    that the rest of the suite does not hang on the one the child took.)"""
    import multiprocessing
    import os
    import signal

    from fault_injection import _fresh_tqdm_lock
    from tqdm import std
    from tqdm.auto import tqdm

    tqdm.get_lock()  # the parent made a bar before forking (the subclass now holds its own lock)
    ctx = multiprocessing.get_context("fork")
    ready = ctx.Event()
    proc = ctx.Process(target=_killed_holding_the_lock, args=(ready,))
    proc.start()
    assert ready.wait(20)
    os.kill(proc.pid, signal.SIGKILL)
    proc.join()
    mp_lock = std.TqdmDefaultWriteLock.mp_lock
    free = mp_lock.acquire(timeout=2)
    if free:
        mp_lock.release()
    else:
        _fresh_tqdm_lock()
    assert free
