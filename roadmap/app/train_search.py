"""Train-time search: run a search method over training problems and persist its trees for learning.

Problems are searched in shards; each shard is written atomically to ``shards/NNNNN.jsonl`` as
soon as it finishes, beside a record of the settings and inputs that made it, and a rerun skips
the shards on disk whose record matches (and refuses stale ones), so a killed search resumes
where it stopped. When all shards exist they are joined into ``trees.jsonl`` (one row per
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

from roadmap.core.errors import ConfigError, DataError, StaleOutputError
from roadmap.core.integrity import damage, digest, read_sealed_json, write_sealed_json
from roadmap.core.io import json_fingerprint, write_json
from roadmap.core.lengths import Lengths
from roadmap.core.outputs import claim_output_dir, holds_only
from roadmap.core.types import Problem, Usage

logger = logging.getLogger(__name__)

__all__ = ["TrainSearchConfig", "search_train", "TREES_FILE"]

TREES_FILE = "trees.jsonl"
#: the key of a shard's provenance record that holds the size and sha256 of the shard as written
WRITTEN = "written"


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

    Each shard ``shards/NNNNN.jsonl`` has a ``NNNNN.provenance.json`` beside it (written first):
    the config, the task, a fingerprint of the shard's problems and the inputs. A rerun reuses a
    shard only when its provenance matches; otherwise ``StaleOutputError`` names the setting.
    """
    from roadmap.core.distributed import Shard, Workers, run_shards
    from search.trees import read_trees, write_trees

    config = config or TrainSearchConfig()
    workers = workers or Workers()
    has_scorer = "scorer" in workers.provides if workers.remote else scorer is not None
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"out_dir {str(out)!r} is a file; pass a folder for shards/ and trees.jsonl")
    if not problems:
        raise ConfigError("problems is empty; train-time search needs at least one problem (n >= 1)")
    claim_output_dir(out, "search", legacy=legacy_search_dir)
    shard_dir = out / "shards"
    shard_dir.mkdir(parents=True, exist_ok=True)
    if not has_scorer and verifier is None and not (config.method == "mcts" and config.mcts_evaluation == "rollout"):
        raise ConfigError(f"method={config.method!r} needs a scorer or a verifier to guide it; pass one")
    n_shards = (len(problems) + config.shard_size - 1) // config.shard_size
    shards = [list(problems[s * config.shard_size : (s + 1) * config.shard_size]) for s in range(n_shards)]
    base = {"task": task.name, **asdict(config), **dict(inputs or {}),
            "scorer": dict(scorer_inputs or {}) if has_scorer else None}
    wanted = [{**base, "shard": s, "problems": len(part),
               "problems_fingerprint": json_fingerprint([(p.id, p.question, p.answer) for p in part])}
              for s, part in enumerate(shards)]
    reuse = [_reusable(shard_dir, s, wanted[s], overwrite) for s in range(n_shards)]  # all checked before work
    t0 = time.perf_counter()
    todo = [Shard(s, (task, shards[s], config.method, config.budget_for(config.seed + s * config.shard_size),
                      verifier), len(shards[s])) for s in range(n_shards) if not reuse[s]]
    if todo and scorer is not None:
        from roadmap.app.evaluate import check_scorer_context

        check_scorer_context(scorer, problems, config.method, config.lengths)
    for shard in todo:  # first: a shard on disk always has its record
        write_sealed_json(_provenance_path(shard_dir, shard.key), wanted[shard.key])

    def write(s: int, rows: list[dict]) -> None:
        path = write_trees(rows, shard_dir / f"{s:05d}.jsonl")
        # the shard's size and sha256 go into its record, so a rerun can tell it is still what was written
        write_sealed_json(_provenance_path(shard_dir, s), {**wanted[s], WRITTEN: digest(path)})

    run_shards(todo, search_shard, workers, local={"policy": policy, "scorer": scorer}, on_result=write,
               desc=f"search {config.method}@{config.budget}", progress=progress,
               initial=len(problems) - sum(x.weight for x in todo), total=len(problems))
    done = sum(x.weight for x in todo)
    rows = [row for s in range(n_shards) for row in read_trees(shard_dir / f"{s:05d}.jsonl")]
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
        "candidates": candidates, "truncated": truncated, "truncated_rate": truncated / candidates if candidates else 0.0,
        "usage": usage.to_dict(), "searched_now": done, "wall_seconds": time.perf_counter() - t0,
        "config": asdict(config),
    }
    write_json(out / "summary.json", summary)
    return summary


def search_shard(resources: dict[str, Any], payload) -> list[dict[str, Any]]:
    """Search one shard (``run_shards`` job): its ``result_row`` rows."""
    from search.registry import get_search
    from search.trees import result_row

    task, part, method, budget, verifier = payload
    results = get_search(method)(resources["policy"], task, part, resources.get("scorer"), budget, verifier=verifier)
    return [result_row(task, p, r, method) for p, r in zip(part, results)]


def _provenance_path(shard_dir: Path, s: int) -> Path:
    return shard_dir / f"{s:05d}.provenance.json"


def _reusable(shard_dir: Path, s: int, wanted: dict, overwrite: bool) -> bool:
    """Whether shard ``s`` on disk was made by these settings and is what was written; a stale one is refused
    (or, with ``overwrite``, left to be redone), a damaged one is named in a warning and searched again."""
    shard = shard_dir / f"{s:05d}.jsonl"
    if not shard.exists():
        return False
    record = _provenance_path(shard_dir, s)
    recorded, why = read_sealed_json(record) if record.exists() else (None, None)
    if why is not None:  # a damaged record: its shard cannot be trusted
        logger.warning("%s %s; its shard is searched again", record, why)
        return False
    written = (recorded or {}).pop(WRITTEN, None)
    if recorded == wanted:
        why = damage(shard, written) if written else None
        if why is not None:
            logger.warning("%s %s; that shard is searched again", shard, why)
            return False
        return _whole(shard, wanted["problems"])
    if not overwrite:
        raise StaleOutputError.mismatch(f"{shard}", recorded, wanted)
    return False


def _whole(path: Path, problems: int) -> bool:
    """Whether the finished shard ``path`` holds one readable row per problem (the check of a shard written
    before its record held a digest); if not, say so: it is searched again rather than silently covering fewer."""
    from search.trees import read_trees

    try:
        rows = len(read_trees(path))
    except (DataError, OSError) as err:
        logger.warning("%s; that shard is searched again", err)
        return False
    if rows != problems:
        logger.warning("%s holds %d of its %d rows (emptied or truncated); that shard is searched again", path, rows,
                       problems)
        return False
    return True


def legacy_search_dir(folder: Path) -> bool:
    """Whether ``folder`` (with no marker) is a search folder from before markers: its shards/ (made first), and
    nothing but its own files."""
    return (folder / "shards").is_dir() and holds_only(folder, ("shards", "trees.jsonl", "summary.json"))


def load_summary(out_dir: str | Path) -> dict[str, Any]:
    """The summary of a finished train-time search."""
    return json.loads((Path(out_dir) / "summary.json").read_text())
