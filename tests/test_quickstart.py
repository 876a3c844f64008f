"""roadmap quickstart, shrunk to seconds: it trains, caches the policy, evaluates and reports."""

from __future__ import annotations

import json

import pytest

from roadmap.quickstart import QuickstartConfig, cache_dir, run_quickstart


def test_cache_dir_honours_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("O1_ROADMAP_CACHE", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"
    monkeypatch.delenv("O1_ROADMAP_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert cache_dir() == tmp_path / "x" / "o1-roadmap"


@pytest.mark.slow
def test_quickstart_trains_once_then_reuses_the_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("O1_ROADMAP_CACHE", str(tmp_path / "cache"))
    said: list[str] = []
    config = QuickstartConfig(out=str(tmp_path / "qs"), minutes=0.1, n_eval=8, n_majority=4, majority_samples=2,
                              sft_problems=300, loop_problems=2, loop_budget=2)
    summary = run_quickstart(config, say=said.append)
    assert summary["sft"]["steps"] > 0
    assert {r["method"] for r in summary["eval"]} == {"greedy", "majority"}
    assert [r["iteration"] for r in summary["loop"]] == [0, 1]
    for name in ("summary.json", "eval_greedy.json", "sft_loss.png", "loop/report.md"):
        assert (tmp_path / "qs" / name).exists()
    assert json.loads((tmp_path / "qs" / "eval_greedy.json").read_text())["n"] == 8
    assert any("What to look at next" in s for s in said)
    assert list((tmp_path / "cache").glob("quickstart-*/policy/config.json"))

    said.clear()
    run_quickstart(config, say=said.append)
    assert any("reusing" in s for s in said)
