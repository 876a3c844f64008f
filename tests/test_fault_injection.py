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


def _bar_in_child(reset: bool) -> None:
    import os

    from tqdm import tqdm

    if reset:
        from fault_injection import _fresh_tqdm_lock

        _fresh_tqdm_lock()
    with tqdm(total=1, disable=False, file=open(os.devnull, "w")) as bar:
        bar.update()
    os._exit(0)


def test_a_forked_start_draws_its_bars_though_a_parent_thread_held_the_tqdm_lock():
    """The hang seen in CI: a thread of the parent holds tqdm's write lock at the fork, so the child's first bar
    waits forever on its copy. The child's fresh lock draws at once; without it the child is still stuck."""
    import multiprocessing
    import threading

    from tqdm import tqdm

    held, done = threading.Event(), threading.Event()

    def hold():
        with tqdm.get_lock():
            held.set()
            done.wait(30)

    t = threading.Thread(target=hold)
    t.start()
    held.wait(10)
    ctx = multiprocessing.get_context("fork")
    try:
        fixed, stuck = ctx.Process(target=_bar_in_child, args=(True,)), ctx.Process(target=_bar_in_child, args=(False,))
        fixed.start()
        stuck.start()
        fixed.join(20)
        stuck.join(2)
        assert fixed.exitcode == 0
        assert stuck.exitcode is None  # the copied, held lock: the bar never draws
    finally:
        done.set()
        t.join()
        for proc in (fixed, stuck):
            if proc.is_alive():
                proc.kill()
                proc.join()
