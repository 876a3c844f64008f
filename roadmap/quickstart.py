"""``roadmap quickstart``: a tiny policy from scratch, SFT warm-start on arith, evaluation, then one
iteration of search-and-learn (MCTS, expert iteration on the verified solutions, evaluation).

Runs on a 2-core CPU in about a quarter of an hour. The trained policy is cached in the
user cache folder (``$O1_ROADMAP_CACHE``, else ``$XDG_CACHE_HOME/o1-roadmap``, else
``~/.cache/o1-roadmap``), keyed by its recipe, so a second run reuses it; the report, JSON
and plots go to ``--out``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = ["QuickstartConfig", "run_quickstart", "cache_dir"]

#: SFT wall-time budget of the quickstart's warm start, in minutes
DEFAULT_SFT_MINUTES = 11.0


def cache_dir() -> Path:
    """The user cache folder where trained policies are kept (never inside the repository)."""
    root = os.environ.get("O1_ROADMAP_CACHE")
    if root:
        return Path(root)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "o1-roadmap"


@dataclass
class QuickstartConfig:
    """What the quickstart does; the defaults are the recipe whose figures BENCHMARKS.md reports."""

    out: str = "quickstart"
    minutes: float | None = None
    retrain: bool = False
    n_eval: int = 500
    majority_samples: int = 8
    n_majority: int = 200
    seed: int = 0
    sft_problems: int = 150_000
    loop_problems: int = 128
    loop_budget: int = 4
    extra: dict = field(default_factory=dict)


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


def run_quickstart(config: QuickstartConfig | None = None, say: Callable[[str], None] = print) -> dict:
    """Build, warm-start and evaluate the tiny arith policy; return the summary it writes."""
    from policy_init.sft import SFTWarmStartConfig, warm_start
    from policy_init.tiny import TinyConfig, create_tiny
    from roadmap.core import HFPolicy
    from roadmap.core.io import format_table, write_json
    from roadmap.core.tasks import ArithTask
    from roadmap.evaluate import evaluate

    config = config or QuickstartConfig()
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    task = ArithTask()
    tiny = TinyConfig(seed=config.seed)
    minutes = config.minutes if config.minutes is not None else DEFAULT_SFT_MINUTES
    sft = SFTWarmStartConfig(num_problems=config.sft_problems, max_minutes=minutes, seed=config.seed)
    recipe = {"task": asdict(task.config), "tiny": asdict(tiny), "sft": asdict(sft)}
    key = hashlib.sha1(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]
    home = cache_dir() / f"quickstart-{key}"
    policy_dir = home / "policy"

    if policy_dir.exists() and not config.retrain:
        say(f"[1/4] reusing the warm-started policy cached at {policy_dir} (pass --retrain to train again)")
        sft_result = json.loads((policy_dir / "sft_result.json").read_text())
    else:
        say(f"[1/4] building a tiny Llama and a char tokenizer for arith in {home / 'tiny'}")
        create_tiny(task, home / "tiny", tiny)
        say(f"[2/4] SFT warm-start on {config.sft_problems} arith problems for up to {minutes:g} minutes")
        sft.output_dir = str(policy_dir)
        sft_result = warm_start(home / "tiny", task, sft).to_dict()
        shutil.rmtree(out / "loop", ignore_errors=True)  # its results belong to the old policy
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
        from roadmap.loop import LoopConfig, run_loop

        say(f"[4/4] one iteration of search-and-learn: MCTS on {config.loop_problems} training problems, "
            "expert iteration on what it verified, evaluation")
        loop_config = LoopConfig(
            policy=str(policy_dir), iterations=1, train_problems=config.loop_problems,
            search={"method": "mcts", "budget": config.loop_budget, "width": 4, "mcts_evaluation": "rollout",
                    "shard_size": 64},
            learn={"algorithm": "expert_iteration", "solutions_per_problem": 2, "epochs": 1},
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
