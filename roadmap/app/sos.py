"""Stream of Search on countdown as one resumable run (issue 30; arXiv 2404.03683): ``roadmap run`` of a recipe
with ``sos: true`` (``recipes/countdown_sos.yaml``).

From one tiny model (built here, shared by every arm) it runs three ladder runs (``roadmap.app.ladder``) at one
countdown level, each resumable on its own, then a test-time stage and the report:

- ``trace/``: SFT on the solver's DFS search traces (dead ends and backtracks included) for ``warm_start_steps``
  steps, then ``iterations`` STaR rounds: the model samples its own traces of fresh answer-only problems, the exact
  checker keeps a verified one per problem, and it is fine-tuned on them;
- ``path/``: SFT on the solver's optimal paths for as many steps as give it the same training tokens (rows are
  tokenized with the tiny tokenizer here), then the same STaR rounds;
- ``trace_more/`` (the control): from the trace arm's warm start, the same learn steps of more SFT on the search
  traces, no search;
- ``test_time/``: ``test_samples`` samples of each test problem from the path model, each checked by the exact
  checker (a countdown answer can be checked from the prompt alone, so this is a legitimate outcome verifier at
  test time): solved by checking the first N, for N = 1, 2, 4 ..., with the tokens those N samples cost.

Every arm is evaluated greedy on the same ``eval_problems`` test problems (``eval_seed``). ``report.md`` and
``sos.json`` hold per arm and stage the training steps and tokens, the sampled tokens, greedy accuracy with its 95%
interval, generated tokens per problem and the search behaviour of the model's own outputs (backtracks per trace,
solved problems with a backtrack, solved after a dead first branch, illegal lines); ``accuracy_vs_tokens.png``
plots accuracy against generated tokens per problem: one long sample of each model (sequential compute) against
the path model's N checked samples (parallel compute).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from roadmap.app.loop_config import RecipeError, check_types
from roadmap.core.lengths import Lengths

__all__ = ["SoSConfig", "is_sos_recipe", "load_sos_recipe", "run_sos", "checked_samples", "checked_curve",
           "sample_settings"]

#: the ladder keys a SoS recipe passes through to every arm's ladder run (roadmap.app.ladder_config.LadderConfig)
_LADDER_KEYS = ("task_args", "tiny", "seed_problems", "warm_start_steps", "warm_start_learning_rate", "iterations",
                "probe_problems", "probe_samples", "search", "search_problems", "learn_steps", "learning_rate",
                "batch_size", "replay_share", "eval_problems", "eval_seed", "seed", "lengths")

#: the arms of a SoS run, in the order they run
ARMS = ("trace", "path", "trace_more")


@dataclass
class SoSConfig:
    """A Stream of Search recipe: one countdown level, three arms from one tiny model, and a test-time stage."""

    sos: bool = field(default=True, metadata={"help": "Marks a Stream of Search recipe (roadmap run dispatches on it)."})
    task: str = field(default="countdown", metadata={"help": "The task: countdown (it has path and trace formats)."})
    task_args: dict = field(default_factory=lambda: {"trace_max_chars": 512}, metadata={
        "help": "Countdown options but solution_format (each arm sets its own) and the level's min/max_numbers."})
    level: int = field(default=3, metadata={"help": "Numbers per problem (countdown's level_task)."})
    tiny: dict = field(default_factory=lambda: {"max_position_embeddings": 576}, metadata={
        "help": "policy_init.tiny.TinyConfig fields of the one tiny model every arm starts from."})
    seed_problems: int = field(default=10000, metadata={"help": "Train problems with worked solutions (both arms)."})
    warm_start_steps: int = field(default=600, metadata={
        "help": "SFT steps of the trace arm; the path arm gets as many as give it the same training tokens."})
    warm_start_learning_rate: float = field(default=1e-3, metadata={"help": "Peak learning rate of both warm starts."})
    iterations: int = field(default=1, metadata={"help": "STaR rounds after each warm start (and control rounds)."})
    probe_problems: int = field(default=32, metadata={"help": "Answer-only problems of the pass-rate probe."})
    probe_samples: int = field(default=4, metadata={"help": "Samples per probe problem."})
    search: dict = field(default_factory=lambda: {"method": "bon", "budget": 4, "temperature": 0.7, "shard_size": 128},
                         metadata={"help": "STaR's sampling: roadmap.app.train_search.TrainSearchConfig fields."})
    search_problems: int = field(default=512, metadata={"help": "Fresh answer-only problems sampled per STaR round."})
    learn_steps: int = field(default=50, metadata={"help": "SFT steps per STaR round (and per control round)."})
    learning_rate: float = field(default=5e-4, metadata={"help": "Peak learning rate of each STaR round."})
    batch_size: int = field(default=16, metadata={"help": "Rows per SFT step."})
    replay_share: float = field(default=0.0, metadata={
        "help": "Share of each STaR round's rows replayed from the worked solutions (0: the model's own only)."})
    eval_problems: int = field(default=200, metadata={"help": "Held-out test problems, greedy, for every arm."})
    eval_seed: int = field(default=918273, metadata={"help": "Seed of the test problems."})
    seed: int = field(default=0, metadata={"help": "Seed of the tiny model, the data and the sampling."})
    lengths: dict = field(default_factory=lambda: {"max_solution_tokens": 528, "rollout_tokens": 528,
                                                   "train_max_length": 576},
                          metadata={"help": "roadmap.core.Lengths fields (char tokenizer: a character is a token)."})
    test_samples: int = field(default=16, metadata={"help": "Samples per test problem of the path model (largest N)."})
    test_temperature: float = field(default=0.7, metadata={"help": "Temperature of those samples."})

    def __post_init__(self) -> None:
        check_types({f.name: getattr(self, f.name) for f in fields(self)}, SoSConfig, "")
        if self.task != "countdown":
            raise RecipeError(f"task={self.task!r}: a Stream of Search recipe runs countdown (path and trace formats)")
        fixed = sorted(set(self.task_args) & {"solution_format", "min_numbers", "max_numbers"})
        if fixed:
            raise RecipeError(f"task_args sets {fixed}: the arms set solution_format and level: sets the numbers")
        from roadmap.core.tasks import get_task

        try:
            get_task(self.task, **self.task_args).level_task(self.level)
        except (ValueError, TypeError) as e:
            raise RecipeError(f"level={self.level}: {e}") from e
        if self.test_samples < 1 or not self.test_temperature > 0:
            raise RecipeError(f"test_samples={self.test_samples} must be at least 1 and test_temperature="
                              f"{self.test_temperature} above 0")
        for arm in ARMS:  # every arm's ladder checks its own keys, so a bad value is named before any work
            self.ladder_config(arm, policy="tiny", warm_start_steps=self.warm_start_steps)

    def ladder_config(self, arm: str, policy: str, warm_start_steps: int):
        """The ``LadderConfig`` of one arm, starting from ``policy`` (a folder) with ``warm_start_steps``."""
        from roadmap.app.ladder_config import LadderConfig

        shared = {k: getattr(self, k) for k in _LADDER_KEYS}
        fmt = "path" if arm == "path" else "trace"
        shared["task_args"] = {**self.task_args, "min_numbers": self.level, "max_numbers": self.level,
                               "solution_format": fmt}
        return LadderConfig(**{**shared, "task": self.task, "levels": [self.level], "seed_levels": [self.level],
                               "policy": policy, "warm_start_steps": warm_start_steps, "band": [0.0, 1.0],
                               "max_levels": 1, "selection": "verified",
                               "control": "more_sft" if arm == "trace_more" else "none"})


def is_sos_recipe(path: str | Path) -> bool:
    """Whether the YAML recipe at ``path`` is a Stream of Search recipe (``sos: true``)."""
    from roadmap.app.loop_config import marked_recipe

    return marked_recipe(path, "sos")


def load_sos_recipe(path: str | Path, **overrides) -> SoSConfig:
    """A ``SoSConfig`` from a YAML recipe; overrides that are not None replace its keys."""
    from roadmap.app.loop_config import build_recipe, read_recipe

    return build_recipe(SoSConfig, read_recipe(path), path, overrides)


def mean_row_tokens(tokenizer, task, problems, formats, max_length: int) -> dict[str, float]:
    """Mean tokens of one SFT row (prompt + solution + EOS, cut at ``max_length``) per solution format."""
    out = {}
    for fmt in formats:
        rows = [task.prompt(p) + task.solution_text(p, fmt) for p in problems]
        out[fmt] = sum(min(len(tokenizer(r)["input_ids"]) + 1, max_length) for r in rows) / len(rows)
    return out


def sample_settings(policy_dir: Path, problems, samples: int, temperature: float, max_new_tokens: int,
                    seed: int) -> dict:
    """What ``checked_samples`` depend on (their file's first line): a rerun with other problems or another
    model's weights samples again."""
    from roadmap.core.io import folder_fingerprint, json_fingerprint

    return {"samples": samples, "temperature": temperature, "max_new_tokens": max_new_tokens, "seed": seed,
            "n": len(problems), "problems": json_fingerprint([p.id for p in problems]),
            "policy": folder_fingerprint(policy_dir)}


def checked_samples(policy_dir: Path, task, problems, samples: int, temperature: float, max_new_tokens: int,
                    seed: int, out: Path, batch: int = 256, say: Callable[[str], None] = print) -> list[dict]:
    """Per problem: ``samples`` sampled solutions' exact verdicts, generated tokens and whether a length limit cut
    them; written to ``out`` (JSON lines, settings first) and reused by a rerun with the same settings."""
    from roadmap.core.hf_policy import HFPolicy
    from roadmap.core.io import atomic_write_text

    settings = sample_settings(policy_dir, problems, samples, temperature, max_new_tokens, seed)
    if out.exists():
        rows = [json.loads(x) for x in out.read_text().splitlines()]
        saved = {k: v for k, v in rows[0].get("settings", {}).items() if k != "seconds"} if rows else None
        if saved == settings and len(rows) == len(problems) + 1:
            return rows[1:]
    policy = HFPolicy.from_pretrained(policy_dir, batch_size=batch)
    t0 = time.perf_counter()
    rows = []
    per_call = max(1, batch // samples)
    for start in range(0, len(problems), per_call):
        part = problems[start : start + per_call]
        outs = policy.sample([task.prompt(p) for p in part], samples, max_new_tokens=max_new_tokens,
                             temperature=temperature, seed=seed + start)
        for p, comps in zip(part, outs):
            rows.append({"id": p.id, "correct": [bool(task.is_correct(p, c.text)) for c in comps],
                         "tokens": [c.num_tokens for c in comps], "truncated": [bool(c.truncated) for c in comps]})
        say(f"{policy_dir.name}: {len(rows)}/{len(problems)} problems sampled")
    settings["seconds"] = round(time.perf_counter() - t0, 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, "\n".join(json.dumps(r) for r in [{"settings": settings}, *rows]) + "\n")
    return rows


def checked_curve(rows: list[dict], samples: int) -> list[dict]:
    """Solved by checking the first N samples (N = 1, 2, 4 ... and ``samples`` itself), with the mean tokens they
    cost."""
    from roadmap.core.stats import wilson_interval

    out = []
    for n in sorted({*(2 ** k for k in range(samples.bit_length()) if 2 ** k <= samples), samples}):
        solved = sum(any(r["correct"][:n]) for r in rows)
        out.append({"N": n, "accuracy": solved / len(rows), "ci95": list(wilson_interval(solved, len(rows))),
                    "tokens_per_problem": sum(sum(r["tokens"][:n]) for r in rows) / len(rows),
                    "truncated": sum(sum(r["truncated"][:n]) for r in rows)})
    return out


class _SoS:
    def __init__(self, config: SoSConfig, run_dir: Path, say: Callable[[str], None]) -> None:
        from roadmap.core.tasks import get_task

        self.c, self.dir, self.say = config, run_dir, say
        args = {**config.task_args, "min_numbers": config.level, "max_numbers": config.level}
        self.task = get_task("countdown", **args)
        self.lengths = Lengths(**config.lengths)  # checked by every arm's LadderConfig in SoSConfig.__post_init__
        self.trace_task = get_task("countdown", **{**args, "solution_format": "trace"})

    def tiny(self) -> Path:
        from policy_init.tiny import TinyConfig, create_tiny

        out = self.dir / "tiny"
        if not (out / "config.json").exists():
            create_tiny(self.trace_task, out, TinyConfig(seed=self.c.seed, **self.c.tiny), overwrite=True)
        return out

    def equal_token_steps(self, tiny: Path) -> tuple[int, dict[str, float]]:
        """The path arm's SFT steps at the trace arm's training tokens, and the mean row tokens of each format."""
        from transformers import AutoTokenizer

        c = self.c
        # the rows the ladder's warm start cycles through: the seed set (roadmap.app.ladder's seed_rows)
        problems = self.task.problems("train", n=c.seed_problems, seed=1000 + c.seed)
        means = mean_row_tokens(AutoTokenizer.from_pretrained(tiny), self.task, problems, ("path", "trace"),
                                self.lengths.train_max_length)
        return max(1, round(c.warm_start_steps * means["trace"] / means["path"])), means

    def arm(self, arm: str, policy: Path, steps: int) -> dict:
        from roadmap.app.ladder import run_ladder

        def say(message: str) -> None:
            self.say(f"{arm}: {message}")

        # absolute: the same run resumed as RUN or /abs/RUN is the same recipe
        return run_ladder(self.c.ladder_config(arm, policy=str(policy.resolve()), warm_start_steps=steps),
                          self.dir / arm, say=say)

    def stage_rows(self, arm: str, result: dict) -> list[dict]:
        """One row per ladder iteration of ``arm``: training, sampling and the greedy test figures."""
        from roadmap.core.tasks.countdown_traces import search_metrics

        rows = []
        problems = self.task.problems("test", n=self.c.eval_problems, seed=self.c.eval_seed)
        for it in result["iterations"]:
            k = it["iteration"]
            ev = it["levels"][str(self.c.level)]
            sols = json.loads((self.dir / arm / f"iter_{k}" / "eval_solutions.json").read_text())[str(self.c.level)]
            stage = ("warm start" if k == 0 else f"STaR {k}") if arm != "trace_more" else \
                ("from trace's warm start" if k == 0 else f"more SFT {k}")
            rows.append({"arm": arm, "stage": stage, "kept": it.get("kept"), "learn_tokens": it["learn_tokens"],
                         "sampled_tokens": it["data_tokens"], "train_compute": it["train_compute"],
                         "accuracy": ev["accuracy"], "ci95": ev["ci95"], "n": ev["n"],
                         "tokens_per_problem": ev["generated_tokens"] / ev["n"], "truncated": ev["truncated"],
                         "search": search_metrics(self.task, problems, sols)})
        return rows

    def run(self) -> dict:
        c = self.c
        tiny = self.tiny()
        path_steps, means = self.equal_token_steps(tiny)
        self.say(f"path arm: {path_steps} SFT steps at the trace arm's {c.warm_start_steps} steps' tokens "
                 f"(rows of {means['path']:.0f} and {means['trace']:.0f} tokens)")
        results = {"trace": self.arm("trace", tiny, c.warm_start_steps), "path": self.arm("path", tiny, path_steps),
                   "trace_more": self.arm("trace_more", self.dir / "trace" / "iter_0" / "policy", 0)}
        rows = [r for arm in ARMS for r in self.stage_rows(arm, results[arm])]
        problems = self.task.problems("test", n=c.eval_problems, seed=c.eval_seed)
        cap = self.lengths.max_solution_tokens  # the ladders' own lengths
        samples = checked_samples(self.dir / "path" / "iter_0" / "policy", self.task, problems, c.test_samples,
                                  c.test_temperature, cap, c.seed + 1, self.dir / "test_time" / "path.jsonl",
                                  say=self.say)
        sampled = json.loads((self.dir / "test_time" / "path.jsonl").read_text().splitlines()[0])["settings"]
        seconds = {arm: round(phase_seconds(self.dir / arm), 1) for arm in ARMS}
        seconds["test_time"] = sampled.get("seconds")
        result = {"config": asdict(c), "path_steps": path_steps, "mean_row_tokens": means, "rows": rows,
                  "parallel": {"arm": "path (warm start)", "checked": checked_curve(samples, c.test_samples)},
                  "seconds": seconds}
        from roadmap.core.io import atomic_write_text, write_json

        write_json(self.dir / "sos.json", result)
        atomic_write_text(self.dir / "report.md", report_markdown(result))
        plot_sos(result, self.dir / "accuracy_vs_tokens.png")
        return result


def phase_seconds(run_dir: Path) -> float:
    """Seconds the finished phases of a ladder run took, as their markers recorded them (a resumed phase keeps
    the time of the run that did it)."""
    from roadmap.core.integrity import read_sealed_json

    total = 0.0
    for marker in run_dir.glob("iter_*/*.done.json"):
        metrics, _ = read_sealed_json(marker)
        total += float((metrics or {}).get("phase_seconds", 0.0))
    return total


def _pct(x) -> str:
    return "-" if x is None else f"{x:.1%}"


#: the columns ``behaviour_cells`` fills, for a markdown table's header
BEHAVIOUR_COLUMNS = "solved with a backtrack | solved after a dead first branch | backtracks / trace | illegal lines"


def behaviour_cells(metrics: dict) -> str:
    """The markdown cells of ``countdown_traces.search_metrics`` of a model's outputs (``BEHAVIOUR_COLUMNS``)."""
    return (f"{_pct(metrics['solved_with_backtrack'])} | {metrics['solved_after_dead_first_branch']} | "
            f"{metrics['backtracks_per_trace'] or 0:.2f} | {metrics['illegal_lines']}")


def report_markdown(result: dict) -> str:
    """The report: every arm and stage, then the path model's checked samples."""
    c = result["config"]
    lines = [f"# Stream of Search on countdown, level {c['level']}", "",
             f"{c['eval_problems']} test problems (seed {c['eval_seed']}), greedy, judged by the exact checker. The "
             f"trace arm's {c['warm_start_steps']} SFT steps and the path arm's {result['path_steps']} train on the same "
             f"tokens (rows of {result['mean_row_tokens']['trace']:.0f} and {result['mean_row_tokens']['path']:.0f} "
             "tokens).", "",
             "Seconds of the finished phases: " + ", ".join(
                 f"{k} {v:,.0f}" for k, v in result.get("seconds", {}).items() if v is not None) + ".", "",
             "| arm | stage | verified kept | learn tokens | sampled tokens | greedy | 95% CI | tokens / problem "
             f"| truncated | {BEHAVIOUR_COLUMNS} |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        kept = "-" if r["kept"] is None else f"{r['kept']:,}"
        lines.append(f"| {r['arm']} | {r['stage']} | {kept} | {r['learn_tokens']:,} | {r['sampled_tokens']:,} | "
                     f"{_pct(r['accuracy'])} | {_pct(r['ci95'][0])}-{_pct(r['ci95'][1])} | "
                     f"{r['tokens_per_problem']:.0f} | {r['truncated']} | {behaviour_cells(r['search'])} |")
    lines += ["", f"Parallel compute: the path model's samples at temperature {c['test_temperature']}, solved by "
              "checking the first N with the exact checker.", "",
              "| N | solved | 95% CI | tokens / problem | truncated |", "|---|---|---|---|---|"]
    lines += [f"| {x['N']} | {_pct(x['accuracy'])} | {_pct(x['ci95'][0])}-{_pct(x['ci95'][1])} | "
              f"{x['tokens_per_problem']:.0f} | {x['truncated']} |" for x in result["parallel"]["checked"]]
    return "\n".join(lines) + "\n"


def plot_sos(result: dict, path: Path) -> None:
    """Accuracy against generated tokens per problem: each arm's greedy sample (sequential) and the path model's
    first verified of N samples (parallel)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from roadmap.core.io import save_figure

    fig, ax = plt.subplots(figsize=(9.5, 4.2))
    par = result["parallel"]["checked"]
    ax.plot([x["tokens_per_problem"] for x in par], [x["accuracy"] for x in par], marker="o", color="tab:blue",
            label="path: first verified of N (parallel)")
    for x in par:
        ax.annotate(f"N={x['N']}", (x["tokens_per_problem"], x["accuracy"]), fontsize=7, xytext=(3, -9),
                    textcoords="offset points")
    markers = {"trace": "*", "path": "s", "trace_more": "x"}
    for r in result["rows"]:
        ax.scatter([max(r["tokens_per_problem"], 1e-9)], [r["accuracy"]], marker=markers[r["arm"]], s=90,
                   label=f"{r['arm']}, {r['stage']}: greedy (sequential)")
    ax.set_xscale("log")
    from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

    ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))  # 20, 50, 100, 200 ...
    ax.xaxis.set_major_formatter(ScalarFormatter())  # 100, not 10^2; the minor ticks unlabelled
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("generated tokens per problem")
    ax.set_ylabel("test problems solved")
    ax.set_title(f"countdown level {result['config']['level']}: sequential vs parallel compute")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    fig.tight_layout()
    save_figure(fig, path)


def run_sos(config: SoSConfig, run_dir: str | Path, say: Callable[[str], None] = print) -> dict:
    """Run (or resume) the Stream of Search recipe of ``config`` in ``run_dir``; a folder of another recipe is
    refused."""
    from roadmap.app.loop import recipe_folder
    from roadmap.core.outputs import check_writable

    out = Path(run_dir)
    check_writable(out, "run folder")
    with recipe_folder(out, config, "Stream of Search"):
        return _SoS(config, out, say).run()
