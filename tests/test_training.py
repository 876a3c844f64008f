"""roadmap.core.training: the staged-output trainer skeleton and its work budget, through the SFT trainer."""

from __future__ import annotations

import json
import logging
import os
import time

import pytest

from policy_init.sft import SFTResult, SFTWarmStartConfig, warm_start
from roadmap.core.outputs import OutputExistsError, read_marker
from roadmap.core.training import BudgetMixin, budget_lr_factor, check_model_dir, run_staged_training


def _sft(out, **kw) -> SFTWarmStartConfig:
    return SFTWarmStartConfig(output_dir=str(out), num_problems=400, batch_size=8, logging_steps=1,
                              **{"max_steps": 1, **kw})


def test_sft_into_a_users_folder_is_refused_and_deletes_nothing(tiny_dir, arith_task, tmp_path):
    out = tmp_path / "thesis"
    out.mkdir()
    (out / "notes.txt").write_text("notes")
    (out / "thesis.tex").write_text("\\section{}")
    for overwrite in (False, True):
        t0 = time.perf_counter()
        with pytest.raises(OutputExistsError, match="thesis.*notes.txt, thesis.tex"):
            warm_start(tiny_dir, arith_task, _sft(out, overwrite=overwrite))
        assert time.perf_counter() - t0 < 5  # refused before any training
    assert sorted(os.listdir(out)) == ["notes.txt", "thesis.tex"] and (out / "notes.txt").read_text() == "notes"
    assert not list(tmp_path.glob(".thesis.*"))


def test_overwrite_replaces_library_output_of_another_kind_and_reruns_replace_their_own(tiny_dir, arith_task,
                                                                                         tmp_path):
    from policy_init.tiny import TinyConfig, create_tiny

    out = create_tiny(arith_task, tmp_path / "o", TinyConfig(hidden_size=32, num_layers=1, num_heads=2,
                                                             intermediate_size=32))
    assert read_marker(out)["kind"] == "tiny"
    with pytest.raises(OutputExistsError, match="'tiny' output, not a 'policy' one.*--overwrite"):
        warm_start(tiny_dir, arith_task, _sft(out))
    assert read_marker(out)["kind"] == "tiny"
    warm_start(tiny_dir, arith_task, _sft(out, overwrite=True))
    marker = read_marker(out)
    assert marker["kind"] == "policy" and "tiny_config.json" not in marker["files"]
    assert not (out / "tiny_config.json").exists() and (out / "sft_result.json").exists()
    warm_start(tiny_dir, arith_task, _sft(out, max_steps=2))  # a rerun of the same kind needs no overwrite
    assert json.loads((out / "sft_result.json").read_text())["steps"] == 2


def test_a_time_capped_run_is_marked_incomplete_everywhere(tiny_dir, arith_task, tmp_path, caplog):
    out = tmp_path / "capped"
    with caplog.at_level(logging.WARNING):
        result = warm_start(tiny_dir, arith_task, _sft(out, max_steps=10_000, max_minutes=0.002))
    assert result.stopped_by == "time_cap" and result.completed is False
    assert 0 < result.steps < result.max_steps == 10_000
    assert "did NOT finish its budget" in caplog.text and "time cap" in caplog.text
    saved = json.loads((out / "sft_result.json").read_text())
    assert saved["completed"] is False and saved["stopped_by"] == "time_cap"
    marker = read_marker(out)
    assert marker["completed"] is False and marker["stopped_by"] == "time_cap"


def test_a_finished_budget_is_complete_and_its_wall_time_estimated(tiny_dir, arith_task, tmp_path, caplog):
    out = tmp_path / "done"
    with caplog.at_level(logging.INFO, logger="roadmap.core.training"):
        result = warm_start(tiny_dir, arith_task, _sft(out, max_steps=13))
    assert result.completed is True and result.stopped_by == "budget" and result.steps == result.max_steps == 13
    assert "minutes on this machine for the remaining 2 of 13 steps" in caplog.text
    marker = read_marker(out)
    assert marker["completed"] is True and marker["inputs"]["policy_dir"]["path"] == str(tiny_dir)
    assert marker["config"]["max_steps"] == 13 and "model.safetensors" in marker["files"]


def test_the_lr_schedule_follows_the_step_budget_not_the_clock():
    import torch

    class Capped(BudgetMixin):
        def __init__(self) -> None:
            self.optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
            self.warmup_fraction, self.min_lr_ratio, self.decay_fraction = 0.1, 0.05, None
            self.max_seconds, self.started = 0.001, time.perf_counter() - 100  # far past a time cap

    sched = Capped().create_scheduler(100)
    factors = [f(step) for f in sched.lr_lambdas for step in (5, 10, 55, 100)]
    assert factors == [budget_lr_factor(s / 100, 0.1, 0.05) for s in (5, 10, 55, 100)]
    assert factors[1] == 1.0 and factors[3] == pytest.approx(0.05)


def test_warmup_stable_decay_holds_the_peak_then_decays_over_its_last_share():
    wsd = [budget_lr_factor(p / 100, 0.05, 0.1, decay_fraction=0.2) for p in (2, 10, 50, 79, 90, 100)]
    assert wsd[0] < 1.0 and wsd[1] == wsd[2] == wsd[3] == 1.0
    assert 0.1 < wsd[4] < 1.0 and wsd[5] == pytest.approx(0.1)
    assert budget_lr_factor(0.5, 0.05, 0.1) < 1.0  # the default cosine decays from the end of warm-up


def test_a_missing_relative_policy_is_a_local_error(arith_task, tmp_path):
    t0 = time.perf_counter()
    with pytest.raises(FileNotFoundError, match="'no/such/policy' does not exist.*local"):
        warm_start("no/such/policy", arith_task, _sft(tmp_path / "o"))
    with pytest.raises(FileNotFoundError, match="init='gpt2' does not exist"):
        check_model_dir("gpt2", "init")
    with pytest.raises(FileNotFoundError, match="has no config.json"):
        check_model_dir(tmp_path)
    assert time.perf_counter() - t0 < 2 and not (tmp_path / "o").exists()


def test_a_failed_training_leaves_no_staging_folder_and_no_output(tmp_path):
    def build(scratch):
        assert scratch.parent.name.startswith(f".out.tmp-{os.getpid()}-")
        raise MemoryError("out of memory while loading")

    with pytest.raises(MemoryError):
        run_staged_training(tmp_path / "out", "policy", config=_sft(tmp_path / "out"), build=build, save=None,
                            result=None, result_file="r.json")
    assert os.listdir(tmp_path) == []


def test_results_read_as_mappings():
    r = SFTResult(output_dir="o", steps=3, max_steps=4, train_tokens=10, wall_seconds=1.0, tokens_per_second=10.0,
                  stopped_by="callback", completed=False)
    assert r["steps"] == 3 and dict(r) == r.to_dict() and r.get("eval_auc") is None and len(r) == len(r.to_dict())
    with pytest.raises(KeyError):
        r["nope"]
