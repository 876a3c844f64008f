"""Sampling and step labelling in resumable shards, in this process or on Ray actors.

``label_problems`` cuts the problems into shards of ``shard_size``; shard s (problems
``[start, stop)``) samples its solutions and labels their steps with the seed ``seed + start``, so
its rows depend on the problems alone, never on how many workers run (``roadmap.core.distributed``).
Each finished shard is written atomically to the hidden ``.<name>.shards/NNNNN.json`` beside ``out`` with the settings that
made it; a rerun reuses the shards whose settings match (a stale one is refused, or redone with
``overwrite``), so a killed run redoes only its unfinished shards. The joined dataset is what
``label_solutions`` returns, written by ``save_labels``; the shard folder is removed once it is saved.
A run with ``shard_size >= len(problems)`` gives exactly the labels of one ``sample_solutions`` +
``label_solutions`` call with ``seed``.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from rewards.labels import LabelConfig, label_solutions, sample_solutions, save_labels
from roadmap.core.errors import ConfigError
from roadmap.core.lengths import Lengths
from roadmap.core.types import Problem

__all__ = ["label_problems", "label_shard", "shards_dir"]


def shards_dir(out: str | Path) -> Path:
    """The folder of a label run's finished shards, beside its output folder."""
    out = Path(out)
    return out.with_name(f".{out.name}.shards")


def label_shard(resources: dict[str, Any], payload) -> dict[str, Any]:
    """Sample and label one shard (a ``run_shards`` job): the dataset's columns and the tokens spent."""
    task, part, samples, temperature, lengths, config = payload
    policy = resources["policy"]
    completer = resources.get("completer", policy)
    before, rolled = policy.usage.copy(), completer.usage.copy()
    solutions = sample_solutions(policy, task, part, samples, temperature=temperature, lengths=lengths,
                                 seed=config.seed)
    dataset = label_solutions(completer, task, part, solutions, config, progress=False)
    spent = policy.usage - before
    if completer is not policy:
        spent = spent + (completer.usage - rolled)
    return {"rows": dataset.to_dict(), "generated_tokens": spent.generated_tokens,
            "prefill_tokens": spent.prefill_tokens}


def label_problems(
    task, problems: Sequence[Problem], out: str | Path, *, samples: int, config: LabelConfig | None = None,
    temperature: float = 1.0, lengths: Lengths | None = None, shard_size: int = 64, policy=None, completer=None,
    workers=None, inputs: Mapping[str, Any] | None = None, overwrite: bool = False, progress: bool = True,
):
    """Sample ``samples`` solutions per problem, label their steps, save the label set at ``out``.

    Args:
        policy, completer: the models of this process (``completer`` rolls out; default ``policy``);
            None when ``workers`` runs the shards on Ray actors (``workers.load`` builds them there).
        config: the labelling settings; its ``seed`` is the run's seed (shard s uses ``seed + start``).
        workers: ``roadmap.core.distributed.Workers`` (default: this process).
        inputs: what identifies the models (folder fingerprints), recorded in each shard.

    Returns:
        ``(dataset, usage)``: the ``datasets.Dataset`` (as ``label_solutions``) and the tokens
        generated and prefilled for it by the shards run now and before.
    """
    from datasets import Dataset

    from roadmap.core.distributed import ShardedJob, Workers

    config = config or LabelConfig()
    lengths = lengths or config.lengths
    workers = workers or Workers()
    folder = shards_dir(out)
    folder.mkdir(parents=True, exist_ok=True)
    base = {"task": task.name, "samples": samples, "temperature": temperature, "lengths": lengths.to_dict(),
            "label_config": asdict(config), **dict(inputs or {})}
    if not problems:
        raise ConfigError("problems is empty; labelling needs at least one problem (n >= 1)")
    local = {"policy": policy, **({"completer": completer} if completer is not None else {})}
    job = ShardedJob(label_shard, base, folder=folder, overwrite=overwrite, desc=f"labels ({config.method})")
    ordered = job.run(problems, shard_size, lambda start, part: (task, part, samples, temperature, lengths,
                                                                 replace(config, seed=config.seed + start)),
                      workers, local=local, progress=progress)
    columns = {k: [v for r in ordered for v in r["rows"][k]] for k in ordered[0]["rows"]}
    dataset = Dataset.from_dict(columns)
    save_labels(dataset, out, overwrite=overwrite, config=config)
    shutil.rmtree(folder, ignore_errors=True)
    usage = {k: sum(r[k] for r in ordered) for k in ("generated_tokens", "prefill_tokens")}
    return dataset, usage
