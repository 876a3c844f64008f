"""Outcome reward models: one score in [0, 1] for a complete solution, trained without humans.

Training data is the policy's own samples labelled by the task's checker: (solution, right?).
The objective is classification (binary cross-entropy on the solution's last token), not TRL's
pairwise ``RewardTrainer``: a StepScorer must return calibrated probabilities in [0, 1] that
compare across problems, which a Bradley-Terry score does not give, and many problems have
only right or only wrong samples, which pairs would drop. The ORM shares the PRM's model and
trainer (``rewards.prm``, ``rewards.prm_training``), with the whole solution as its single step (cf. Cobbe et al.,
arXiv 2110.14168, who train verifiers the same way).
"""

from __future__ import annotations

from collections.abc import Sequence

from rewards.prm_training import RewardModelConfig, train_reward_model
from roadmap.core.types import Problem

__all__ = ["orm_dataset", "orm_dataset_from_labels", "train_orm"]


def orm_dataset(task, problems: Sequence[Problem], solutions: Sequence[Sequence[str]]):
    """Rows for ORM training: each solution as one step, labelled by ``task``'s checker."""
    from datasets import Dataset

    if len(solutions) != len(problems):
        raise ValueError(f"got solutions for {len(solutions)} problems but {len(problems)} problems; pass one list each")
    items = [(p.id, task.prompt(p), text or "", task.is_correct(p, text or "")) for p, texts in zip(problems, solutions)
             for text in texts]
    return Dataset.from_dict(_rows(items))


def _rows(items) -> dict[str, list]:
    """Columns of ORM rows from (problem_id, prompt, solution text, correct) tuples."""
    rows: dict[str, list] = {k: [] for k in ("problem_id", "prompt", "steps", "soft_labels", "hard_labels", "correct")}
    for problem_id, prompt, text, correct in items:
        body, ok = text.strip(), float(bool(correct))
        rows["problem_id"].append(problem_id)
        rows["prompt"].append(prompt)
        rows["steps"].append([body] if body else [])
        rows["soft_labels"].append([ok] if body else [])
        rows["hard_labels"].append([ok] if body else [])
        rows["correct"].append(bool(ok))
    return rows


def train_orm(dataset, init, config: RewardModelConfig | None = None, *, step_delimiter: str = "\n", **kw):
    """Train an outcome reward model on ``orm_dataset`` rows; see ``rewards.prm_training.train_reward_model``.

    The default config reads the score at the solution's last token (``readout="step_end"``), the
    classic verifier; ``readout="tokens"`` makes it a product of per-token scores instead.
    """
    config = config or RewardModelConfig(output_dir="orm", labels="hard", readout="step_end")
    return train_reward_model(dataset, init, config, kind="orm", step_delimiter=step_delimiter, **kw)


def orm_dataset_from_labels(labels, step_delimiter: str = "\n"):
    """ORM rows from a step-label dataset (``rewards.labels``): each solution whole, labelled by ``correct``."""
    from datasets import Dataset

    items = [(ex["problem_id"], ex["prompt"], step_delimiter.join(ex["steps"]), ex["correct"]) for ex in labels]
    return Dataset.from_dict(_rows(items))
