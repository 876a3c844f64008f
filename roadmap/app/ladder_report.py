"""The ladder's report: accuracy per level x iteration (table and heat map), pass rates, the kept data's
step-checked share, and a sigmoid fit of the top levels' accuracy against compute when the points pin one down."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from roadmap.core.io import atomic_write_text, format_table, save_figure, write_json

__all__ = ["write_ladder_report", "top_level_fit", "fit_levels"]


def _acc(row: dict[str, Any], level) -> float:
    return row["levels"][str(level)]["accuracy"]


#: a level whose greedy accuracy moved less than this over the run is flat: no sigmoid can be read off it
FLAT = 0.02


def fit_levels(config, rows: list[dict[str, Any]]) -> list:
    """The levels the report fits: ``config.fit_levels`` when set, else the two highest levels whose accuracy moved
    by at least ``FLAT`` over the run (a level the ladder never reached is flat and says nothing about the
    climb), else the two top levels."""
    if config.fit_levels:
        return list(config.fit_levels)
    moved = [lv for lv in config.levels if max(_acc(r, lv) for r in rows) - min(_acc(r, lv) for r in rows) >= FLAT]
    return moved[-2:] if moved else list(config.levels)[-2:]


def top_level_fit(config, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Sigmoid of the mean greedy accuracy at the fit levels (``fit_levels``) against cumulative compute, or why
    none is given."""
    from roadmap.app.scaling import falling_warning, fit_sigmoid

    top = fit_levels(config, rows)
    compute = [max(float(r["train_compute"]), 1.0) for r in rows]
    acc = [sum(_acc(r, lv) for lv in top) / len(top) for r in rows]
    out: dict[str, Any] = {"levels": top, "compute": compute, "accuracy": acc}
    if len(set(compute)) < 3:
        return {**out, "fit": None, "why": f"{len(set(compute))} distinct compute values; a sigmoid needs 3"}
    if max(acc) - min(acc) < FLAT:
        return {**out, "fit": None, "why": f"flat: accuracy stays within {max(acc) - min(acc):.3f}"}
    try:
        fit = fit_sigmoid(compute, acc, bootstrap=200)
    except (ValueError, RuntimeError) as e:
        return {**out, "fit": None, "why": str(e)}
    d = fit.to_dict()
    at_bound = [name for name, v, lo, hi in (("A", fit.a, 0.0, 1.0),) if abs(v - hi) < 1e-3 or abs(v - lo) < 1e-3]
    why = [f"parameters at their bounds: {at_bound}"] if at_bound else []
    falling = falling_warning(compute, acc)
    if falling:
        why.append(falling)
    elif fit.c_mid > max(compute):
        why.append(f"C_mid {fit.c_mid:.3g} lies past the largest compute measured ({max(compute):.3g}): the curve's "
                   "midpoint is an extrapolation, so A is not identified")
    return {**out, "fit": d, "why": "; ".join(why) or None}


def _learner_columns(learner: str, row: dict[str, Any]) -> dict[str, Any]:
    """The columns a search-then-learn learner adds to the table (none for sft; "-" at iteration 0)."""
    names = {"tree_dpo": {"pairs": "pairs", "no wrong": "no_wrong"},
             "long_cot": {"traces": "traces", "with a wrong attempt": "backtrack"}}.get(learner, {})
    return {col: row.get(key, "-") for col, key in names.items()}


def write_ladder_report(config, run_dir: Path, rows: list[dict[str, Any]]) -> None:
    levels = list(config.levels)
    fit = top_level_fit(config, rows)
    # "accuracy": the mean at the fit levels, so `roadmap fit RUN/metrics.json` reads a ladder run as a loop's
    write_json(run_dir / "metrics.json", {"iterations": [{**r, "accuracy": a} for r, a in zip(rows, fit["accuracy"])],
                                          "fit": fit})
    rl = getattr(config, "learner", "sft") == "rl"
    table = [{"iteration": r["iteration"], **{f"L{lv}": f"{_acc(r, lv):.1%}" for lv in levels},
              **({"RL at": ",".join(map(str, r["chosen"])) or "-", "kept groups": r["kept"],
                  "reward": None if r.get("rl_reward") is None else f"{r['rl_reward']:.3f}",
                  "sampled tokens": r.get("sampled_tokens")} if rl else
                 {"searched at": ",".join(f"{lv}^" if lv in r.get("lifted", []) else str(lv)
                                          for lv in r["chosen"]) or "-", "kept": r["kept"],
                  "kept steps right": None if r["kept_steps_right"] is None else f"{r['kept_steps_right']:.1%}",
                  **_learner_columns(config.learner, r)}),
              "compute": r["train_compute"]} for r in rows]
    passes = [{"iteration": r["iteration"], **{f"L{lv}": f"{r['pass_rate'].get(str(lv), 0):.0%}"
                                               for lv in levels}} for r in rows if r["pass_rate"]]
    kind = "the more-SFT control (seed set only, no search)" if config.control == "more_sft" else \
        f"search `{config.search.get('method', 'mcts')}`, selection `{config.selection}`"
    if getattr(config, "lift", False):
        kind += ("; the next rung up searched by lifting (`lift: true`, marked ^ under `searched at`: the policy "
                 "solves the rung below's sub-problem, its steps are lifted, and it writes the rest)")
    if rl:
        rc = config.rl_config()
        kind = (f"learner RL (`{rc.loss_type}`, {rc.prompts_per_step} prompts x {rc.num_generations} samples per step, "
                f"max_lag {rc.max_lag}, zero-variance filter {rc.zero_variance_filter}, retiring at pass rate "
                f"{rc.retire_pass_rate}; reward: the outcome verifier alone; `kept groups`: groups with reward "
                "variance, `reward`: mean verifier reward over the iteration's steps)")
    if config.learner == "tree_dpo":
        dc = config.dpo_config()
        kind += (f"; learner tree-DPO (beta {dc.beta}, `{dc.loss_type}`, NLL weight {dc.sft_weight} on the chosen "
                 "side; `pairs`: the kept solution against a wrong sample of the same problem, `no wrong`: problems "
                 "with a kept solution but no wrong sample, skipped)")
    elif config.learner == "long_cot":
        kind += (f"; learner long chains of thought (up to {config.long_cot_config().wrong_attempts} wrong attempts, "
                 "each with a backtrack marker, then the kept solution; `traces`: made, `with a wrong attempt`: the "
                 "rest are the kept solution alone)")
    text = (f"# Ladder report\n\nTask `{config.task}` {config.task_args}, levels {levels}, worked solutions only at "
            f"{config.seed_levels} ({config.seed_problems}); {kind}" + ("" if rl else f"; replay share {config.replay_share}") + ".\n\n"
            f"Greedy accuracy on {config.eval_problems} held-out problems per level (eval seed {config.eval_seed}); "
            + ("" if rl else "`kept steps right`: share of the kept solutions whose every step is right, by the step "
               "checker (analysis only: the ladder never reads it); ")
            + "compute in tokens (generated + prefilled + trained).\n\n")
    text += format_table(table, list(table[0]), markdown=True) + "\n\n"
    if passes:
        text += "Pass rate per level in each iteration's probe (before learning):\n\n"
        text += format_table(passes, list(passes[0]), markdown=True) + "\n\n"
    if fit["fit"]:
        f = fit["fit"]
        boot = f.get("bootstrap") or {}
        spans = ", ".join(f"{k} [{lo:.3g}, {hi:.3g}]" for k, (lo, hi) in boot.items())
        text += (f"Sigmoid of the mean accuracy at levels {fit['levels']} against compute: A = {f['a']:.3f} "
                 f"± {f['a_err']:.3f}, B = {f['b']:.2f} ± {f['b_err']:.2f}, C_mid = {f['c_mid']:.3g} "
                 f"± {f['c_mid_err']:.2g} (fit errors)" + (f"; bootstrap 95% intervals: {spans}" if spans else "")
                 + (f" ({fit['why']})" if fit["why"] else "") + "."
                 + (" The interval on A reaches 1: the curve has not bent yet, so the asymptote is not pinned down."
                    if boot.get("a") and boot["a"][1] >= 0.99 else "") + "\n\n")
    else:
        text += f"No sigmoid fit of levels {fit['levels']}: {fit['why']}.\n\n"
    text += "![levels](levels.png)\n![compute](compute.png)\n"
    atomic_write_text(run_dir / "report.md", text)
    _plots(levels, rows, fit, run_dir)


def _plots(levels: list, rows: list[dict[str, Any]], fit: dict[str, Any], out: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import numpy as np
    except ImportError:
        return
    grid = np.array([[_acc(r, lv) for r in rows] for lv in levels])
    fig, ax = plt.subplots(figsize=(1.2 + 0.7 * len(rows), 1.0 + 0.45 * len(levels)))
    im = ax.imshow(grid, vmin=0, vmax=1, cmap="viridis", origin="lower", aspect="auto")
    for i in range(len(levels)):
        for j in range(len(rows)):
            ax.text(j, i, f"{grid[i, j]:.0%}", ha="center", va="center", fontsize=7,
                    color="white" if grid[i, j] < 0.6 else "black")
    ax.set_xticks(range(len(rows)), [str(r["iteration"]) for r in rows])
    ax.set_yticks(range(len(levels)), [str(lv) for lv in levels])
    ax.set_xlabel("iteration")
    ax.set_ylabel("level")
    fig.colorbar(im, ax=ax, label="greedy held-out accuracy")
    fig.tight_layout()
    save_figure(fig, out / "levels.png")
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for lv in levels:
        ax.plot(fit["compute"], [_acc(r, lv) for r in rows], marker="o", label=f"level {lv}")
    if fit["fit"]:
        from roadmap.app.scaling import sigmoid

        f = fit["fit"]
        xs = np.geomspace(min(fit["compute"]), max(fit["compute"]) * 2, 100)
        ax.plot(xs, sigmoid(xs, f["a"], f["b"], f["c_mid"], f["r0"]), "k--", label=f"sigmoid, levels {fit['levels']}")
    ax.set_xscale("log")
    ax.set_xlabel("cumulative compute (tokens)")
    ax.set_ylabel("greedy held-out accuracy")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, out / "compute.png")
