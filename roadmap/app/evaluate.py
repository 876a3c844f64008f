"""Evaluation of a policy on a task's held-out problems: greedy decoding or majority vote.

Accuracy comes with a 95% Wilson score interval, and with the compute spent (generated
tokens, wall seconds), so that methods can be compared at equal cost. Correctness is the task's
strict answer reading; ``accuracy_flexible`` reports its lenient one beside it
(``Task.extract_answer_flexible``: also "The answer is N" and the last number), as
lm-evaluation-harness reports strict-match and flexible-extract, so that a gap between the two
shows answers lost to the answer format rather than to the math. Length limits come from one
``roadmap.core.Lengths``; the report counts the outputs a limit cut (``truncated``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from roadmap.core.errors import ConfigError
from roadmap.core.lengths import Lengths
from roadmap.core.stats import wilson_interval
from roadmap.core.tasks.base import check_split, selection_correct
from roadmap.core.types import Problem, Usage
from search.registry import test_time_method_names

__all__ = ["EvalConfig", "EvalReport", "evaluate", "evaluate_search", "evaluate_sharded", "eval_shards_dir", "run_search",
           "check_scorer_context", "wilson_interval", "METHODS"]

#: the evaluation methods of ``evaluate``: the ``sampling`` kind of ``search.registry.TEST_TIME_METHODS``
METHODS = test_time_method_names("sampling")


@dataclass
class EvalConfig:
    """Settings of one evaluation: ``roadmap eval``'s flags and its ``--config`` keys (``roadmap.app.cli_fields``).

    ``method`` is any test-time method of ``search.registry`` (plugins included): the sampling ones (greedy,
    majority) run through ``evaluate``, ``sequential`` is greedy under ``thinking_budget``, and the search methods
    run through ``evaluate_search`` with a scorer. ``lengths`` has its own flags (``--max-new-tokens`` ...).
    """

    method: str = field(default="greedy", metadata={
        "help": "Test-time method: greedy, majority, sequential (greedy under --thinking-budget), or a search method "
                "(with --prm)."})
    split: str = field(default="test", metadata={"help": "Problem split to draw from."})
    num_problems: int = field(default=500, metadata={"help": "Problems to evaluate."})
    seed: int = field(default=0, metadata={"help": "Seed that draws the problems and the samples."})
    samples: int = field(default=8, metadata={"help": "Solutions per problem for --method majority."})
    budget: int = field(default=16, metadata={"help": "Sampled sequences per problem for search methods."})
    width: int = field(default=4, metadata={"help": "Search methods: beam width, or children per MCTS expansion."})
    temperature: float = field(default=1.0, metadata={
        "help": "Sampling temperature of majority and every search method."})
    thinking_budget: int | None = field(default=None, metadata={
        "help": "Budget forcing: each solution thinks at most this many tokens, then answers (greedy, majority; "
                "--method sequential is greedy under this budget)."})
    budget_mode: str = field(default="force", metadata={
        "help": "When the thinking budget runs out: force the answer line, or stop without one."})
    lengths: Lengths = field(default_factory=Lengths, metadata={"help": "Length limits of every method."})

    def __post_init__(self) -> None:
        from roadmap.core.ranges import check_ranges
        from search.budget_forcing import BUDGET_MODES

        if self.method not in test_time_method_names():
            raise ConfigError(f"method={self.method!r} is unknown; use one of {test_time_method_names()}")
        check_split(self.split)
        if self.budget_mode not in BUDGET_MODES:
            raise ConfigError(f"budget_mode={self.budget_mode!r} is unknown; use one of {BUDGET_MODES}")
        check_ranges({k: getattr(self, k) for k in ("num_problems", "samples", "budget", "width", "temperature",
                                                   "thinking_budget")})
        if self.method == "sequential" and self.thinking_budget is None:
            raise ConfigError("method sequential needs a thinking budget: pass --thinking-budget N (thinking tokens "
                              "per solution)")


@dataclass
class EvalReport:
    """Result of one evaluation; ``to_dict`` is what ``roadmap eval --out`` writes.

    ``outputs`` are the solutions generated (problems × samples; a search's candidates), and
    ``truncated`` how many of them a length limit cut (neither EOS nor an answer in time), so a
    limit too short for the model shows as a high ``truncated_rate``, not only as low accuracy.
    """

    task: str
    method: str
    samples: int
    n: int
    correct: int
    accuracy: float
    ci95: tuple[float, float]
    generated_tokens: int
    wall_seconds: float
    usage: dict[str, int] = field(default_factory=dict)
    outputs: int = 0
    truncated: int = 0
    truncated_rate: float = 0.0
    lengths: dict[str, int] = field(default_factory=dict)
    records: list[dict[str, Any]] = field(default_factory=list)
    #: accuracy under the task's flexible answer reading (``extract_answer_flexible``), for comparison only
    accuracy_flexible: float = 0.0
    #: reasoning-behaviour rates of the solutions (``rewards.behaviour_metrics``); {} for a duck-typed task
    behaviour: dict[str, Any] = field(default_factory=dict)
    #: thinking tokens per solution (budget forcing, ``search.budget_forcing``); None without a budget
    thinking_budget: int | None = None
    #: scorings of a candidate longer than the reward model's positions: cut there, its later steps scored 0.0
    #: (``rewards.prm.ContextGuard``); 0 without a scorer
    scorer_truncated: int = 0

    def to_dict(self, with_records: bool = True) -> dict[str, Any]:
        d = asdict(self)
        d["ci95"] = list(self.ci95)
        if not with_records:
            d.pop("records")
        return d


def evaluate(
    policy,
    task,
    problems: Sequence[Problem],
    *,
    method: str = "greedy",
    samples: int = 1,
    temperature: float = 1.0,
    top_p: float = 1.0,
    lengths: Lengths | None = None,
    seed: int = 0,
    progress: bool = True,
    thinking_budget: int | None = None,
    budget_mode: str = "force",
) -> EvalReport:
    """Solve ``problems`` with ``policy`` and check the answers with ``task``.

    Args:
        method: "greedy" (one greedy solution) or "majority" (``samples`` solutions sampled at
            ``temperature``; the most frequent final answer wins, i.e. self-consistency).
        samples: solutions per problem for "majority".
        lengths: length limits; a solution is at most ``lengths.max_solution_tokens`` long.
        thinking_budget: when given, each solution thinks at most this many tokens and then answers
            (``budget_mode`` "force") or stops without an answer ("stop"); ``lengths.max_solution_tokens`` is then unused.
    """
    from tqdm.auto import tqdm

    from search.best_of_n import majority_vote

    if method not in METHODS:
        raise ConfigError(f"method={method!r} is not an evaluation method; use one of {METHODS}")
    if method == "greedy":
        samples, temperature = 1, 0.0
    if samples < 1:
        raise ConfigError(f"samples={samples} must be at least 1")
    lengths = lengths or Lengths()
    per_call = max(1, policy.batch_size // samples) if hasattr(policy, "batch_size") else 16
    before, t0 = policy.usage.copy(), time.perf_counter()
    records: list[dict[str, Any]] = []
    with tqdm(total=len(problems), desc=f"eval {task.name} {method}", disable=not progress, unit="problem") as bar:
        for start in range(0, len(problems), per_call):
            chunk = problems[start : start + per_call]
            prefixes = [task.prompt(p) for p in chunk]
            if thinking_budget is not None:
                from search.budget_forcing import budget_forced

                outs = budget_forced(policy, task, prefixes, thinking_budget, mode=budget_mode, n=samples,
                                     temperature=temperature, top_p=top_p, seed=seed + start)
            else:
                outs = policy.sample(prefixes, samples, max_new_tokens=lengths.max_solution_tokens, temperature=temperature,
                                     top_p=top_p, seed=seed + start)
            for problem, comps in zip(chunk, outs):
                answers = [task.extract_answer(c.text) for c in comps]
                answer = majority_vote(answers)
                ok = selection_correct(task, problem, answer, [c.text for c in comps])
                flexible = majority_vote([_flexible_reader(task)(c.text) for c in comps])
                records.append(
                    {
                        "id": problem.id,
                        "answer": answer,
                        "reference": problem.answer,
                        "correct": ok,
                        "solution": comps[0].text,
                        "outputs": len(comps),
                        "truncated": sum(c.truncated for c in comps),
                        **_flexible(task, problem, flexible),
                    }
                )
            bar.update(len(chunk))
            done = sum(r["correct"] for r in records)
            bar.set_postfix(acc=f"{done / len(records):.3f}")
    report = _report(task, method, samples, records, policy.usage - before, t0, lengths, problems)
    report.thinking_budget = thinking_budget
    return report


def _flexible_reader(task):
    """The task's flexible answer reading; a duck-typed task without one (not a ``Task``) reads strictly."""
    return getattr(task, "extract_answer_flexible", task.extract_answer)


def _flexible(task, problem: Problem, answer: str | None) -> dict[str, Any]:
    """The record fields of the flexible answer reading."""
    return {"answer_flexible": answer,
            "correct_flexible": answer is not None and task.answers_match(answer, problem.answer)}


def _behaviour(task, problems: Sequence[Problem], records: list[dict[str, Any]]) -> dict[str, Any]:
    """Behaviour rates of the records' solutions; {} for a duck-typed task without the trace hooks."""
    if not (hasattr(task, "trace_event") and hasattr(task, "step_verdict")):
        return {}
    from rewards.behaviour import behaviour_metrics

    return behaviour_metrics(task, problems, [r["solution"] for r in records])


def _report(task, method: str, samples: int, records: list[dict[str, Any]], spent: Usage, t0: float,
            lengths: Lengths, problems: Sequence[Problem] = ()) -> EvalReport:
    correct, n = sum(r["correct"] for r in records), len(records)
    flexible = sum(r["correct_flexible"] for r in records)
    outputs, truncated = sum(r["outputs"] for r in records), sum(r["truncated"] for r in records)
    scorer_truncated = sum(r.get("scorer_truncated", 0) for r in records)
    return EvalReport(
        task=task.name,
        method=method,
        samples=samples,
        n=n,
        correct=correct,
        accuracy=correct / n if n else 0.0,
        ci95=wilson_interval(correct, n),
        generated_tokens=spent.generated_tokens,
        wall_seconds=time.perf_counter() - t0,
        usage=spent.to_dict(),
        outputs=outputs,
        truncated=truncated,
        truncated_rate=truncated / outputs if outputs else 0.0,
        scorer_truncated=scorer_truncated,
        lengths=lengths.to_dict(),
        records=records,
        accuracy_flexible=flexible / n if n else 0.0,
        behaviour=_behaviour(task, problems, records) if problems else {},
    )


def run_search(policy, task, problems: Sequence[Problem], method: str, budget: int, scorer=None, *, seed: int = 0,
               width: int = 4, verifier=None, mcts_evaluation: str = "scorer", temperature: float = 1.0,
               lengths: Lengths | None = None):
    """Run the search method registered as ``method`` (``search.registry``) at ``budget`` per problem.

    ``lengths`` (default ``Lengths()``) reaches the method through its ``SearchBudget``.

    ``search.registry`` says how each method spends the budget N and the width M so that methods
    compare at equal compute (the benchmark reports the tokens each actually generated).
    """
    from search.registry import SearchBudget, get_search

    fn = get_search(method)
    settings = SearchBudget(budget=budget, width=width, seed=seed, temperature=temperature,
                            mcts_evaluation=mcts_evaluation, lengths=lengths or Lengths())
    return fn(policy, task, problems, scorer, settings, verifier=verifier)


def evaluate_search(
    policy, task, problems: Sequence[Problem], *, method: str, budget: int, scorer=None, seed: int = 0,
    chunk: int = 32, progress: bool = True, temperature: float = 1.0, width: int = 4, lengths: Lengths | None = None,
) -> EvalReport:
    """Test-time search on ``problems`` (``run_search``, beam/MCTS ``width``, ``lengths``), in chunks, checked
    by ``task``; ``truncated`` counts the candidates a length limit cut."""
    from tqdm.auto import tqdm

    lengths = lengths or Lengths()
    check_scorer_context(scorer, problems, method, lengths)
    cut = getattr(scorer, "truncated", None)  # the PRM's candidates cut at its positions, by problem id
    before, t0 = policy.usage.copy(), time.perf_counter()
    records: list[dict[str, Any]] = []
    with tqdm(total=len(problems), desc=f"eval {task.name} {method}@{budget}", disable=not progress, unit="problem") as bar:
        for start in range(0, len(problems), chunk):
            part = list(problems[start : start + chunk])
            cut_before = dict(cut) if cut is not None else {}
            for problem, res in zip(part, run_search(policy, task, part, method, budget, scorer, seed=seed + start,
                                                                width=width, temperature=temperature, lengths=lengths)):
                ok = selection_correct(task, problem, res.answer, res.candidates)
                solution = res.candidates[0] if res.candidates else ""
                # the search chose by the strict reading; the flexible one reads its chosen solution when that gave none
                flexible = res.answer if res.answer is not None else _flexible_reader(task)(solution)
                records.append({"id": problem.id, "answer": res.answer, "reference": problem.answer, "correct": ok,
                                "solution": solution, "usage": res.usage.to_dict(), "outputs": len(res.candidates),
                                "truncated": res.truncated, **_flexible(task, problem, flexible),
                                "scorer_truncated": cut.get(problem.id, 0) - cut_before.get(problem.id, 0) if cut else 0})
            bar.update(len(part))
            bar.set_postfix(acc=f"{sum(r['correct'] for r in records) / len(records):.3f}")
    return _report(task, method, budget, records, policy.usage - before, t0, lengths, problems)


def check_scorer_context(scorer, problems: Sequence[Problem], method: str, lengths: Lengths) -> None:
    """Before a search: a scorer that reads a limited context (a PRM's positions) warns when ``method``'s
    candidates under ``lengths`` can be longer, and refuses when a prompt alone fills it."""
    from search.registry import longest_candidate

    bound = longest_candidate(method, lengths)
    if bound is not None and hasattr(scorer, "check_context"):
        scorer.check_context(problems, *bound)


def eval_shards_dir(out: str | Path) -> Path:
    """The folder of a sharded evaluation's finished shards, beside its report file ``out``."""
    out = Path(out)
    return out.with_name(f".{out.name}.shards")


def evaluate_sharded(workers, task, problems: Sequence[Problem], *, method: str = "greedy", samples: int = 1,
                     budget: int = 16, temperature: float = 1.0, lengths: Lengths | None = None, seed: int = 0,
                     batch_size: int = 64, chunk: int = 32, progress: bool = True, shards: str | Path | None = None,
                     inputs: Mapping[str, Any] | None = None, overwrite: bool = False, width: int = 4) -> EvalReport:
    """``evaluate`` (greedy, majority) or ``evaluate_search`` (beam/MCTS ``width``) on Ray actors (``roadmap.core.distributed.Workers``).

    Each shard is one chunk of the single-process run (``batch_size // samples`` problems, or ``chunk``
    for a search) with that chunk's seed ``seed + start``, so the records are the single-process ones.

    With ``shards`` (a folder, ``eval_shards_dir(report)`` for ``roadmap eval --out report``) each finished
    shard is written there atomically (``NNNNN.json``, with the settings that made it and ``inputs``, what
    identifies the models); a rerun reuses the shards whose settings match, so a killed evaluation redoes
    only its unfinished shards. A shard made with other settings raises ``StaleOutputError`` unless
    ``overwrite`` redoes it.
    """
    from roadmap.core.distributed import ShardedJob

    lengths = lengths or Lengths()
    unit = max(1, batch_size // (1 if method == "greedy" else samples)) if method in METHODS else chunk
    base = {"task": task.name, "method": method, "samples": samples, "budget": budget, "temperature": temperature,
            # width only when not the default 4, so shards written before it was recorded still match
            "lengths": lengths.to_dict(), "chunk": chunk, **({"width": width} if method not in METHODS and width != 4 else {}),
            **dict(inputs or {})}
    job = ShardedJob(eval_shard, base, folder=shards, overwrite=overwrite, desc=f"eval {task.name} {method}")
    t0 = time.perf_counter()
    rows = job.run(problems, unit, lambda start, part: EvalShardJob(task, part, method, samples, budget, temperature,
                                                                    lengths, seed + start, chunk, width),
                   workers, extra=lambda start: {"seed": seed + start}, progress=progress)
    records = [r for row in rows for r in row["records"]]
    spent = Usage()
    for row in rows:
        spent = spent + Usage(**row["usage"])
    return _report(task, method, budget if method not in METHODS else (1 if method == "greedy" else samples),
                   records, spent, t0, lengths, problems)


@dataclass(frozen=True)
class EvalShardJob:
    """What one shard of ``evaluate_sharded`` evaluates, and how (the single-process run's arguments)."""

    task: Any
    problems: Sequence[Problem]
    method: str
    samples: int
    budget: int
    temperature: float
    lengths: Lengths
    seed: int
    chunk: int
    width: int = 4


def eval_shard(resources, job: EvalShardJob) -> dict[str, Any]:
    """One shard of ``evaluate_sharded`` (a ``ShardedJob`` function): its records and the usage spent."""
    policy = resources["policy"]
    if job.method in METHODS:
        report = evaluate(policy, job.task, job.problems, method=job.method, samples=job.samples,
                          temperature=job.temperature, lengths=job.lengths, seed=job.seed, progress=False)
    else:
        report = evaluate_search(policy, job.task, job.problems, method=job.method, budget=job.budget,
                                 scorer=resources.get("scorer"), seed=job.seed, chunk=job.chunk, progress=False,
                                 temperature=job.temperature, width=job.width, lengths=job.lengths)
    return {"records": report.records, "usage": report.usage}
