"""Held-out measures of a reward model being trained (``rewards.prm_training``).

- ``step_auc_metrics``: the step-level ROC-AUC of the Trainer's evaluation (labels at step ends), the
  measure ``keep_best`` chooses checkpoints by;
- ``selection_auc``: the chance that a right solution outscores a wrong one *of the same problem*, over the
  held-out problems whose solutions are mixed (``roadmap.core.stats.within_group_auc``). Selection among a
  problem's samples (best-of-N, weighted voting, search) needs this one. A step AUC can be high while it is
  below one half: the scores then rank easy problems above hard ones, not right solutions above wrong ones
  (measured on a self-made PRM: step AUC 0.80, within-problem 0.47; ``docs/benchmarks/self_prm.md``).
"""

from __future__ import annotations

from rewards.prm import ProcessRewardModel, aggregate

__all__ = ["step_auc_metrics", "held_out_metrics", "selection_auc", "problem_key"]


def problem_key(row) -> str:
    """The problem a labelled row belongs to: its ``problem_id``, else its prompt."""
    return str(row.get("problem_id") or "") or row["prompt"]


def step_auc_metrics(pred) -> dict[str, float]:
    """``compute_metrics`` of the Trainer: the held-out step ROC-AUC (NaN when one class is absent)."""
    import numpy as np

    from roadmap.core.stats import roc_auc

    logits = np.asarray(pred.predictions).reshape(-1)
    labels = np.asarray(pred.label_ids).reshape(-1)
    keep = labels >= 0
    y, s = labels[keep] >= 0.5, logits[keep]
    try:
        return {"auc": roc_auc(s.tolist(), y.tolist())}
    except ValueError:
        return {"auc": float("nan")}


def held_out_metrics(rows, how: str = "min"):
    """``compute_metrics`` of the Trainer over the held-out ``rows`` (in the evaluation's order): the step ROC-AUC
    (``step_auc_metrics``) and, read off the same predictions rather than a second scoring pass, the within-problem
    AUC of each solution's ``how`` ("min" for a PRM, "last" for an ORM) step score against its final verdict
    (``selection_auc``, NaN when no problem is mixed) and the number of mixed problems (``selection_problems``).
    The predictions are per-position scores (a step-end logit or a prefix log score): both order solutions as the
    scored probabilities do."""
    import numpy as np

    from roadmap.core.stats import within_group_auc

    keys, verdicts = [problem_key(r) for r in rows], [r.get("correct") for r in rows]

    def metrics(pred) -> dict[str, float]:
        out = step_auc_metrics(pred)
        scores, labels = np.asarray(pred.predictions), np.asarray(pred.label_ids)
        judged = labels >= 0
        picked, ys, groups = [], [], []
        for i, (key, verdict) in enumerate(zip(keys, verdicts)):
            steps = np.flatnonzero(judged[i])
            if verdict is None or not len(steps):
                continue
            picked.append(float(scores[i, steps].min() if how == "min" else scores[i, steps[-1]]))
            ys.append(bool(verdict))
            groups.append(key)
        within, mixed = within_group_auc(picked, ys, groups) if picked else (None, 0)
        return {**out, "selection_auc": float("nan") if within is None else within, "selection_problems": mixed}

    return metrics


def selection_auc(rm: ProcessRewardModel, rows) -> tuple[float | None, int]:
    """(within-problem AUC of the solutions' min step score against their final correctness, mixed problems).

    ``rows`` are training rows of held-out problems with ``prompt``, ``steps``, ``correct`` and ``problem_id``;
    rows without a ``correct`` verdict are skipped. ``(None, 0)`` when no problem has both a right and a wrong
    solution.
    """
    from roadmap.core.stats import within_group_auc

    rows = [r for r in rows if r.get("correct") is not None and r.get("steps")]
    if not rows:
        return None, 0
    scores = rm.step_scores([r["prompt"] for r in rows], [rm.step_delimiter.join(r["steps"]) for r in rows])
    how = "last" if rm.kind == "orm" else "min"
    return within_group_auc([aggregate(s, how) for s in scores], [bool(r["correct"]) for r in rows],
                            [problem_key(r) for r in rows])
