"""``roadmap quickstart``: a tiny policy from scratch, SFT warm-start on arith, evaluation, then one
iteration of search-and-learn (MCTS, expert iteration on the verified solutions, evaluation).

Every budget is work, not time: the warm start runs ``sft_steps`` optimizer steps (one pass over
``sft_steps x 64`` fresh problems), the search a fixed number of MCTS simulations per problem, so
the result is the same on a fast machine and on a slow one; only the wall time differs, and it is
estimated after a short measured warm-up and reported. A wall-time cap (``minutes``) is an explicit
option; a warm start it cuts short is reported as such and never cached.

The trained policy is cached in the user cache folder (``$O1_ROADMAP_CACHE``, else
``$XDG_CACHE_HOME/o1-roadmap``, else ``~/.cache/o1-roadmap``), keyed by its recipe, so a second
run reuses it; the report, JSON and plots go to ``--out``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from roadmap.core.errors import ConfigError

__all__ = ["QuickstartConfig", "run_quickstart", "cache_dir"]


def cache_dir() -> Path:
    """The user cache folder where trained policies are kept (never inside the repository)."""
    root = os.environ.get("O1_ROADMAP_CACHE")
    if root:
        return Path(root)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "o1-roadmap"


@dataclass
class QuickstartConfig:
    """What the quickstart does; the defaults are the recipe whose figures docs/benchmarks/sft.md reports.

    The search-and-learn iteration is the expert-iteration recipe that gains in docs/benchmarks/learning.md,
    scaled down: many problems, a cheap search (2 MCTS simulations of 4 children, leaves valued
    by verified rollouts) at temperature 0.3, the best verified solution per problem, a learning
    rate small enough for an already fine-tuned policy.
    """

    out: str = "quickstart"
    sft_steps: int = field(default=1500, metadata={"help": "Warm-start optimizer steps (64 fresh problems each)."})
    minutes: float | None = field(default=None, metadata={
        "help": "Optional wall-time cap of the warm start; a run it cuts short is reported and not cached."})
    retrain: bool = field(default=False, metadata={"help": "Ignore the cached warm-started policy."})
    n_eval: int = field(default=500, metadata={"help": "Held-out problems to evaluate."})
    majority_samples: int = field(default=8, metadata={"help": "Samples per problem of the majority-vote evaluation."})
    n_majority: int = field(default=200, metadata={"help": "Held-out problems of the majority-vote evaluation."})
    seed: int = field(default=0, metadata={"help": "Seed of the tiny model's initialisation and of the problems."})
    loop_problems: int = field(default=2048, metadata={"help": "Training problems searched (0: no loop)."})
    loop_budget: int = field(default=2, metadata={"help": "MCTS simulations per problem."})
    loop_temperature: float = field(default=0.3, metadata={"help": "Sampling temperature of the search."})
    loop_learning_rate: float = field(default=3e-5, metadata={"help": "Peak learning rate of the update."})
    loop_epochs: float = field(default=2.0, metadata={"help": "Passes over the verified solutions."})
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("sft_steps", "n_eval", "majority_samples", "n_majority", "loop_budget"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}={getattr(self, name)} must be at least 1")
        if self.loop_problems < 0:
            raise ConfigError(f"loop_problems={self.loop_problems} must be 0 (no loop) or more")
        if self.minutes is not None and self.minutes <= 0:
            raise ConfigError(f"minutes={self.minutes} must be positive, or None for no cap")


class _Say(logging.Handler):
    """Shows the trainer's wall-time estimate and budget warnings to the quickstart's user."""

    def __init__(self, say: Callable[[str], None]) -> None:
        super().__init__(logging.INFO)
        self.say = say

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if record.levelno >= logging.WARNING or msg.startswith("about "):
            self.say(f"      {msg}")


def _plot_losses(losses: list[float], logging_steps: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot([logging_steps * (i + 1) for i in range(len(losses))], losses, marker=".")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("SFT loss (completion tokens)")
    ax.set_title("SFT warm-start on arith")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _cached_result(policy_dir: Path) -> dict | None:
    """The SFT result of a cached policy that finished its recipe, or None (absent, unfinished or unreadable)."""
    try:
        result = json.loads((policy_dir / "sft_result.json").read_text())
    except (OSError, ValueError):
        return None
    return result if result.get("completed") and (policy_dir / "config.json").exists() else None


#: what ``run_quickstart`` writes into its folder
QUICKSTART_FILES = ("loop", "policy-incomplete", "sft_loss.png", "summary.json", "eval_greedy.json")


def legacy_quickstart_dir(folder: Path) -> bool:
    """Whether ``folder`` (with no marker) is a quickstart folder from before markers: its summary.json or
    loss plot, nothing but its own files, and a loop/ (which it deletes on a retrain) that is a run folder."""
    from roadmap.app.loop import legacy_run_dir
    from roadmap.core.outputs import holds_only, read_marker

    loop = folder / "loop"
    loop_ok = not loop.exists() or (loop.is_dir() and ((read_marker(loop) or {}).get("kind") == "run"
                                                       or legacy_run_dir(loop)))
    return (loop_ok and any((folder / n).is_file() for n in ("summary.json", "sft_loss.png"))
            and holds_only(folder, QUICKSTART_FILES))


def run_quickstart(config: QuickstartConfig | None = None, say: Callable[[str], None] = print) -> dict:
    """Build, warm-start and evaluate the tiny arith policy, then one search-and-learn iteration.

    Returns the summary it writes to ``out/summary.json``.
    """
    from policy_init.sft import SFTWarmStartConfig, warm_start
    from policy_init.tiny import TinyConfig, create_tiny
    from roadmap.app.evaluate import evaluate
    from roadmap.core import HFPolicy
    from roadmap.core.io import format_table, write_json
    from roadmap.core.outputs import claim_output_dir
    from roadmap.core.tasks import ArithTask

    config = config or QuickstartConfig()
    out = claim_output_dir(config.out, "quickstart", legacy=legacy_quickstart_dir)  # it deletes its own loop/ below
    t_start = time.perf_counter()
    task = ArithTask()
    tiny = TinyConfig(seed=config.seed)
    sft = SFTWarmStartConfig(num_problems=config.sft_steps * 64, batch_size=64, epochs=1.0,
                             seed=config.seed)
    # the key names the recipe's work; a wall-time cap is not part of it (a capped run is never cached)
    recipe = {"task": asdict(task.config), "tiny": asdict(tiny), "sft": asdict(sft)}
    key = hashlib.sha1(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]
    home = cache_dir() / f"quickstart-{key}"
    policy_dir = home / "policy"
    sft_result = _cached_result(policy_dir)

    if sft_result is not None and not config.retrain:
        say(f"[1/4] reusing the warm-started policy cached at {policy_dir} (pass --retrain to train again)")
    else:
        say(f"[1/4] building a tiny Llama and a char tokenizer for arith in {home / 'tiny'}")
        create_tiny(task, home / "tiny", tiny, overwrite=True)
        cap = f", capped at {config.minutes:g} minutes" if config.minutes else ""
        say(f"[2/4] SFT warm-start: {config.sft_steps} steps over {sft.num_problems:,} arith problems{cap}")
        sft.output_dir = str(policy_dir)
        sft.max_minutes = config.minutes
        sft.overwrite = True
        # the trainer's estimate ("about N minutes on this machine") and budget warnings, shown once
        train_log = logging.getLogger("roadmap.core.training")
        handler, level, propagate = _Say(say), train_log.level, train_log.propagate
        train_log.addHandler(handler)
        train_log.setLevel(logging.INFO)
        train_log.propagate = False
        try:
            sft_result = warm_start(home / "tiny", task, sft).to_dict()
        finally:
            train_log.removeHandler(handler)
            train_log.setLevel(level)
            train_log.propagate = propagate
        shutil.rmtree(out / "loop", ignore_errors=True)  # its results belong to the old policy
        if not sft_result["completed"]:
            # never cache a policy whose recipe did not finish: move it out of the cache, next to the report
            cut = out / "policy-incomplete"
            shutil.rmtree(cut, ignore_errors=True)
            shutil.move(str(policy_dir), cut)
            policy_dir = cut
            say(f"WARNING: the warm start stopped at step {sft_result['steps']} of {sft_result['max_steps']} "
                f"({sft_result['stopped_by']}); its policy is in {cut}, NOT cached, and the figures below are not "
                "the recipe's. Run without --minutes for the recipe's result.")
    _plot_losses(sft_result["losses"], sft.logging_steps, out / "sft_loss.png")

    say(f"[3/4] evaluating on {config.n_eval} held-out problems")
    policy = HFPolicy.from_pretrained(policy_dir)
    problems = task.problems("test", n=config.n_eval, seed=config.seed)
    greedy = evaluate(policy, task, problems, method="greedy", seed=config.seed)
    majority = evaluate(
        policy, task, problems[: config.n_majority], method="majority", samples=config.majority_samples,
        seed=config.seed,
    )
    rows = [greedy.to_dict(with_records=False), majority.to_dict(with_records=False)]
    loop = None
    if config.loop_problems:
        from roadmap.app.loop import LoopConfig, run_loop

        say(f"[4/4] one iteration of search-and-learn: MCTS ({config.loop_budget} simulations, temperature "
            f"{config.loop_temperature:g}) on {config.loop_problems} training problems, expert iteration on the "
            "best verified solution of each, evaluation")
        loop_config = LoopConfig(
            policy=str(policy_dir), iterations=1, train_problems=config.loop_problems,
            search={"method": "mcts", "budget": config.loop_budget, "width": 4, "mcts_evaluation": "rollout",
                    "temperature": config.loop_temperature, "shard_size": 256},
            learn={"algorithm": "expert_iteration", "solutions_per_problem": 1, "epochs": config.loop_epochs,
                   "learning_rate": config.loop_learning_rate},
            eval_problems=config.n_eval, seed=config.seed,
        )
        loop = run_loop(loop_config, out / "loop", say=lambda s: None)["iterations"]
    summary = {
        "policy": str(policy_dir),
        "sft": {k: v for k, v in sft_result.items() if k != "losses"},
        "eval": rows,
        "loop": loop,
        "wall_seconds": time.perf_counter() - t_start,
    }
    write_json(out / "summary.json", summary)
    write_json(out / "eval_greedy.json", greedy.to_dict())
    table = format_table(rows, ["method", "samples", "n", "accuracy", "ci95", "generated_tokens", "wall_seconds"])
    say("")
    say(table)
    losses = sft_result["losses"]
    trend = f", loss {losses[0]:.3f} -> {losses[-1]:.3f}" if losses else ""
    say(f"\nSFT: {sft_result['steps']} steps, {sft_result['tokens_per_second']:.0f} training tokens/s{trend}")
    if loop:
        before, after = loop[0], loop[-1]
        say(f"Search-and-learn, one iteration: greedy {before['accuracy']:.3f} -> {after['accuracy']:.3f} "
            f"(report: {out / 'loop' / 'report.md'})")
    say(f"\nWhat to look at next:\n"
        f"  {out / 'sft_loss.png'}        the warm-start's loss curve\n"
        f"  {out / 'eval_greedy.json'}    every held-out problem with the policy's solution\n"
        f"  roadmap eval --policy {policy_dir} --method majority --samples 16\n"
        f"                                 more samples per problem: does voting beat greedy?\n"
        f"  roadmap run recipes/expert_iteration_mcts.yaml --policy {policy_dir} --out runs/ei\n"
        f"                                 three iterations of search-and-learn (resumable)")
    return summary
