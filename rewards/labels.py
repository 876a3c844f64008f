"""Automatic step labels for policy solutions: process supervision without human annotators.

Two estimators of whether a step prefix can still reach the right answer, both from rollouts
of the policy itself:

- Monte Carlo (Math-Shepherd, arXiv 2312.08935): from the prefix ending at every step, sample
  ``m`` completions. The soft label is the fraction that reach the right answer, the hard label
  whether any does. Cost: ``m`` rollouts per non-final step.
- First-error binary search (OmegaPRM, arXiv 2406.06592): hard labels are monotone (once a
  prefix cannot be completed correctly, no longer prefix can), so the first bad step is found by
  bisection with ``m`` rollouts per probe: ``m * ceil(log2 T)`` rollouts instead of ``m * T``. A
  solution whose final answer is right needs no rollouts at all.

The final step of a solution that states an answer is labelled by the verifier directly. The
output is a ``datasets.Dataset`` (one row per solution) that ``rewards.prm`` trains on. Rollouts
are at most ``Lengths.rollout_tokens`` long; each row counts the rollouts that limit cut.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from roadmap.core.errors import ConfigError, DataError, MissingPathError
from roadmap.core.lengths import Lengths
from roadmap.core.outputs import StagedOutput
from roadmap.core.types import Problem

logger = logging.getLogger(__name__)

__all__ = ["LabelConfig", "sample_solutions", "label_solutions", "save_labels", "load_labels", "rollout_summary", "METHODS"]

METHODS = ("mc", "binary")


@dataclass
class LabelConfig:
    """How step labels are estimated."""

    method: str = field(default="mc", metadata={"help": "'mc' (Math-Shepherd) or 'binary' (OmegaPRM first error)."})
    rollouts: int = field(default=8, metadata={"help": "Completions sampled per probed step prefix (m)."})
    temperature: float = field(default=1.0, metadata={"help": "Sampling temperature of the rollouts."})
    lengths: Lengths = field(default_factory=Lengths, metadata={
        "help": "Length limits; a rollout is at most lengths.rollout_tokens long (in a recipe: top-level lengths:)."})
    chunk_prefixes: int = field(default=256, metadata={"help": "Step prefixes sent to the policy per call."})
    seed: int = field(default=0, metadata={"help": "Seed of the rollouts."})

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"method={self.method!r} is not a labelling method; use one of {METHODS}")
        if self.rollouts < 1:
            raise ConfigError(f"rollouts={self.rollouts} must be at least 1")
        if self.chunk_prefixes < 1:
            raise ConfigError(f"chunk_prefixes={self.chunk_prefixes} must be at least 1")


def sample_solutions(
    policy, task, problems: Sequence[Problem], n: int, *, temperature: float = 1.0, lengths: Lengths | None = None,
    seed: int = 0,
) -> list[list[str]]:
    """``n`` sampled solutions per problem: ``result[i][j]`` is sample j of problem i.

    Each is at most ``lengths.max_solution_tokens`` long (default ``Lengths()``).
    """
    prompts = [task.prompt(p) for p in problems]
    out = policy.sample(prompts, n=n, max_new_tokens=(lengths or Lengths()).max_solution_tokens,
                        temperature=temperature, seed=seed)
    return [[c.text for c in row] for row in out]


class _Item:
    """One solution being labelled: its steps, what is known of them, and what it cost."""

    def __init__(self, problem: Problem, task, text: str) -> None:
        self.problem = problem
        self.text = text
        self.steps = task.split_steps(text)
        self.delim = task.step_delimiter
        self.prompt = task.prompt(problem)
        self.correct = task.is_correct(problem, text)
        # the final step settles itself when it states an answer
        self.final_known = bool(self.steps) and task.extract_answer(self.steps[-1]) is not None
        self.soft: list[float | None] = [None] * len(self.steps)
        self.rollouts = 0
        self.truncated = 0  # rollouts cut by lengths.rollout_tokens
        if self.final_known:
            self.soft[-1] = 1.0 if self.correct else 0.0

    def labels(self) -> list[float]:
        """The soft label of every step, once labelling has set them all (a step left unset is a bug)."""
        if any(v is None for v in self.soft):
            raise RuntimeError(f"problem {self.problem.id!r}: a step was left unlabelled ({self.soft})")
        return [float(v) for v in self.soft if v is not None]

    def solution_prefix(self, i: int) -> str:
        """Steps 0..i, ready for the next step (no prompt)."""
        return self.delim.join(self.steps[: i + 1]) + self.delim


def _probe(policy, task, items_steps: list[tuple[_Item, int]], config: LabelConfig, seed: int, bar) -> list[float]:
    """Fraction of ``config.rollouts`` rollouts from each (item, step) prefix that end right."""
    fractions: list[float] = []
    for start in range(0, len(items_steps), config.chunk_prefixes):
        chunk = items_steps[start : start + config.chunk_prefixes]
        outs = policy.sample(
            [item.prompt + item.solution_prefix(i) for item, i in chunk],
            n=config.rollouts,
            max_new_tokens=config.lengths.rollout_tokens,
            temperature=config.temperature,
            seed=seed + start,
        )
        for (item, i), completions in zip(chunk, outs):
            head = item.solution_prefix(i)
            good = sum(task.is_correct(item.problem, head + c.text) for c in completions)
            item.rollouts += len(completions)
            item.truncated += sum(c.truncated for c in completions)
            fractions.append(good / len(completions))
        if bar is not None:
            bar.update(len(chunk))
    return fractions


def _label_mc(policy, task, items: list[_Item], config: LabelConfig, bar) -> None:
    todo = [(item, i) for item in items for i in range(len(item.steps)) if item.soft[i] is None]
    for (item, i), frac in zip(todo, _probe(policy, task, todo, config, config.seed, bar)):
        item.soft[i] = frac


def _label_binary(policy, task, items: list[_Item], config: LabelConfig, bar) -> None:
    # search interval [lo, hi] holds the first bad step; hi == len(steps) means "no bad step"
    bounds: dict[int, list[int]] = {}
    for k, item in enumerate(items):
        n = len(item.steps)
        if n == 0:
            continue
        if item.final_known:
            # a right final answer needs no probe: every step led to it (monotone labels)
            bounds[k] = [n, n] if item.correct else [0, n - 1]
        else:
            bounds[k] = [0, n]
    round_ = 0
    while True:
        probes = [(k, (lo + hi) // 2) for k, (lo, hi) in bounds.items() if lo < hi]
        if not probes:
            break
        fracs = _probe(policy, task, [(items[k], i) for k, i in probes], config, config.seed + 7919 * round_, bar)
        for (k, i), frac in zip(probes, fracs):
            items[k].soft[i] = frac
            if frac > 0:
                bounds[k][0] = i + 1
            else:
                bounds[k][1] = i
        round_ += 1
    for k, (first_bad, _) in bounds.items():
        item = items[k]
        item.soft = [1.0 if i < first_bad else 0.0 for i in range(len(item.steps))]


def label_solutions(
    policy, task, problems: Sequence[Problem], solutions: Sequence[Sequence[str]], config: LabelConfig | None = None,
    *, progress: bool = True,
):
    """Step labels for each solution of each problem, estimated from the policy's own rollouts.

    Args:
        policy: the ``Policy`` that completes step prefixes (usually the one that wrote them).
        task: the task; its checker judges the rollouts' final answers.
        problems: the problems.
        solutions: ``solutions[i]`` are solution texts (without prompt) for ``problems[i]``.
        config: method, rollouts per probe, sampling knobs.

    Returns:
        A ``datasets.Dataset`` with one row per solution: ``problem_id``, ``question``,
        ``answer``, ``prompt``, ``steps`` (list of step texts), ``soft_labels`` and
        ``hard_labels`` (one per step, in [0, 1]), ``correct`` (final answer right),
        ``method``, ``rollouts`` (used for this solution), ``truncated_rollouts`` (of those, cut by
        ``config.lengths.rollout_tokens``) and ``full_mc_rollouts`` (what MC on every step would
        have used). Empty solutions are kept with no steps and no labels.
    """
    from datasets import Dataset
    from tqdm.auto import tqdm

    config = config or LabelConfig()
    if len(solutions) != len(problems):
        raise ValueError(f"got solutions for {len(solutions)} problems but {len(problems)} problems; pass one list each")
    items = [_Item(p, task, text or "") for p, texts in zip(problems, solutions) for text in texts]
    full_mc = [sum(v is None for v in item.soft) * config.rollouts for item in items]
    total = sum(full_mc) // config.rollouts
    with tqdm(total=total, desc=f"labels ({config.method})", unit="prefix", disable=not progress) as bar:
        if config.method == "mc":
            _label_mc(policy, task, items, config, bar)
        else:
            bar.total = None
            _label_binary(policy, task, items, config, bar)
    rows = {
        "problem_id": [it.problem.id for it in items],
        "question": [it.problem.question for it in items],
        "answer": [it.problem.answer for it in items],
        "prompt": [it.prompt for it in items],
        "steps": [list(it.steps) for it in items],
        "soft_labels": [it.labels() for it in items],
        "hard_labels": [[1.0 if v > 0 else 0.0 for v in it.labels()] for it in items],
        "correct": [bool(it.correct) for it in items],
        "method": [config.method] * len(items),
        "rollouts": [it.rollouts for it in items],
        "truncated_rollouts": [it.truncated for it in items],
        "full_mc_rollouts": full_mc,
    }
    used, full = sum(rows["rollouts"]), sum(full_mc)
    logger.info(
        "labelled %d solutions with %s: %d rollouts (full MC: %d, saved %.0f%%)",
        len(items), config.method, used, full, 100 * (1 - used / full) if full else 0.0,
    )
    return Dataset.from_dict(rows)


def save_labels(dataset, path: str | Path, *, overwrite: bool = False, config: LabelConfig | None = None) -> Path:
    """Persist a label dataset with ``save_to_disk`` as a library output of kind "labels".

    Written through a temporary folder and a rename (``roadmap.core.outputs.StagedOutput``). An
    existing ``path`` that is not a label set the library wrote is refused (``OutputExistsError``;
    ``overwrite`` admits another kind of library output, never files the library did not write).
    ``config`` (the labelling settings) is recorded in the marker.
    """
    provenance = {"rows": len(dataset), "fingerprint": getattr(dataset, "_fingerprint", None),
                  "label_config": asdict(config) if config is not None else None}
    with StagedOutput(path, "labels", overwrite=overwrite, config=provenance) as stage:
        dataset.save_to_disk(str(stage.path))
        return stage.finish()


def load_labels(path: str | Path):
    """Load a label dataset written by ``save_labels``, with a clear error when it is not one."""
    from datasets import load_from_disk

    p = Path(path)
    if not (p / "dataset_info.json").exists() and not (p / "state.json").exists():
        raise MissingPathError(
            f"{path} is not a label dataset (no state.json); create one with `roadmap label` or rewards.save_labels"
        )
    ds = load_from_disk(str(p))
    missing = {"prompt", "steps", "soft_labels", "hard_labels"} - set(ds.column_names)
    if missing:
        raise DataError(f"{path} lacks the label columns {sorted(missing)}; relabel it with `roadmap label`")
    return ds


def rollout_summary(dataset) -> dict[str, float]:
    """Rollouts used against what full MC would have used, and how many a length limit cut, over a label dataset.

    A dataset written before truncation was counted reports ``truncated_rollouts`` as 0.
    """
    used, full = sum(dataset["rollouts"]), sum(dataset["full_mc_rollouts"])
    cut = sum(dataset["truncated_rollouts"]) if "truncated_rollouts" in dataset.column_names else 0
    return {"rollouts": used, "full_mc_rollouts": full, "saved_fraction": 1 - used / full if full else 0.0,
            "truncated_rollouts": cut, "truncated_rate": cut / used if used else 0.0,
            "solutions": len(dataset), "steps": sum(len(s) for s in dataset["steps"]),
            "mean_steps": sum(len(s) for s in dataset["steps"]) / max(1, len(dataset))}
