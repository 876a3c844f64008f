"""RL as the ladder's learner (``LadderConfig.learner: rl``): the project's own sampler-learner loop on the
problems the probe chose, from answers alone.

Iteration k's learn phase runs ``learning.rl.rl_step`` (``trainer: own``, never TRL) from iteration
k-1's policy for ``learn_steps`` optimizer steps. Its prompts are answer-only train problems
(``Problem.steps = ()``), ``search_problems`` per level, at the levels the probe chose (the band and the
next rung up, ``choose_levels``). Each level's pool is the same in every iteration, so
no-positive-resampling carries over: a prompt whose group was solved in every sample (pass rate at
``retire_pass_rate``, 1.0 here), or solved in every sample of the probe (which samples a window of the same
pool, ``probe_window``), is retired (``iter_k/rl_state/retired.json``) and never drawn again. Adam's
moments carry over too (``iter_k/rl_state/optimizer.pt``), and a killed learn phase resumes at its last
finished step (``iter_k/rl_state/rl_checkpoint.pt``). The reward is the outcome verifier alone: a PRM or
the step checker (``verifier: steps``) would read what the ladder may not train on, so the recipe may not
set them. There is no search phase: RL samples for itself, and counts what it samples as compute.

``RL_DEFAULTS`` are ScaleRL's choices (arXiv 2510.13786): CISPO with ε_max 5, FP32 logits, batch-level
advantage normalisation, prompt-level aggregation, zero-variance filtering and no-positive-resampling;
the recipe's ``rl:`` section overrides any of them with ``learning.rl.RLConfig`` fields. With ``rl.sft_weight`` above
0, every RL step also takes ``sft_batch`` of the seed set's worked solutions into its loss (their mean token NLL
times the weight), the RL counterpart of the SFT ladder's replay.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from roadmap.app.loop_config import RecipeError

logger = logging.getLogger(__name__)

__all__ = ["RL_DEFAULTS", "RL_SET_BY_LADDER", "build_rl_config", "rl_levels", "probe_window", "learn_rl"]

#: the ladder's RL settings unless the recipe's ``rl:`` section says otherwise: ScaleRL's, retiring at pass rate 1,
#: and the step size measured to hold a tiny arith policy's accuracy (benchmarks/results/rl_cause.md: lr 5e-5
#: lowered greedy 35.0 -> 16.4% in 20 steps; 1e-5 with a 10-step warm-up held it over 93 steps)
RL_DEFAULTS: dict[str, Any] = {"loss_type": "cispo", "epsilon_high": 5.0, "scale_rewards": "batch",
                               "fp32_lm_head": True, "prompt_level_loss": True, "zero_variance_filter": True,
                               "retire_pass_rate": 1.0, "learning_rate": 1e-5, "warmup_steps": 10,
                               "num_generations": 8, "prompts_per_step": 16, "temperature": 1.0}

#: RLConfig fields the ladder sets itself, with the reason a recipe's ``rl:`` may not
RL_SET_BY_LADDER = {
    "output_dir": "iter_k/policy", "overwrite": "the ladder's phases own their folders",
    "max_steps": "the ladder's learn_steps", "seed": "the ladder's seed", "lengths": "the top-level lengths:",
    "trainer": "the ladder runs the project's own loop", "eval_every": "the ladder's eval phase",
    "eval_problems": "the ladder's eval_problems",
    "prm_weight": "the ladder's RL reward is the outcome verifier alone",
    "verifier": "'steps' reads the step checker, which no ladder training path may read",
}


def build_rl_config(rl: dict, *, learn_steps: int, lengths, seed: int = 0, output_dir: str = "rl-policy"):
    """The ``RLConfig`` of the recipe's ``rl:`` section over ``RL_DEFAULTS``; a bad key or value is a one-line
    ``RecipeError`` that names it (``rl.<key>``)."""
    from learning.rl import RLConfig
    from roadmap.app.loop_config import build_section
    from roadmap.core.errors import ConfigError

    built = build_section(RLConfig, {**RL_DEFAULTS, **rl}, "rl", set_by_loop=RL_SET_BY_LADDER,
                          label="learning.rl.RLConfig")
    try:
        return replace(built, max_steps=learn_steps, lengths=lengths, seed=seed, output_dir=str(output_dir),
                       overwrite=True, trainer="own", eval_every=0)
    except (ConfigError, ValueError, TypeError) as e:
        raise RecipeError(f"rl: {e}") from e


def rl_levels(chosen: list, pass_rates: dict, levels: list) -> tuple[list[int] | None, str | None]:
    """(the levels RL learns at, or None to stop; a line saying why when it is not ``chosen``).

    ``chosen`` is the probe's ``choose_levels``; when the band selects no level, RL moves up to the easiest
    level whose pass rate is below 1 (a level with any wrong sample still has something to learn); when
    every level is solved in every probe sample, the ladder has no rung left and stops."""
    if chosen:
        return list(chosen), None
    rates = {int(k): v for k, v in pass_rates.items()}
    open_levels = [lv for lv in levels if rates.get(lv, 0.0) < 1.0]
    if not open_levels:
        return None, ("the band selects no level and every level's probe pass rate is 1: nothing is left to learn, "
                      "so the ladder stops here; add harder levels to go on")
    return open_levels[:1], (f"the band selects no level (pass rates {rates}); RL moves up to level {open_levels[0]}, "
                             "the easiest one not solved in every probe sample")


def probe_window(pool: list, k: int, n: int) -> list:
    """Iteration ``k``'s probe problems from a level's RL pool: the next ``n`` of it, cycling (a fresh window each
    iteration, so the probe measures the level, not the problems it measured before)."""
    start = (k - 1) * n
    return [pool[(start + i) % len(pool)] for i in range(min(n, len(pool)))]


def learn_rl(ladder, k: int, levels: list[int], solved: Sequence[str] = ()) -> dict[str, Any]:
    """Iteration ``k``'s learn phase with ``learning.rl.rl_step`` at ``levels``; its metrics. ``solved``: ids the
    probe solved in every sample, retired with those earlier iterations retired (no-positive-resampling)."""
    import json

    import learning.rl as rl
    from roadmap.core.errors import DataError
    from roadmap.core.io import write_json

    c, here = ladder.c, ladder.dir / f"iter_{k}"
    before = ladder.dir / f"iter_{k - 1}" / "rl_state"
    retired_path = before / "retired.json"
    retired = set(json.loads(retired_path.read_text())) if retired_path.exists() else set()
    retired |= set(solved) if c.rl_config().retire_pass_rate is not None else set()
    # the same pool per level in every iteration (not the search's seed), so retirement carries over
    problems = [p for lv in levels for p in ladder.rl_pool(lv)]
    pool = [p for p in problems if p.id not in retired]
    state = here / "rl_state"
    state.mkdir(parents=True, exist_ok=True)
    if not pool:
        msg = (f"iteration {k}: every one of the {len(problems)} problems at levels {levels} is retired (solved in "
               "every sample); the policy is copied unchanged; raise search_problems for a larger pool")
        logger.warning(msg)
        ladder.say(msg)
        from roadmap.app.loop import _copy_policy

        _copy_policy(ladder.dir / f"iter_{k - 1}" / "policy", here / "policy")
        ladder.save_task(here / "policy")
        write_json(state / "retired.json", sorted(retired))
        return {"levels": levels, "problems": 0, "steps": 0, "train_tokens": 0, "sampled_tokens": 0,
                "reward_mean": None, "groups": 0, "kept_groups": 0, "zero_variance_dropped": 0, "stale_dropped": 0,
                "retired": len(retired), "train_seconds": 0.0, "rl_steps": []}
    config = c.rl_config(seed=c.seed + 31 * k, output_dir=str(here / "policy"))
    # rl.sft_weight > 0: the seed set's worked solutions stay in the loss, as the SFT ladder replays them
    demos = [(r["prompt"], r["completion"]) for r in ladder.seed_rows()] if config.sft_weight else []
    try:
        res = rl.rl_step(ladder.dir / f"iter_{k - 1}" / "policy", ladder.task, pool, config, retired=retired,
                         checkpoint_dir=state, optimizer_state=before / "optimizer.pt", demonstrations=demos)
    except DataError as e:
        raise DataError(f"iteration {k}, RL at levels {levels}: {e}; or raise search_problems (the pool per "
                        "level)") from e
    ladder.save_task(here / "policy")
    write_json(state / "retired.json", res.retired)
    curve = res.reward_curve
    return {"levels": levels, "problems": len(pool), "steps": res.steps, "train_tokens": res.train_tokens,
            "sampled_tokens": res.sampling_tokens, "reward_mean": sum(curve) / len(curve) if curve else None,
            "first_reward": res.first_reward, "final_reward": res.final_reward, "groups": res.groups_seen,
            "kept_groups": res.groups_seen - res.zero_variance_dropped,
            "zero_variance_dropped": res.zero_variance_dropped, "stale_dropped": res.stale_dropped,
            "retired": len(res.retired), "train_seconds": res.wall_seconds,
            "rl_steps": [{x: s[x] for x in ("step", "reward", "pass_rate", "compute", "sft_loss") if x in s}
                         for s in res.steps_log]}

