"""benchmarks/ei_cause.py: the three arms' training rows come from the right text and the right problems."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("ei_cause", ROOT / "benchmarks" / "ei_cause.py")
ei_cause = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ei_cause)

LUCKY = "72+49=122\n122-18=103\n103-84=19\nAnswer: 19"


def test_each_arm_trains_on_its_own_text_and_problems(arith_task):
    rows = [{"problem_id": f"p{i}", "question": q, "reference": a, "prompt": f"Q{i}", "candidates": [c],
             "candidate_correct": [ok]}
            for i, (q, a, c, ok) in enumerate([("72+49-18-84", "19", LUCKY, True), ("1+2", "3", "1+2=4\nAnswer: 4", False),
                                               ("5-3", "2", "5-3=2\nAnswer: 2", True)])]
    own = ei_cause.arm_rows(arith_task, rows, "own")
    assert [r[2] for r in own] == ["p0", "p2"] and own[0][1].startswith(LUCKY)  # the policy's text, slips and all
    kept = ei_cause.arm_rows(arith_task, rows, "perfect_kept")
    assert [r[2] for r in kept] == ["p0", "p2"] and kept[0][1].startswith("72+49=121\n121-18=103\n103-84=19")
    drawn = ei_cause.arm_rows(arith_task, rows, "perfect_random")
    assert len(drawn) == 2 and all(arith_task.answers_match(arith_task.extract_answer(c), r["reference"])
                                   for (_, c, pid), r in ((d, next(x for x in rows if x["problem_id"] == d[2]))
                                                          for d in drawn))
