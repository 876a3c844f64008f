"""roadmap.app.sos: Stream of Search on countdown as one ``roadmap run`` (issue 30)."""

from __future__ import annotations

import json

import pytest
import yaml

from roadmap.app.cli import main
from roadmap.app.loop_config import RecipeError
from roadmap.app.sos import SoSConfig, is_sos_recipe, load_sos_recipe

QUICK = {"sos": True, "task": "countdown", "task_args": {"trace_max_chars": 256}, "level": 3,
         "tiny": {"max_position_embeddings": 320}, "seed_problems": 32, "warm_start_steps": 4, "iterations": 1,
         "probe_problems": 4, "probe_samples": 2,
         "search": {"method": "bon", "budget": 2, "temperature": 0.7, "shard_size": 4}, "search_problems": 8,
         "learn_steps": 2, "batch_size": 4,
         "lengths": {"max_solution_tokens": 272, "rollout_tokens": 272, "train_max_length": 320},
         "eval_problems": 6, "test_samples": 4}


def test_the_shipped_recipe_loads_and_each_arm_is_a_ladder_at_its_format():
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "recipes" / "countdown_sos.yaml"
    assert is_sos_recipe(path)
    config = load_sos_recipe(path)
    trace = config.ladder_config("trace", policy="tiny", warm_start_steps=600)
    path_arm = config.ladder_config("path", policy="tiny", warm_start_steps=100)
    control = config.ladder_config("trace_more", policy="x", warm_start_steps=0)
    assert trace.task_args["solution_format"] == "trace" and path_arm.task_args["solution_format"] == "path"
    assert trace.levels == trace.seed_levels == [config.level] and trace.task_args["min_numbers"] == config.level
    assert control.control == "more_sft" and trace.control == "none" and trace.selection == "verified"


def test_run_seed_reaches_the_recipe_and_every_arm(tmp_path, monkeypatch):
    from pathlib import Path

    seen = {}

    def fake_run(config, out, say=print):
        seen["config"] = config
        return {"rows": []}

    monkeypatch.setattr("roadmap.app.sos.run_sos", fake_run)
    recipe = Path(__file__).resolve().parents[1] / "recipes" / "countdown_sos.yaml"
    assert main(["run", str(recipe), "--out", str(tmp_path / "run"), "--seed", "2"]) == 0
    config = seen["config"]
    assert config.seed == 2 and load_sos_recipe(recipe).seed == 0
    assert {config.ladder_config(arm, policy="tiny", warm_start_steps=1).seed for arm in ("trace", "path",
                                                                                         "trace_more")} == {2}


@pytest.mark.parametrize("change, named", [
    ({"task_args": {"solution_format": "path"}}, "solution_format"),
    ({"task": "arith"}, "countdown"),
    ({"level": 9}, "level"),
    ({"test_samples": 0}, "test_samples=0"),
    ({"learn_steps": 0}, "learn_steps=0"),
])
def test_bad_recipes_are_refused_naming_the_key(change, named):
    with pytest.raises(RecipeError, match=named):
        SoSConfig(**{**QUICK, **change})


@pytest.mark.slow
def test_the_sos_recipe_runs_every_arm_and_reports_them(tmp_path, capsys):
    recipe = tmp_path / "sos.yaml"
    recipe.write_text(yaml.safe_dump(QUICK))
    out = tmp_path / "run"
    assert main(["run", str(recipe), "--out", str(out)]) == 0
    result = json.loads((out / "sos.json").read_text())
    assert [(r["arm"], r["stage"]) for r in result["rows"]] == [
        ("trace", "warm start"), ("trace", "STaR 1"), ("path", "warm start"), ("path", "STaR 1"),
        ("trace_more", "from trace's warm start"), ("trace_more", "more SFT 1")]
    # the path arm's steps buy the trace arm's tokens: more steps of shorter rows
    means = result["mean_row_tokens"]
    assert means["trace"] > means["path"] and result["path_steps"] == round(4 * means["trace"] / means["path"])
    assert [c["N"] for c in result["parallel"]["checked"]] == [1, 2, 4]
    assert (out / "accuracy_vs_tokens.png").stat().st_size > 0 and "| trace_more |" in (out / "report.md").read_text()
    # the control starts from the trace arm's warm start: the same weights, so the same greedy outputs
    start = json.loads((out / "trace" / "iter_0" / "eval_solutions.json").read_text())
    control = json.loads((out / "trace_more" / "iter_0" / "eval_solutions.json").read_text())
    assert start == control and len(start["3"]) == 6
    # a rerun resumes: nothing is trained again, the report is the same
    before = (out / "report.md").read_text()
    assert main(["run", str(recipe), "--out", str(out)]) == 0
    assert (out / "report.md").read_text() == before
    # the same recipe at another seed is another run
    assert main(["run", str(recipe), "--out", str(out), "--seed", "1"]) == 2
    assert "differs in ['seed']" in capsys.readouterr().err
    # another recipe in the same folder is refused, naming what differs
    recipe.write_text(yaml.safe_dump({**QUICK, "learn_steps": 3}))
    assert main(["run", str(recipe), "--out", str(out)]) == 2
    assert "learn_steps" in capsys.readouterr().err
    assert main(["run", str(recipe), "--out", str(tmp_path / "other"), "--policy", str(out / "tiny")]) == 2
    assert "--policy does not apply" in capsys.readouterr().err
