"""RL as the ladder's learner (roadmap.app.ladder_rl): its recipe checks, where it learns, what it reads, resume."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from roadmap.app.ladder import LadderConfig, is_ladder_recipe, load_ladder_recipe, run_ladder
from roadmap.app.ladder_rl import probe_window, rl_levels
from roadmap.app.loop_config import RecipeError

RECIPE = Path(__file__).resolve().parent.parent / "recipes" / "scalerl_ladder.yaml"

TINY = dict(learner="rl", levels=[2, 3], seed_levels=[2], seed_problems=16,
            tiny={"hidden_size": 32, "num_heads": 2, "num_layers": 1, "intermediate_size": 64}, warm_start_steps=0,
            iterations=1, probe_problems=2, probe_samples=2, max_levels=2, search_problems=4, learn_steps=2,
            eval_problems=2, lengths={"max_solution_tokens": 24, "rl_completion_tokens": 24},
            rl={"num_generations": 2, "prompts_per_step": 2})


@pytest.mark.parametrize("rl, named", [
    ({"max_lag": -1}, "max_lag"), ({"loss_type": "ppo"}, "loss_type"), ({"num_generations": 1}, "num_generations"),
    ({"bogus_key": 1}, "bogus_key"), ({"prm_weight": 0.5}, "prm_weight"), ({"verifier": "steps"}, "verifier"),
    ({"max_steps": 10}, "max_steps"), ({"learning_rate": "1e-4"}, "learning_rate"),
    ({"decay_steps": 50}, "decay_steps"),
])
def test_bad_rl_keys_are_refused_at_load_naming_the_key(rl, named):
    with pytest.raises(RecipeError, match=named) as e:
        LadderConfig(learner="rl", learn_steps=20, rl=rl)
    assert "\n" not in str(e.value)


def test_learner_choice_is_checked():
    with pytest.raises(RecipeError, match="learner"):
        LadderConfig(learner="dpo")
    with pytest.raises(RecipeError, match="control"):
        LadderConfig(learner="rl", control="more_sft")
    with pytest.raises(RecipeError, match="learner: rl"):
        LadderConfig(rl={"max_lag": 2})  # an rl: section under learner: sft would be silently unused
    config = LadderConfig(learner="rl", learn_steps=7, rl={"loss_type": "dapo", "max_lag": 3})
    rc = config.rl_config(seed=5, output_dir="x")
    assert (rc.loss_type, rc.max_lag, rc.max_steps, rc.seed, rc.trainer, rc.prm_weight) == ("dapo", 3, 7, 5, "own", 0)
    assert rc.zero_variance_filter and rc.retire_pass_rate == 1.0  # the ladder's defaults stay under an override


def test_the_scalerl_ladder_recipe_loads_as_a_ladder():
    assert is_ladder_recipe(RECIPE)
    config = load_ladder_recipe(RECIPE)
    assert config.learner == "rl" and config.rl_config().zero_variance_filter


def test_cli_refuses_a_negative_max_lag_in_one_line(tmp_path, capsys):
    from roadmap.app.cli import main

    recipe = tmp_path / "r.yaml"
    recipe.write_text("ladder: true\nlearner: rl\nrl: {max_lag: -1}\n")
    assert main(["run", str(recipe), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "max_lag" in err[0] and "Traceback" not in err[0]
    assert not (tmp_path / "run").exists()


def test_the_probe_window_cycles_through_the_pool():
    pool = list(range(5))
    assert probe_window(pool, 1, 2) == [0, 1] and probe_window(pool, 3, 2) == [4, 0]
    assert probe_window(pool, 1, 9) == pool  # never more than the pool


def test_rl_levels_when_the_band_selects_nothing():
    assert rl_levels([3, 4], {"2": 1.0, "3": 0.5, "4": 0.0}, [2, 3, 4]) == ([3, 4], None)
    levels, why = rl_levels([], {"2": 1.0, "3": 0.95, "4": 0.97}, [2, 3, 4])
    assert levels == [3] and "selects no level" in why  # moves up to the easiest level not always solved
    levels, why = rl_levels([], {"2": 1.0, "3": 1.0}, [2, 3])
    assert levels is None and "stops" in why


@pytest.mark.slow
def test_rl_ladder_learns_from_answers_only_and_resumes_after_the_learn_phase(tmp_path, monkeypatch):
    """One RL iteration end to end on an untrained tiny model: RL sees answer-only problems of the chosen levels,
    never calls the step checker, writes its metrics into the iteration's row; a rerun skips the finished learn."""
    import learning.rl as rl
    import roadmap.app.ladder as ladder
    from roadmap.core.tasks import ArithTask

    calls, inside = [], []
    real = rl.rl_step

    def spy(policy_dir, task, problems, config, **kw):
        calls.append((list(problems), config, Path(policy_dir)))
        inside.append(True)
        try:
            return real(policy_dir, task, problems, config, **kw)
        finally:
            inside.pop()

    real_labels = ArithTask.step_labels

    def labels(self, *a, **kw):
        assert not inside, "the RL learn phase read the step checker"
        return real_labels(self, *a, **kw)

    real_probe = ladder._Ladder.probe

    def probe(self, k):  # as if the probe had solved the first problem of the chosen levels' pool in every sample
        out = real_probe(self, k)
        return {**out, "solved": [self.rl_pool(out["chosen"][0])[0].id]}

    monkeypatch.setattr(rl, "rl_step", spy)
    monkeypatch.setattr(ArithTask, "step_labels", labels)
    monkeypatch.setattr(ladder._Ladder, "probe", probe)
    config = LadderConfig(**TINY)
    out = tmp_path / "run"
    first = run_ladder(config, out, say=lambda s: None)
    assert len(calls) == 1
    problems, rc, start = calls[0]
    assert start == out / "iter_0" / "policy"  # from the ladder's warm start
    assert problems and all(p.steps == () for p in problems)  # answers only: no worked solution
    seed_ids = {json.loads(x)["id"] for x in (out / "seed.jsonl").read_text().splitlines()}
    assert not seed_ids & {p.id for p in problems}
    probe = json.loads((out / "iter_1" / "probe.done.json").read_text())
    assert {p.meta["operands"] for p in problems} == set(probe["chosen"])  # the probe's levels
    assert probe["solved"] and not set(probe["solved"]) & {p.id for p in problems}  # solved in the probe: retired
    assert len(problems) == 4 * len(probe["chosen"]) - 1
    assert (rc.loss_type, rc.zero_variance_filter, rc.retire_pass_rate, rc.max_steps) == ("cispo", True, 1.0, 2)
    assert not (out / "iter_1" / "search").exists()  # RL samples for itself
    learn = json.loads((out / "iter_1" / "learn.done.json").read_text())
    assert learn["steps"] == 2 and learn["sampled_tokens"] > 0 and learn["train_tokens"] >= 0
    assert learn["kept_groups"] == learn["groups"] - learn["zero_variance_dropped"]
    row = json.loads((out / "metrics.json").read_text())["iterations"][1]
    assert row["rl_steps"] == 2 and row["sampled_tokens"] == learn["sampled_tokens"]
    # compute = tokens: the warm start's, the probe's, and RL's sampled and trained
    assert row["train_compute"] == (first["iterations"][0]["train_compute"] + probe["data_tokens"]
                                    + learn["sampled_tokens"] + learn["train_tokens"])
    assert "kept groups" in (out / "report.md").read_text()
    from roadmap.app.scaling import read_points

    compute, accuracy, _ = read_points(out / "metrics.json")  # `roadmap fit` reads a ladder run
    assert compute[-1] == row["train_compute"] and len(accuracy) == len(compute)
    assert (out / "iter_1" / "policy" / "task.json").exists()
    assert json.loads((out / "iter_1" / "rl_state" / "retired.json").read_text()) is not None

    # kill after the learn phase: its marker stays, the eval's is gone; the rerun evaluates again, learns nothing
    (out / "iter_1" / "eval.done.json").unlink()
    said = []
    again = run_ladder(config, out, say=said.append)
    assert len(calls) == 1 and said[0] == "iteration 1: eval" and not any("learn" in s for s in said)
    assert again["iterations"][1]["levels"] == json.loads(json.dumps(first["iterations"][1]["levels"]))


@pytest.mark.slow
def test_rl_ladder_moves_up_or_stops_when_the_band_selects_nothing(tmp_path, monkeypatch, caplog):
    import roadmap.app.ladder as ladder

    monkeypatch.setattr(ladder, "choose_levels", lambda *a, **kw: [])  # the band selects no level
    config = LadderConfig(**TINY)
    with caplog.at_level(logging.WARNING, logger="roadmap.app.ladder"):
        result = run_ladder(config, tmp_path / "up", say=lambda s: None)
    assert "selects no level" in caplog.text
    learn = json.loads((tmp_path / "up" / "iter_1" / "learn.done.json").read_text())
    assert learn["levels"] == [2] and result["iterations"][1]["chosen"] == [2]  # moved up to the easiest open level

    def solved(self, k):
        return {"pass_rate": {str(lv): 1.0 for lv in self.c.levels}, "pass_at_k": {}, "chosen": [], "data_tokens": 0}

    monkeypatch.setattr(ladder._Ladder, "probe", solved)
    said = []
    result = run_ladder(config, tmp_path / "top", say=said.append)
    assert [r["iteration"] for r in result["iterations"]] == [0]  # stopped before learning, report written
    assert any("ladder stops" in s for s in said) and (tmp_path / "top" / "report.md").exists()
    assert not (tmp_path / "top" / "iter_1" / "learn.done.json").exists()


def test_rl_with_a_supervised_term_trains_on_the_seed_set_alone(tmp_path, monkeypatch):
    """rl.sft_weight > 0: every RL step of the ladder takes the seed set's worked solutions into its loss (the
    RL counterpart of the SFT ladder's replay), and never the answer-only problems' references."""
    import learning.rl as rl

    seen, real = [], rl.rl_step

    def spy(policy_dir, task, problems, config, **kw):
        seen.append(kw.get("demonstrations"))
        return real(policy_dir, task, problems, config, **kw)

    monkeypatch.setattr(rl, "rl_step", spy)
    config = LadderConfig(**{**TINY, "rl": {**TINY["rl"], "sft_weight": 1.0, "sft_batch": 4}})
    out = tmp_path / "run"
    run_ladder(config, out, say=lambda s: None)
    seed = [json.loads(x) for x in (out / "seed.jsonl").read_text().splitlines()]
    assert seen == [[(r["prompt"], r["completion"]) for r in seed]]
    steps = json.loads((out / "iter_1" / "learn.done.json").read_text())["rl_steps"]
    assert len(steps) == 2 and all(s["sft_loss"] > 0 for s in steps)
