"""benchmarks/verified_soundness.py: sound vs lucky answer-verified data, and whether a PRM tells them apart."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from roadmap.core.types import StepScorer

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("verified_soundness", ROOT / "benchmarks" / "verified_soundness.py")
vs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(vs)

SOUND = "72+49=121\n121-18=103\n103-84=19\nAnswer: 19"
LUCKY = "72+49=122\n122-18=103\n103-84=19\nAnswer: 19"  # two slips that cancel
WRONG = "72+49=121\n121-18=103\n103-84=20\nAnswer: 20"


class ScoreBy(StepScorer):
    """Scores each text by a lookup (a PRM that sees the slips, or one that does not)."""

    def __init__(self, table: dict[str, float]) -> None:
        self.table = table

    def score(self, problem, texts):
        return [self.table[t] for t in texts]


def _row(pid, candidates):
    return {"problem_id": pid, "question": "72+49-18-84", "reference": "19", "candidates": candidates,
            "candidate_correct": [t != WRONG for t in candidates]}


def test_soundness_counts_lucky_data_and_a_prm_that_sees_slips_picks_the_sound(arith_task):
    rows = [_row("a", [LUCKY, SOUND]), _row("b", [LUCKY, WRONG]), _row("c", [WRONG])]
    seeing = vs.soundness(arith_task, rows, ScoreBy({SOUND: 0.9, LUCKY: 0.2, WRONG: 0.1}), threshold=0.5,
                          thresholds=(0.1, 0.95))
    assert (seeing["verified"], seeing["sound"], seeing["lucky"], seeing["problems_with_verified"]) == (3, 1, 2, 2)
    assert seeing["sound_share"] == 1 / 3 and seeing["auc"] == 1.0
    assert seeing["kept"] == {"sound": 1.0, "lucky": 0.0}
    assert (seeing["picked"]["first"]["sound"], seeing["picked"]["first"]["of"]) == (0, 2)  # the search put LUCKY first
    assert (seeing["picked"]["prm_best"]["sound"], seeing["picked"]["prm_best"]["of"]) == (1, 1)
    low, high = seeing["curve"]
    assert low["kept"] == {"sound": 1.0, "lucky": 1.0} and low["prm_best"]["of"] == 2  # a floor of 0.1 keeps both
    assert high["kept"] == {"sound": 0.0, "lucky": 0.0} and high["prm_best"]["of"] == 0

    blind = vs.soundness(arith_task, rows, ScoreBy({SOUND: 0.9, LUCKY: 0.9, WRONG: 0.1}), threshold=0.5)
    assert blind["auc"] == 0.5 and blind["kept"] == {"sound": 1.0, "lucky": 1.0}
    assert "auc" not in vs.soundness(arith_task, rows)  # no PRM: the soundness alone
