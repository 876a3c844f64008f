"""roadmap quickstart, shrunk to seconds: it trains, caches the policy, evaluates and reports."""

from __future__ import annotations

import json

import pytest

from roadmap.app.quickstart import QuickstartConfig, cache_dir, run_quickstart


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
    config = QuickstartConfig(out=str(tmp_path / "qs"), sft_steps=5, n_eval=8, n_majority=4, majority_samples=2,
                              loop_problems=2, loop_budget=2)
    summary = run_quickstart(config, say=said.append)
    assert summary["sft"]["steps"] == 5 and summary["sft"]["completed"]
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


@pytest.mark.slow
def test_a_warm_start_cut_short_by_its_time_cap_is_reported_and_never_cached(monkeypatch, tmp_path):
    monkeypatch.setenv("O1_ROADMAP_CACHE", str(tmp_path / "cache"))
    said: list[str] = []
    config = QuickstartConfig(out=str(tmp_path / "qs"), sft_steps=40, minutes=0.001, n_eval=4, n_majority=2,
                              majority_samples=2, loop_problems=0)
    summary = run_quickstart(config, say=said.append)
    assert summary["sft"]["completed"] is False and summary["sft"]["stopped_by"] == "time_cap"
    assert summary["sft"]["steps"] < 40
    assert any(s.startswith("WARNING: the warm start stopped") for s in said)
    assert summary["policy"] == str(tmp_path / "qs" / "policy-incomplete")
    assert not list((tmp_path / "cache").glob("quickstart-*/policy"))

    said.clear()
    run_quickstart(config, say=said.append)  # nothing cached: it trains again rather than reuse a cut-short policy
    assert not any("reusing" in s for s in said)
