"""Fault injection: kill `roadmap run` at random points, damage the newest file it wrote, resume; repeat.

Issue 26's goal: a run killed with SIGKILL at random points, with a truncated file left behind each time,
resumes every time to results identical to an uninterrupted run. Here a tiny recipe (a tiny random policy
on arith, two iterations of search -> learn -> eval, one problem per search shard) runs once untouched, then
again under attack, in fresh run folders of ``--per-run`` kills each: each start of `roadmap run`
(``roadmap.app.cli.main(["run", ...])`` in a forked process, so that no start pays the interpreter's import
time again) is killed with SIGKILL after a random delay (uniform over the uninterrupted run's time), and the
newest non-hidden file under the run folder is truncated to a random fraction of its length (emptied a
quarter of the time). A last start of each folder runs to the end, and its results are compared: every iteration's
metrics (accuracy, search accuracy, tokens; not the wall times), every held-out record, and the sha256
of each file of the final policy (weights, config, tokenizer).

Hidden files are the library's bookkeeping (the run lock, the output markers, temporaries); a damaged
output marker is refused rather than repaired (the library never deletes what it cannot show it wrote), so
they are left out of the damage here.

    OMP_NUM_THREADS=1 python benchmarks/fault_injection.py --kills 20 [--seed 0] [--work DIR]

prints one row per kill (when, the file truncated, its size before and after, what the next start said about it)
and the comparison; exits 1 when a resume fails or the results differ.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: a run of a few seconds with every phase of the verifier-guided loop, twice
RECIPE = {
    "task": "arith",
    "iterations": 2,
    "train_problems": 3,
    "search": {"method": "bon", "budget": 2, "shard_size": 1},
    "learn": {"algorithm": "expert_iteration", "reference_mix": 8, "epochs": 2, "batch_size": 4},
    "eval_problems": 4,
    "batch_size": 16,
    "lengths": {"max_solution_tokens": 24},
}


def tiny_policy(folder: Path) -> Path:
    """A tiny random Llama with a char tokenizer for arith (as tests/conftest.py's ``tiny_dir``)."""
    from policy_init.tiny import TinyConfig, create_tiny
    from roadmap.core.tasks import get_task

    if not (folder / "config.json").exists():
        create_tiny(get_task("arith"), folder, TinyConfig(hidden_size=64, num_layers=2, num_heads=4,
                                                          intermediate_size=128, seed=0))
    return folder


def _fresh_tqdm_lock() -> None:
    """Give a forked child tqdm write locks of its own. A fork copies the parent's locks as they are, and tqdm's
    lock includes a multiprocessing lock shared with every forked process: a child SIGKILLed while drawing a bar
    leaves it taken, and the next bar of the parent (or of the next child) waits forever (seen in CI: a pytest
    worker hung in a later test's progress bar). Each tqdm class that holds a lock of its own (``get_lock`` sets
    it on the class it is called on, e.g. ``tqdm.auto``'s) gets the fresh one too."""
    import threading

    from tqdm import std

    std.TqdmDefaultWriteLock.th_lock = threading.RLock()
    std.TqdmDefaultWriteLock.mp_lock = multiprocessing.get_context("fork").RLock()
    fresh = std.TqdmDefaultWriteLock()
    todo = [std.tqdm]
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls is std.tqdm or "_lock" in vars(cls):
            cls._lock = fresh


def _child(argv: list[str], log: str) -> None:
    _fresh_tqdm_lock()
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    from roadmap.app.cli import main

    os._exit(main(argv))


def _preload() -> None:
    """Import here what every start imports, so that a forked start's time is the run's own and the kill
    delays, drawn over the uninterrupted run's time, land all over the run."""
    from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: F401

    import learning.expert_iteration  # noqa: F401
    import rewards  # noqa: F401
    import roadmap.app.cli  # noqa: F401
    import roadmap.app.loop  # noqa: F401
    import roadmap.app.train_search  # noqa: F401


def start(recipe: Path, run: Path, policy: Path, log: Path):
    """`roadmap run RECIPE --out RUN --policy POLICY` in a forked process (stdout and stderr to ``log``)."""
    ctx = multiprocessing.get_context("fork")
    proc = ctx.Process(target=_child, args=(["run", str(recipe), "--out", str(run), "--policy", str(policy)],
                                            str(log)))
    proc.start()
    return proc


def newest_file(run: Path) -> Path | None:
    """The file under ``run`` written last, leaving out hidden files (lock, markers, temporaries) and the
    files inside hidden folders (a staged output that is not in place yet)."""
    files = [p for p in run.rglob("*") if p.is_file()
             and not any(part.startswith(".") for part in p.relative_to(run).parts)]
    return max(files, key=lambda p: p.stat().st_mtime_ns, default=None)


def truncate(path: Path, rng: random.Random) -> tuple[int, int]:
    """Cut ``path`` to a random fraction of its length (a quarter of the time, to nothing)."""
    size = path.stat().st_size
    keep = 0 if rng.random() < 0.25 else int(size * rng.random())
    with path.open("r+b") as f:
        f.truncate(keep)
    return size, keep


def results(run: Path) -> dict:
    """What a finished run decided, without wall times: the per-iteration metrics, the held-out records and
    the sha256 of each file of the final policy (weights, config, tokenizer)."""
    from roadmap.core.integrity import digest

    metrics = json.loads((run / "metrics.json").read_text())
    timing = ("phase_seconds", "wall_seconds", "searched_now")
    rows = [{k: v for k, v in r.items() if k not in timing} for r in metrics["iterations"]]
    k = rows[-1]["iteration"]
    records = [json.loads((run / f"iter_{i}" / "eval.json").read_text())["records"] for i in range(k + 1)]
    weights = {p.name: digest(p)["sha256"] for p in sorted((run / f"iter_{k}" / "policy").iterdir())
               if not p.name.startswith(".") and not p.name.endswith("_result.json")}  # results hold wall times
    return {"iterations": rows, "records": records, "policy": weights}


def _said(log: Path, since: int) -> str:
    """The warnings and errors a start wrote to its log (from byte ``since``), in one line."""
    text = log.read_bytes()[since:].decode("utf-8", "replace")
    lines = [x.strip() for x in text.splitlines() if x.startswith(("WARNING", "roadmap run: error"))
             or "Traceback" in x]
    return " | ".join(lines)[:300]


def attack(recipe: Path, run: Path, policy: Path, log: Path, kills: int, seconds: float, rng: random.Random,
           say=print) -> tuple[list[dict], dict]:
    """``kills`` starts of the run in ``run``, each killed after a random delay in [0, ``seconds``) with the newest
    file then truncated, and a last start to the end: the kill rows and the last start's exit code."""
    rows: list[dict] = []

    def said(since: int) -> None:  # what a start said about the damage the previous kill left
        if rows:
            rows[-1]["next_start_said"] = _said(log, since)
            say(" ".join(f"{k}={v}" for k, v in rows[-1].items()))

    for _ in range(kills):
        since = log.stat().st_size
        delay = rng.uniform(0.0, seconds)
        proc = start(recipe, run, policy, log)
        proc.join(timeout=delay)
        finished = not proc.is_alive()
        if not finished:
            os.kill(proc.pid, signal.SIGKILL)
            proc.join()
        said(since)
        target = newest_file(run) if run.exists() else None
        before, after = truncate(target, rng) if target is not None else (0, 0)
        rows.append({"run": run.name, "at_s": round(delay, 2), "exit": "done" if finished else "SIGKILL",
                     "truncated": str(target.relative_to(run)) if target else "-", "bytes": f"{before}->{after}"})
    since = log.stat().st_size
    proc = start(recipe, run, policy, log)
    proc.join()
    said(since)
    return rows, {"code": proc.exitcode, "said": _said(log, since)}


def inject(kills: int, work: Path, seed: int = 0, per_run: int = 2, say=print, policy: Path | None = None) -> dict:
    """The uninterrupted run, then runs of ``per_run`` killed-and-damaged starts and a last one each, ``kills``
    kills in all; each such run's results are compared with the uninterrupted run's."""
    import yaml

    work.mkdir(parents=True, exist_ok=True)
    policy = policy or tiny_policy(work / "policy")
    _preload()
    recipe = work / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(RECIPE))
    log = work / "log.txt"
    log.touch()
    t0 = time.perf_counter()
    proc = start(recipe, work / "clean", policy, log)
    proc.join()
    clean_seconds = time.perf_counter() - t0
    if proc.exitcode != 0:
        raise RuntimeError(f"the uninterrupted run failed:\n{log.read_text()[-3000:]}")
    want = results(work / "clean")
    rng = random.Random(seed)
    rows, runs = [], []
    for r in range(0, kills, per_run):
        run = work / f"attacked_{r // per_run + 1}"
        kill_rows, final = attack(recipe, run, policy, log, min(per_run, kills - r), clean_seconds, rng, say)
        identical = final["code"] == 0 and results(run) == want
        runs.append({"run": run.name, "kills": len(kill_rows), "last_exit": final["code"], "identical": identical})
        rows += kill_rows
        say(f"{run.name}: last start exit {final['code']}, identical to the uninterrupted run: {identical}")
    return {"kills": rows, "runs": runs, "identical": all(x["identical"] for x in runs), "clean_seconds": clean_seconds}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per-run", type=int, default=2, help="kills before a run is let finish")
    parser.add_argument("--work", default=None, help="scratch folder (default: a new temporary one)")
    parser.add_argument("--record", default=None, help="also write the tables here (benchmarks/results/"
                        "fault_injection.md, which docs/bad_inputs.md includes when it is regenerated)")
    args = parser.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.path.insert(0, str(ROOT))
    work = Path(args.work or tempfile.mkdtemp(prefix="fault_injection-"))
    t0 = time.perf_counter()
    out = inject(args.kills, work, args.seed, args.per_run, say=lambda line: print(line, flush=True))
    from roadmap.core.io import format_table

    for row in out["kills"]:
        row["next_start_said"] = row["next_start_said"].replace(str(work), "<work>").replace("|", "/")
    text = (format_table(out["kills"], ["run", "at_s", "exit", "truncated", "bytes", "next_start_said"], markdown=True)
            + "\n\n" + format_table(out["runs"], ["run", "kills", "last_exit", "identical"], markdown=True)
            + f"\n\n`python benchmarks/fault_injection.py --kills {args.kills} --seed {args.seed} --per-run "
            f"{args.per_run}`: uninterrupted run {out['clean_seconds']:.1f} s; {len(out['kills'])} kills in "
            f"{len(out['runs'])} run folders; every folder's results identical to the uninterrupted run's: "
            f"{out['identical']}; {time.perf_counter() - t0:.0f} s in all.\n")
    print(text)
    if args.record:
        Path(args.record).write_text(text)
    return 0 if out["identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
