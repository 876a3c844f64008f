"""The loop's learn phase as an ``accelerate launch`` subprocess (recipe keys ``accelerate_config``, ``num_processes``).

A recipe that names an accelerate config file runs each iteration's learn phase (expert-iteration SFT,
tree-DPO, GRPO: whatever ``learn.algorithm`` names) as::

    python -m accelerate.commands.launch --config_file PATH [--num_processes N] -m roadmap.app.learn_launch iter_k/learn_job.json

so that DDP, FSDP or DeepSpeed ZeRO (``recipes/accelerate/``) train it over several devices or nodes while
the loop's own process keeps the search, labelling and evaluation. The parent (``launch_learn``) writes the
phase's inputs to ``iter_k/learn_job.json`` (the recipe, the run folder and the iteration: every rank rebuilds
the learner's inputs from them exactly as the loop would, ``roadmap.app.loop.learn_here``), keeps the
subprocess's output in ``iter_k/learn.log``, waits, and checks the return code. The main rank writes the
policy to ``iter_k/policy`` (the trainers' rank guards, ``roadmap.core.training``) and the phase's metrics to
``iter_k/learn_result.json`` with the fingerprint of its job; the parent returns them and the loop writes the
phase marker as for an in-process learn phase.

Resume: a run killed during the learn phase redoes that phase only (its marker is missing); a run killed
after the subprocess finished but before the marker was written takes the result whose job fingerprint
matches and whose policy folder is complete, without training again. Each rank watches the loop's process
and exits when it is gone, so a SIGKILLed loop leaves no orphan training beside the next run.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from roadmap.core.errors import LearnLaunchError
from roadmap.core.io import json_fingerprint, write_json

logger = logging.getLogger(__name__)

__all__ = ["LearnLaunchError", "launch_command", "launch_learn", "main"]

JOB_NAME, RESULT_NAME, LOG_NAME = "learn_job.json", "learn_result.json", "learn.log"


def launch_command(config_file: str | Path, num_processes: int, job: str | Path) -> list[str]:
    """The command line of one learn phase: ``accelerate launch`` of ``roadmap.app.learn_launch`` on ``job``.

    ``num_processes`` 0 keeps the config file's own count.
    """
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(Path(config_file).resolve())]
    if num_processes:
        cmd += ["--num_processes", str(num_processes)]
    return cmd + ["-m", "roadmap.app.learn_launch", str(Path(job).resolve())]


def _env() -> dict[str, str]:
    """This process's environment, with the folder holding this package first on PYTHONPATH so every rank
    imports the same code (a source checkout, a worktree) as the loop."""
    root = str(Path(__file__).resolve().parents[1])
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([root, path]) if path else root}


def _finished_result(here: Path, fingerprint: str) -> dict[str, Any] | None:
    """The metrics of a learn subprocess that finished with this job, when its policy folder is complete."""
    from roadmap.core.outputs import read_marker

    path = here / RESULT_NAME
    if not path.exists():
        return None
    try:
        recorded = json.loads(path.read_text())
    except json.JSONDecodeError:
        return None
    marker = read_marker(here / "policy")
    if recorded.get("job") != fingerprint or not (marker and marker.get("completed", True)):
        return None
    return recorded["metrics"]


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def launch_learn(config, run_dir: str | Path, k: int, say: Callable[[str], None] = logger.info) -> dict[str, Any]:
    """Run iteration ``k``'s learn phase of ``config`` (a ``LoopConfig`` with ``accelerate_config``) as an
    ``accelerate launch`` subprocess; return its metrics (what the in-process learn phase returns).

    Raises ``LearnLaunchError`` naming the config file, the exit code and ``iter_k/learn.log`` when the
    subprocess fails or writes no result; the policy of the last iteration is untouched then.
    """
    import subprocess

    run_dir = Path(run_dir).resolve()
    here = run_dir / f"iter_{k}"
    here.mkdir(parents=True, exist_ok=True)
    job = {"run_dir": str(run_dir), "iteration": k, "recipe": asdict(config)}
    fingerprint = json_fingerprint(job)
    done = _finished_result(here, fingerprint)
    if done is not None:
        say(f"iteration {k}: learn phase finished before the last stop; its result is taken as is")
        return done
    (here / RESULT_NAME).unlink(missing_ok=True)  # a stale or torn result never passes for this run's
    write_json(here / JOB_NAME, {**job, "fingerprint": fingerprint, "loop_pid": os.getpid()})
    cmd = launch_command(config.accelerate_config, config.num_processes, here / JOB_NAME)
    log = here / LOG_NAME
    say(f"iteration {k}: learn phase under accelerate launch ({config.accelerate_config}); log {log}")
    t0 = time.perf_counter()
    with log.open("w") as f:
        f.write("$ " + " ".join(cmd) + "\n")
        f.flush()
        code = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=_env(), cwd=os.getcwd()).returncode
    logger.info("learn subprocess of iteration %d: exit %d after %.1f s", k, code, time.perf_counter() - t0)
    where = f"accelerate_config={config.accelerate_config}" + (f", num_processes={config.num_processes}"
                                                               if config.num_processes else "")
    if code != 0:
        raise LearnLaunchError(
            f"the learn phase of iteration {k} under `accelerate launch` ({where}) exited with code {code}; its "
            f"log is {log}, ending:\n{_tail(log)}\nFix the cause (or the config file) and rerun the recipe on "
            "this run folder: it redoes this learn phase only")
    done = _finished_result(here, fingerprint)
    if done is None:
        raise LearnLaunchError(
            f"the learn phase of iteration {k} under `accelerate launch` ({where}) exited with code 0 but wrote no "
            f"result ({here / RESULT_NAME}) or no complete policy ({here / 'policy'}); see {log}")
    return done


# ---------------------------------------------------------------------------------------------- each rank
def _watch(pid: int, every: float = 1.0) -> None:
    """Exit this rank when the loop's process ``pid`` is gone (SIGKILLed, say): no orphan trains on."""

    def loop() -> None:
        while True:
            time.sleep(every)
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                os._exit(1)
            except PermissionError:  # alive, under another user (a reused pid would be gone already)
                pass

    threading.Thread(target=loop, name="watch-loop", daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    """One rank of the learn subprocess: rebuild iteration k's learn inputs from the job file, learn, and (on
    the main rank) write the metrics with the job's fingerprint."""
    from roadmap.app.loop import learn_here
    from roadmap.app.loop_config import LoopConfig
    from roadmap.app.plugins import load_plugins

    load_plugins()  # a plugin's learner or task, as in the loop's process
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        raise SystemExit("usage: python -m roadmap.app.learn_launch iter_k/learn_job.json (written by the loop)")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s [rank " + os.environ.get("RANK", "0")
                        + "] %(levelname)s %(message)s")
    job = json.loads(Path(args[0]).read_text())
    if job.get("loop_pid"):
        _watch(int(job["loop_pid"]))
    config = LoopConfig(**{**job["recipe"], "accelerate_config": "", "num_processes": 0})  # this rank learns itself
    metrics = learn_here(config, Path(job["run_dir"]), int(job["iteration"]))
    write_json(Path(job["run_dir"]) / f"iter_{job['iteration']}" / RESULT_NAME,
               {"job": job["fingerprint"], "metrics": metrics})  # the main rank only
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
