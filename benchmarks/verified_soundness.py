"""How sound is the data answer-filtered learning trains on, and can a PRM tell the sound from the lucky?

    python benchmarks/verified_soundness.py --trees RUN/iter_1/search/trees.jsonl --prm PRM --out OUT.json

Reads a train-time search's ``trees.jsonl`` (``roadmap search``, or a loop's ``iter_k/search/``) and takes every
answer-verified candidate: what expert iteration may learn. The task's step checker (``task.step_labels``) marks
each one sound (every step right) or lucky (a right answer through wrong steps, e.g. slips that cancel). With
``--prm`` a process reward model scores each candidate (its weakest step, the ``min`` aggregation the loop's
``min_step_score`` filter uses), and the report gives:

* ``sound_share``: the share of verified candidates that are sound (what ``roadmap.app.train_search``'s
  ``verified_steps_right`` reports in a search's summary);
* ``auc``: the PRM's ROC-AUC at telling sound from lucky verified candidates (0.5: it cannot);
* ``kept``: at ``--threshold`` (the filter's floor), the share of sound and of lucky candidates it keeps;
* ``picked``: per problem with a verified candidate, how often the one learned is sound: the search's first
  (expert iteration without a filter) against the PRM's best above the floor (with it);
* ``curve`` (``--thresholds``): ``kept`` and the PRM's picks at each of several floors.

The step checker only measures here; nothing it says chooses data.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def soundness(task, rows, scorer=None, threshold: float = 0.5, thresholds: tuple[float, ...] = ()) -> dict:
    """The report of the module docstring for ``rows`` (``trees.jsonl``'s), scored by ``scorer`` when given; with
    ``thresholds`` also ``curve``, what each floor would keep and pick."""
    from roadmap.core.stats import roc_auc, wilson_interval
    from roadmap.core.types import Problem

    problems, texts, sound = [], [], []
    for r in rows:
        good = [t for t, ok in zip(r["candidates"], r["candidate_correct"]) if ok]
        if good:
            p = Problem(id=r["problem_id"], question=r["question"], answer=r["reference"])
            problems.append(p)
            texts.append(good)
            sound.append([all(task.step_labels(p, t)) for t in good])
    flat = [x for xs in sound for x in xs]
    n_sound = sum(flat)
    out = {"rows": len(rows), "problems_with_verified": len(problems), "verified": len(flat),
           "sound_share": n_sound / len(flat) if flat else None, "sound": n_sound, "lucky": len(flat) - n_sound,
           "picked": {"first": {"sound": sum(s[0] for s in sound), "of": len(sound),
                                "ci95": list(wilson_interval(sum(s[0] for s in sound), len(sound)))}}}
    if scorer is None:
        return out
    from search import score_many

    scores = score_many(scorer, problems, texts)
    flat_scores = [x for xs in scores for x in xs]
    out["auc"] = roc_auc(flat_scores, flat) if 0 < n_sound < len(flat) else None
    out["mean_score"] = {"sound": _mean([x for x, ok in zip(flat_scores, flat) if ok]),
                         "lucky": _mean([x for x, ok in zip(flat_scores, flat) if not ok])}

    def at(t: float) -> dict:
        kept_sound = sum(x >= t for x, ok in zip(flat_scores, flat) if ok)
        kept_lucky = sum(x >= t for x, ok in zip(flat_scores, flat) if not ok)
        best = []
        for sc, ok in zip(scores, sound):
            above = [(x, s) for x, s in zip(sc, ok) if x >= t]
            if above:
                best.append(max(above, key=lambda z: z[0])[1])
        return {"threshold": t, "kept": {"sound": kept_sound / n_sound if n_sound else None,
                                         "lucky": kept_lucky / (len(flat) - n_sound) if len(flat) > n_sound else None},
                "prm_best": {"sound": sum(best), "of": len(best),
                             "ci95": list(wilson_interval(sum(best), len(best))) if best else None}}

    chosen = at(threshold)
    out["threshold"], out["kept"] = threshold, chosen["kept"]
    out["picked"]["prm_best"] = chosen["prm_best"]
    out["curve"] = [at(t) for t in thresholds]
    return out


def _mean(xs: list[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trees", required=True, help="a search's trees.jsonl")
    ap.add_argument("--prm", default=None, help="a PRM folder (roadmap train-prm) to score the verified candidates")
    ap.add_argument("--task", default="arith", help="the task whose step checker marks sound candidates")
    ap.add_argument("--threshold", type=float, default=0.5, help="the filter's floor (min_step_score)")
    ap.add_argument("--thresholds", default="", help="comma-separated floors for the curve, e.g. 0.8,0.85,0.9")
    ap.add_argument("--out", required=True, help="the report (JSON)")
    args = ap.parse_args(argv)

    from roadmap.core.io import write_json
    from roadmap.core.tasks import get_task
    from search.trees import read_trees

    task = get_task(args.task)
    if getattr(task, "step_labels", None) is None:
        ap.error(f"--task {args.task} has no step checker (step_labels); soundness cannot be measured")
    scorer = None
    if args.prm:
        from rewards import load_step_scorer

        scorer = load_step_scorer(args.prm, task, "min", batch_size=256)
    report = {"trees": args.trees, "prm": args.prm, "task": args.task,
              **soundness(task, read_trees(args.trees), scorer, args.threshold,
                            tuple(float(x) for x in args.thresholds.split(",") if x))}
    write_json(args.out, report)
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
