"""Train-time search: run a search method over training problems and persist its trees for learning.

Problems are searched in shards (``roadmap.core.distributed.ShardedJob``); each shard is written atomically to
``shards/NNNNN.json`` as soon as it finishes, sealed, with a record of the settings and inputs that made it, and a
rerun skips the shards on disk whose record matches (and refuses stale ones), so a killed search resumes where it
stopped. When all shards exist they are joined into ``trees.jsonl`` (one row per
problem, see ``search.trees.result_row``) and ``summary.json`` records accuracy, compute and the
candidates a length limit cut (``TrainSearchConfig.lengths``).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from roadmap.core.errors import ConfigError
from roadmap.core.io import write_json
from roadmap.core.lengths import Lengths
from roadmap.core.outputs import claim_output_dir, holds_only
from roadmap.core.types import Problem, Usage

logger = logging.getLogger(__name__)

__all__ = ["TrainSearchConfig", "search_train", "verified_steps_right", "TREES_FILE"]

TREES_FILE = "trees.jsonl"


@dataclass
class TrainSearchConfig:
    """What train-time search runs."""

    method: str = field(default="mcts", metadata={"help": "A search method of search.registry (bon, beam, mcts, ...)."})
    budget: int = field(default=16, metadata={"help": "Solutions (bon), beams (beam, dvts) or simulations (mcts) per problem; see search.registry."})
    width: int = field(default=4, metadata={"help": "Beam width M, or children per MCTS expansion."})
    mcts_evaluation: str = field(default="rollout", metadata={"help": "MCTS leaf values: scorer | rollout | both."})
    temperature: float = field(default=1.0, metadata={
        "help": "Sampling temperature of the search. Below 1 the samples make fewer step errors, so fewer "
                "answer-verified solutions reach the right answer through cancelling mistakes."})
    shard_size: int = field(default=64, metadata={"help": "Problems per shard (the unit of resume)."})
    seed: int = field(default=0, metadata={"help": "Search seed; shard s uses seed + s * shard_size."})
    lengths: Lengths = field(default_factory=Lengths, metadata={
        "help": "Length limits of the search (in a recipe: the top-level lengths: section)."})

    def __post_init__(self) -> None:
        from search.registry import get_search

        get_search(self.method)  # names the registered methods when it is not one
        if self.temperature < 0:
            raise ConfigError(f"temperature={self.temperature} must be >= 0 (0 is greedy)")
        if self.budget < 1 or self.width < 1 or self.shard_size < 1:
            raise ConfigError(f"budget={self.budget}, width={self.width} and shard_size={self.shard_size} must be >= 1")
        self.budget_for(0)  # validates mcts_evaluation

    def budget_for(self, seed: int):
        """The ``search.SearchBudget`` of one shard searched with ``seed``."""
        from search.registry import SearchBudget

        return SearchBudget(budget=self.budget, width=self.width, seed=seed, temperature=self.temperature,
                            mcts_evaluation=self.mcts_evaluation, lengths=self.lengths)


def search_train(
    policy, task, problems: Sequence[Problem], out_dir: str | Path, config: TrainSearchConfig | None = None, *,
    scorer=None, verifier=None, progress: bool = True, inputs: Mapping[str, Any] | None = None,
    scorer_inputs: Mapping[str, Any] | None = None, overwrite: bool = False, workers=None,
) -> dict[str, Any]:
    """Search ``problems`` shard by shard into ``out_dir``; return the summary (also in summary.json).

    Args:
        scorer: ``StepScorer`` guiding the search (a PRM); may be None for MCTS with rollouts.
        verifier: ``StepScorer`` judging finished solutions (``rewards.VerifierScorer``); MCTS
            uses it on rollouts and terminal leaves. When ``scorer`` is None it also guides
            best-of-N and beam search (train time may look at the answer).
        inputs: what identifies the policy (e.g. ``{"policy": folder_fingerprint(dir)}``);
            ``scorer_inputs`` the same for the scorer. Both go into every shard's provenance.
        overwrite: redo shards whose provenance differs instead of refusing them.
        workers: ``roadmap.core.distributed.Workers``; with ``n > 1`` (or an address) the shards run on
            Ray actors that load their own policy and scorer (``policy`` and ``scorer`` may then be None:
            ``workers.provides`` says whether a "scorer" exists). The shards, their seeds and so their
            bytes do not depend on the number of workers.

    Each finished shard is a sealed JSON file ``shards/NNNNN.json`` (``roadmap.core.distributed.ShardedJob``): its
    rows beside its provenance (the config, the task, the shard's seed, a fingerprint of its problems and the
    inputs). A rerun reuses a shard only when its provenance matches; otherwise ``StaleOutputError`` names the
    setting. A shard that is not what was written (emptied, cut, garbled) is named in a warning and searched again.
    """
    from roadmap.core.distributed import ShardedJob, Workers
    from search.trees import write_trees

    config = config or TrainSearchConfig()
    workers = workers or Workers()
    has_scorer = "scorer" in workers.provides if workers.remote else scorer is not None
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"out_dir {str(out)!r} is a file; pass a folder for shards/ and trees.jsonl")
    if not problems:
        raise ConfigError("problems is empty; train-time search needs at least one problem (n >= 1)")
    if not has_scorer and verifier is None and not (config.method == "mcts" and config.mcts_evaluation == "rollout"):
        raise ConfigError(f"method={config.method!r} needs a scorer or a verifier to guide it; pass one")
    claim_output_dir(out, "search", legacy=legacy_search_dir)
    shard_dir = out / "shards"
    _warn_old_shards(shard_dir)
    if scorer is not None:
        from roadmap.app.evaluate import check_scorer_context

        check_scorer_context(scorer, problems, config.method, config.lengths)
    base = {"task": task.name, **asdict(config), **dict(inputs or {}),
            "scorer": dict(scorer_inputs or {}) if has_scorer else None}
    job = ShardedJob(search_shard, base, folder=shard_dir, overwrite=overwrite,
                     desc=f"search {config.method}@{config.budget}")
    t0 = time.perf_counter()
    ran: list[int] = []
    shards = job.run(problems, config.shard_size,
                     lambda start, part: SearchShardJob(task, part, config.method,
                                                        config.budget_for(config.seed + start), verifier),
                     workers, local={"policy": policy, "scorer": scorer},
                     extra=lambda start: {"shard_seed": config.seed + start}, progress=progress, ran=ran)
    done = sum(len(shards[s]["rows"]) for s in ran)
    rows = [row for shard in shards for row in shard["rows"]]
    write_trees(rows, out / TREES_FILE)
    usage = Usage()
    for r in rows:
        usage = usage + Usage(**r["usage"])
    n = len(rows)
    candidates, truncated = sum(len(r["candidates"]) for r in rows), sum(r.get("truncated", 0) for r in rows)
    summary = {
        "method": config.method, "budget": config.budget, "problems": n,
        "accuracy": sum(r["correct"] for r in rows) / n if n else 0.0,
        "any_correct": sum(any(r["candidate_correct"]) for r in rows) / n if n else 0.0,
        "verified_candidates": sum(sum(r["candidate_correct"]) for r in rows),
        "verified_steps_right": verified_steps_right(task, rows),
        "candidates": candidates, "truncated": truncated, "truncated_rate": truncated / candidates if candidates else 0.0,
        "usage": usage.to_dict(), "searched_now": done, "wall_seconds": time.perf_counter() - t0,
        "config": asdict(config),
    }
    write_json(out / "summary.json", summary)
    return summary


def verified_steps_right(task, rows: Sequence[dict[str, Any]]) -> float | None:
    """The share of answer-verified candidates in ``rows`` (``trees.jsonl``'s) whose every step the task's step
    checker (``task.step_labels``) calls right: how much of what answer-filtered learning would train on is sound
    work rather than errors that cancel. None for a task without a step checker, or with no verified candidate.
    The checker only measures the data here; it never chooses it."""
    check = getattr(task, "step_labels", None)
    if check is None:
        return None
    right = total = 0
    for r in rows:
        problem = Problem(id=r["problem_id"], question=r["question"], answer=r["reference"])
        for text, ok in zip(r["candidates"], r["candidate_correct"]):
            if ok:
                total += 1
                right += all(check(problem, text))
    return right / total if total else None


@dataclass(frozen=True)
class SearchShardJob:
    """What one shard of ``search_train`` searches, and how."""

    task: Any
    problems: Sequence[Problem]
    method: str
    budget: Any  # search.SearchBudget, with the shard's seed
    verifier: Any = None


def search_shard(resources: dict[str, Any], job: SearchShardJob) -> dict[str, Any]:
    """Search one shard (a ``ShardedJob`` function): its ``result_row`` rows."""
    from search.registry import get_search
    from search.trees import result_row

    results = get_search(job.method)(resources["policy"], job.task, job.problems, resources.get("scorer"), job.budget,
                                     verifier=job.verifier)
    return {"rows": [result_row(job.task, p, r, job.method) for p, r in zip(job.problems, results)]}


def _warn_old_shards(shard_dir: Path) -> None:
    """Name the shards an older version left (``NNNNN.jsonl`` beside ``NNNNN.provenance.json``): they are kept, but
    not reused, so their problems are searched again."""
    old = sorted(shard_dir.glob("*.provenance.json")) if shard_dir.is_dir() else []
    if old:
        logger.warning("%s holds %d shard(s) in the layout before 2026-12-07 (NNNNN.jsonl); they are kept but not "
                       "reused, so their problems are searched again", shard_dir, len(old))


def legacy_search_dir(folder: Path) -> bool:
    """Whether ``folder`` (with no marker) is a search folder from before markers: its shards/ (made first), and
    nothing but its own files."""
    return (folder / "shards").is_dir() and holds_only(folder, ("shards", "trees.jsonl", "summary.json"))


def load_summary(out_dir: str | Path) -> dict[str, Any]:
    """The summary of a finished train-time search."""
    return json.loads((Path(out_dir) / "summary.json").read_text())
