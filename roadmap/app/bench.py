"""Test-time scaling benchmark: accuracy against compute for every search method and budget.

``bench_test_time`` runs greedy decoding, majority vote, best-of-N, weighted best-of-N, beam
search, DVTS and MCTS at budgets N (sampled solutions, or steps per depth; MCTS gets N
simulations of width children, see ``roadmap.app.evaluate.run_search``) and "sequential" (one greedy
chain of thought thinking N x ``thinking_unit`` tokens under budget forcing, the revision axis Snell
et al., arXiv 2408.03314, set beside parallel search) at several seeds, on the same held-out problems. Majority, best-of-N and weighted best-of-N at one (N, seed) select from
the same N samples, as peers compare them. Each finished (method, N, seed) cell is appended to
``cells.jsonl`` at once, so a rerun skips what is done. The outputs are ``test_time.json``
(cells and their means over seeds), ``test_time.md`` (accuracy table) and ``test_time.png``
(accuracy against generated tokens per problem). Every method's length limits come from
``TestTimeConfig.lengths``; each cell counts the outputs a limit cut (``truncated``).
"""

from __future__ import annotations

import logging
import os
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from roadmap.core.errors import ConfigError, StaleOutputError
from roadmap.core.integrity import sealed_line
from roadmap.core.io import atomic_write_text, format_table, json_fingerprint, save_figure, write_json
from roadmap.core.lengths import Lengths
from roadmap.core.outputs import claim_output_dir, holds_only
from roadmap.core.stats import wilson_interval
from roadmap.core.tasks.base import selection_correct
from roadmap.core.types import Problem
from search.registry import test_time_method, test_time_method_names

__all__ = ["SEQUENTIAL", "TestTimeConfig", "bench_test_time", "bench_methods", "read_cells"]

logger = logging.getLogger(__name__)


def bench_methods() -> tuple[str, ...]:
    """The default grid: greedy and majority vote, then every search method (``search.registry``)."""
    return test_time_method_names("sampling", "search")


#: the sequential axis (budget forcing, ``search.registry``'s one ``sequential`` method); asked for by name, not in
#: the default grid
SEQUENTIAL = "sequential"

_SAMPLED = ("majority", "bon", "weighted")


def _needs_scorer(method: str) -> bool:
    """Whether ``method`` needs a scorer (its ``search.registry`` entry says)."""
    return test_time_method(method).needs_scorer


@dataclass
class TestTimeConfig:
    """Grid of the test-time benchmark."""

    __test__ = False  # not a pytest class

    methods: tuple[str, ...] = field(default_factory=bench_methods, metadata={
        "help": "Methods to run, comma-separated (also: sequential, budget forcing at N x --thinking-unit tokens)."})
    budgets: tuple[int, ...] = field(default=(1, 4, 16, 64), metadata={
        "help": "Sampled sequences per problem (N), comma-separated."})
    seeds: tuple[int, ...] = field(default=(0, 1), metadata={"help": "Seeds, comma-separated; cells are averaged over them."})
    width: int = field(default=4, metadata={"help": "Beam width M and MCTS children per expansion."})
    temperature: float = field(default=1.0, metadata={"help": "Sampling temperature of every sampled method."})
    chunk: int = field(default=50, metadata={"help": "Problems searched together (stepwise methods)."})
    lengths: Lengths = field(default_factory=Lengths, metadata={"help": "Length limits of every method."})
    thinking_unit: int = field(default=32, metadata={
        "help": "Thinking tokens per budget unit of 'sequential' (one greedy chain of thought under budget forcing, "
                "search.budget_forcing): at budget N it thinks N * thinking_unit tokens."})

    def __post_init__(self) -> None:
        self.methods, self.budgets, self.seeds = tuple(self.methods), tuple(self.budgets), tuple(self.seeds)
        bad = [m for m in self.methods if m not in test_time_method_names()]
        if bad:
            raise ConfigError(f"unknown methods {bad}; use some of {test_time_method_names()}")
        if not self.budgets or min(self.budgets) < 1:
            raise ConfigError(f"budgets={self.budgets} must be positive integers")
        if not self.seeds:
            raise ConfigError("seeds is empty; give at least one seed")


def _cell(method: str, budget: int, seed: int, correct: list[bool], usage: dict[str, int], wall: float,
          outputs: int, truncated: int) -> dict:
    n = len(correct)
    ok = sum(correct)
    return {"method": method, "budget": budget, "seed": seed, "n": n, "correct": ok, "accuracy": ok / n,
            "outputs": outputs, "truncated": truncated, "truncated_rate": truncated / outputs if outputs else 0.0,
            "ci95": list(wilson_interval(ok, n)), "generated_tokens": usage.get("generated_tokens", 0),
            "tokens_per_problem": usage.get("generated_tokens", 0) / n,
            "sequences_per_problem": usage.get("sampled_sequences", 0) / n, "wall_seconds": wall,
            "usage": usage}


def _sampled_cells(policy, task, problems, scorer, budget: int, seed: int, config: TestTimeConfig, wanted):
    """Majority, BoN and weighted BoN over one shared set of ``budget`` samples per problem."""
    from search.best_of_n import BestOfNConfig, best_answer, majority_vote, sample_candidates, weighted_vote
    from search.expand import score_many

    t0 = time.perf_counter()
    before = policy.usage.copy()
    results = []
    for s in range(0, len(problems), config.chunk):
        part = problems[s : s + config.chunk]
        cfg = BestOfNConfig(n=budget, temperature=config.temperature, seed=seed * 1_000_003 + s,
                            lengths=config.lengths)
        results += sample_candidates(policy, task, part, cfg)
    usage = (policy.usage - before).to_dict()
    wall = time.perf_counter() - t0
    answers = [[task.extract_answer(c) for c in r.candidates] for r in results]
    outputs, truncated = sum(len(r.candidates) for r in results), sum(r.truncated for r in results)
    picks: dict[str, list[str | None]] = {"majority": [majority_vote(a) for a in answers]}
    scoring = 0.0
    if scorer is not None and ({"bon", "weighted"} & set(wanted)):
        t1 = time.perf_counter()
        scores = score_many(scorer, problems, [r.candidates for r in results])
        scoring = time.perf_counter() - t1
        picks["bon"] = [best_answer(a, sc) for a, sc in zip(answers, scores)]
        picks["weighted"] = [weighted_vote(a, sc) for a, sc in zip(answers, scores)]
    cells = []
    for method in wanted:
        if method not in picks:
            continue
        correct = [selection_correct(task, p, a, r.candidates) for a, p, r in zip(picks[method], problems, results)]
        cells.append(_cell(method, budget, seed, correct, usage, wall + (scoring if method != "majority" else 0.0),
                           outputs, truncated))
    return cells


def _search_cell(policy, task, problems, scorer, method: str, budget: int, seed: int, config: TestTimeConfig):
    from roadmap.app.evaluate import evaluate, evaluate_search

    if method == "greedy":
        report = evaluate(policy, task, problems, method="greedy", seed=seed, progress=False, lengths=config.lengths)
    elif method == SEQUENTIAL:
        report = evaluate(policy, task, problems, method="greedy", seed=seed, progress=False,
                          lengths=config.lengths, thinking_budget=budget * config.thinking_unit)
    else:
        report = evaluate_search(policy, task, problems, method=method, budget=budget, scorer=scorer,
                                 seed=seed * 1_000_003, chunk=config.chunk, progress=False,
                                 temperature=config.temperature, width=config.width, lengths=config.lengths)
    correct = [r["correct"] for r in report.records]
    return _cell(method, budget, seed, correct, report.usage, report.wall_seconds, report.outputs, report.truncated)


def legacy_bench_dir(folder: Path) -> bool:
    """Whether ``folder`` (with no marker) is a bench folder from before markers: its cells.jsonl (written
    first), and nothing but its own files."""
    return (folder / "cells.jsonl").is_file() and holds_only(folder, ("cells.jsonl", "test_time.json", "test_time.md",
                                                                      "test_time.png"))


def bench_test_time(
    policy, task, problems: Sequence[Problem], out_dir: str | Path, config: TestTimeConfig | None = None, *,
    scorer=None, progress: bool = True, inputs: Mapping[str, Any] | None = None,
    scorer_inputs: Mapping[str, Any] | None = None, overwrite: bool = False, workers=None,
) -> dict[str, Any]:
    """Run the grid of ``config`` on ``problems``; write and return the cells and their means.

    With ``workers`` (``roadmap.core.distributed.Workers``, n > 1 or an address) the cells run on Ray
    actors that load their own policy and scorer (``policy`` and ``scorer`` may be None; a "scorer" in
    ``workers.provides`` says one exists); each cell is computed as in one process.

    Methods that need a scorer (bon, weighted, beam, dvts, mcts) are skipped, with a warning in
    the result, when ``scorer`` is None. Greedy runs once (budget 1, first seed): it is
    deterministic.

    Every cell records its provenance: the task, a fingerprint of the problems, the settings
    its method depends on, and ``inputs`` (what identifies the policy, e.g. ``{"policy":
    folder_fingerprint(dir)}``) plus, for methods that use the scorer, ``scorer_inputs``. A
    rerun reuses only cells whose provenance matches; a mismatch raises ``StaleOutputError``
    naming the setting, unless ``overwrite`` discards the stale cells. A line of ``cells.jsonl`` that
    is not what was written (torn by a crash mid-write, cut, garbled) is dropped with a warning naming
    it, and its cell is run again.
    """
    from roadmap.core.distributed import Shard, Workers, run_shards

    config = config or TestTimeConfig()
    workers = workers or Workers()
    has_scorer = "scorer" in workers.provides if workers.remote else scorer is not None
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"out_dir {str(out)!r} is a file; pass a folder for cells.jsonl and test_time.*")
    cells_path = out / "cells.jsonl"
    problems = list(problems)
    if not problems:
        raise ConfigError("problems is empty; the benchmark needs at least one problem (n >= 1)")
    claim_output_dir(out, "bench", legacy=legacy_bench_dir)
    base = {"task": task.name, "n": len(problems),
            "problems": json_fingerprint([(p.id, p.question, p.answer) for p in problems]),
            "chunk": config.chunk, **dict(inputs or {})}
    skipped = [m for m in config.methods if _needs_scorer(m) and not has_scorer]
    methods = [m for m in config.methods if m not in skipped]
    plan: list[tuple[str, int, int]] = []
    for seed in config.seeds:
        for budget in config.budgets:
            for m in methods:
                if m != "greedy" and (m != SEQUENTIAL or seed == config.seeds[0]):  # both deterministic
                    plan.append((m, budget, seed))
    if "greedy" in methods:
        plan.insert(0, ("greedy", 1, config.seeds[0]))
    wanted = {key: _provenance(key[0], base, config, scorer_inputs) for key in plan}
    done = _resume_cells(cells_path, wanted, overwrite)
    todo = [key for key in plan if key not in done]
    jobs, grouped = [], set()
    for key in todo:  # one job per search cell, one per (budget, seed) of the sampled methods (shared samples)
        if key[0] not in _SAMPLED:
            jobs.append(Shard(f"{key[0]}@{key[1]} seed {key[2]}", BenchJob(task, problems, config, *key), 1))
        elif key[1:] not in grouped:
            grouped.add(key[1:])
            sampled = [m for m in _SAMPLED if (m, key[1], key[2]) in todo]
            jobs.append(Shard(f"sampling@{key[1]} seed {key[2]}", BenchJob(task, problems, config, *key, sampled),
                              len(sampled)))
    with cells_path.open("a") as f:

        def emit(_, cells: list[dict]) -> None:
            for c in cells:
                key = (c["method"], c["budget"], c["seed"])
                c["provenance"] = wanted[key]
                done[key] = c
                f.write(sealed_line(c))  # one write per line, made durable before the next cell starts
                f.flush()
                os.fsync(f.fileno())

        run_shards(jobs, bench_cells, workers, local={"policy": policy, "scorer": scorer}, on_result=emit,
                   desc="test-time bench", unit="cell", progress=progress, initial=len(plan) - len(todo),
                   total=len(plan))
    cells = [done[k] for k in plan]
    summary = _summarise(cells)
    result = {"config": asdict(config), "problems": len(problems), "task": task.name, "skipped_no_scorer": skipped,
              "provenance": base, "cells": cells, "summary": summary}
    write_json(out / "test_time.json", result)
    atomic_write_text(out / "test_time.md", markdown_table(summary, config.budgets) + "\n")
    plot_test_time(summary, out / "test_time.png", title=f"{task.name}: {len(problems)} held-out problems")
    return result


@dataclass(frozen=True)
class BenchJob:
    """One job of the bench: the cell ``(method, budget, seed)``, or with ``sampled`` the cells of those sampled
    methods at ``budget`` and ``seed``, which share one pool of samples."""

    task: Any
    problems: Sequence[Problem]
    config: TestTimeConfig
    method: str
    budget: int
    seed: int
    sampled: list[str] | None = None


def bench_cells(resources: dict[str, Any], job: BenchJob) -> list[dict]:
    """The cells of one bench job (a ``run_shards`` job): one search cell, or the sampled methods' cells."""
    policy, scorer = resources["policy"], resources.get("scorer")
    if job.sampled is None:
        return [_search_cell(policy, job.task, job.problems, scorer, job.method, job.budget, job.seed, job.config)]
    return _sampled_cells(policy, job.task, job.problems, scorer, job.budget, job.seed, job.config, job.sampled)


#: the length limits a sampled method reads; stepwise methods (and registered ones) may read them all
_SOLUTION_LENGTHS = ("max_solution_tokens",)
_SEARCH_LENGTHS = ("max_step_tokens", "max_steps", "max_solution_tokens", "rollout_tokens")


def _provenance(method: str, base: dict, config: TestTimeConfig, scorer_inputs: Mapping[str, Any] | None) -> dict:
    """What a cell of ``method`` depends on: greedy ignores temperature, only scored methods the scorer,
    sampled methods only the solution length."""
    p = dict(base)
    limits = config.lengths.to_dict()
    p["lengths"] = {k: limits[k] for k in (_SOLUTION_LENGTHS if method in ("greedy",) + _SAMPLED else _SEARCH_LENGTHS)}
    if method == SEQUENTIAL:
        p["thinking_unit"] = config.thinking_unit
    elif method != "greedy":
        p["temperature"] = config.temperature
    if method in ("beam", "dvts", "mcts"):
        p["width"] = config.width
    if _needs_scorer(method):
        p["scorer"] = dict(scorer_inputs or {})
    return p


def read_cells(path: Path) -> list[dict]:
    """The cells of a ``cells.jsonl``. Each line is sealed (``roadmap.core.integrity``): a line that is not
    what was written (a torn last line, an emptied, cut or garbled one) is named in a warning and removed
    from the file, and its cell is run again."""
    from roadmap.core.integrity import read_sealed_line

    if not path.exists():
        return []
    lines = path.read_bytes().split(b"\n")
    cells, kept, bad = [], [], []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        cell, why = read_sealed_line(line) if i < len(lines) else (None, "is a torn last line (no newline: an interrupted write)")
        if cell is None or not {"method", "budget", "seed"} <= set(cell):
            bad.append(f"line {i} {why or 'is not a cell'}")
            continue
        cells.append(cell)
        kept.append(line + b"\n")
    if bad:
        logger.warning("%s: dropped %d damaged line(s) (%s); their cells are run again", path, len(bad),
                       "; ".join(bad[:3]) + (" ..." if len(bad) > 3 else ""))
        atomic_write_text(path, b"".join(kept).decode("utf-8"))
    return cells


def _resume_cells(path: Path, wanted: dict[tuple[str, int, int], dict], overwrite: bool) -> dict:
    """The finished cells on disk whose provenance matches ``wanted``; stale ones refused or discarded."""
    done: dict[tuple[str, int, int], dict] = {}
    stale = []
    for c in read_cells(path):
        key = (c["method"], c["budget"], c["seed"])
        if key not in wanted:
            continue
        if c.get("provenance") == wanted[key]:
            done[key] = c
        else:
            stale.append(c)
    if stale and not overwrite:
        c = stale[0]
        raise StaleOutputError.mismatch(f"{path}: cell {c['method']}@{c['budget']} seed {c['seed']}",
                                        c.get("provenance"), wanted[(c["method"], c["budget"], c["seed"])])
    if stale:
        logger.warning("%s: discarded %d stale cell(s) (--overwrite)", path, len(stale))
        keep = [c for c in read_cells(path) if c not in stale]
        atomic_write_text(path, "".join(sealed_line(c) for c in keep))
    return done


def _summarise(cells: list[dict]) -> list[dict]:
    groups: dict[tuple[str, int], list[dict]] = {}
    for c in cells:
        groups.setdefault((c["method"], c["budget"]), []).append(c)
    rows = []
    for (method, budget), cs in groups.items():
        accs = [c["accuracy"] for c in cs]
        n = sum(c["n"] for c in cs)
        ok = sum(c["correct"] for c in cs)
        rows.append({"method": method, "budget": budget, "seeds": len(cs), "accuracy": statistics.fmean(accs),
                     "seed_std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
                     "ci95_pooled": list(wilson_interval(ok, n)),
                     "tokens_per_problem": statistics.fmean(c["tokens_per_problem"] for c in cs),
                     "truncated_rate": sum(c["truncated"] for c in cs) / max(1, sum(c["outputs"] for c in cs)),
                     "wall_seconds": statistics.fmean(c["wall_seconds"] for c in cs)})
    return rows


def markdown_table(summary: list[dict], budgets: Sequence[int]) -> str:
    """Accuracy (mean over seeds) per method and budget, with generated tokens per problem."""
    by = {(r["method"], r["budget"]): r for r in summary}
    methods = list(dict.fromkeys(r["method"] for r in summary))
    rows = []
    for m in methods:
        row: dict[str, Any] = {"method": m}
        for b in budgets:
            r = by.get((m, b))
            row[f"N={b}"] = f"{r['accuracy']:.3f} ({r['tokens_per_problem']:.0f} tok)" if r else ""
        rows.append(row)
    return format_table(rows, ["method"] + [f"N={b}" for b in budgets], markdown=True)


def plot_test_time(summary: list[dict], path: str | Path, title: str = "") -> Path | None:
    """Accuracy against generated tokens per problem (log scale), one line per method."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for m in dict.fromkeys(r["method"] for r in summary):
        pts = sorted((r["tokens_per_problem"], r["accuracy"], r["budget"]) for r in summary if r["method"] == m)
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        ax.plot(xs, ys, marker="o", label=m)
        for x, y, b in pts:
            ax.annotate(str(b), (x, y), textcoords="offset points", xytext=(3, 3), fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel("generated tokens per problem")
    ax.set_ylabel("accuracy")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)
