"""End to end on the CLI: a tiny countdown model trained on search traces (``solution_format=trace``) and
scored by ``roadmap eval``, for a handful of steps; the plumbing only, no accuracy claim (issue 30)."""

from __future__ import annotations

import json

import pytest

from roadmap.app.cli import main
from roadmap.core.tasks import get_task
from roadmap.core.tasks.countdown_traces import search_metrics

TASK = ["--task", "countdown", "--task-arg", "solution_format=trace", "--task-arg", "trace_max_chars=512"]


@pytest.mark.slow
def test_trace_sft_then_eval_runs_end_to_end(tmp_path, capsys):
    tiny, sft, report = tmp_path / "tiny", tmp_path / "sft", tmp_path / "eval.json"
    assert main(["tiny", *TASK, "--out", str(tiny), "--max-positions", "600"]) == 0
    made = json.loads((tiny / "tiny_config.json").read_text())
    assert made["tokenizer_kind"] == "char" and made["max_position_embeddings"] == 600
    assert main(["sft", "--policy", str(tiny), *TASK, "--out", str(sft), "--problems", "8", "--max-steps", "2",
                 "--batch-size", "4", "--max-length", "600"]) == 0
    trained = json.loads((sft / "sft_result.json").read_text())
    task = get_task("countdown", solution_format="trace", trace_max_chars=512)
    train = task.problems("train", n=8, seed=0)
    assert trained["steps"] == 2 and all("->" in task.reference_solution(p) for p in train)
    # 2 steps x 4 rows = the 8 problems once, read as traces (one token a character), not as the short paths
    paths = sum(len(task.prompt(p) + task.solution_text(p, "path")) + 2 for p in train)
    assert trained["train_tokens"] > 4 * paths
    assert main(["eval", "--policy", str(sft), *TASK, "--n", "2", "--max-new-tokens", "48", "--out",
                 str(report)]) == 0
    out = json.loads(report.read_text())
    assert out["n"] == 2 and out["method"] == "greedy" and len(out["records"]) == 2
    problems = task.problems("test", n=2, seed=0)
    metrics = search_metrics(task, problems, [r["solution"] for r in out["records"]])
    assert metrics["traces"] == 2 and metrics["solved"] == sum(r["correct"] for r in out["records"])


def test_the_countdown_ladder_recipe_loads_and_its_rungs_have_their_number_counts():
    from pathlib import Path

    from roadmap.app.ladder import load_ladder_recipe

    recipe = Path(__file__).resolve().parents[1] / "recipes" / "countdown_ladder.yaml"
    config = load_ladder_recipe(recipe)
    task = get_task(config.task, **config.task_args)
    assert config.tiny["max_position_embeddings"] >= task.config.trace_max_chars + 64
    assert config.lengths["max_solution_tokens"] >= task.config.trace_max_chars + 16
    for level in config.levels:
        rung = task.level_task(level)
        assert {len(p.meta["numbers"]) for p in rung.problems("test", n=2, seed=config.eval_seed)} == {level}


@pytest.mark.slow
def test_a_tiny_countdown_ladder_warm_starts_on_traces_and_climbs_the_number_counts(tmp_path):
    from roadmap.app.ladder import run_ladder
    from roadmap.app.ladder_config import LadderConfig

    config = LadderConfig(
        task="countdown", task_args={"solution_format": "trace", "trace_max_chars": 256}, levels=[3, 4],
        seed_levels=[3], seed_problems=8, warm_start_steps=2, iterations=1, probe_problems=2, probe_samples=2,
        tiny={"hidden_size": 32, "num_heads": 2, "num_layers": 1, "intermediate_size": 64,
              "max_position_embeddings": 320},
        search_problems=2, search={"method": "bon", "budget": 2, "temperature": 1.0, "shard_size": 4},
        selection="unfiltered", learn_steps=2, batch_size=4, eval_problems=2,
        lengths={"max_solution_tokens": 32, "rollout_tokens": 32, "train_max_length": 320})
    result = run_ladder(config, tmp_path / "run", say=lambda s: None)
    seed = [json.loads(x) for x in (tmp_path / "run" / "seed.jsonl").read_text().splitlines()]
    assert len(seed) == 8 and all(r["level"] == 3 and " -> S1: " in r["completion"] for r in seed)
    assert "| iteration | L3 | L4 |" in (tmp_path / "run" / "report.md").read_text()
    assert len(result["iterations"]) == 2  # iteration 0 (the warm start) and one ladder iteration


@pytest.mark.parametrize("flags, named", [(["--level", "9"], "countdown level 9"), (["--arms", "path,tree"], "tree"),
                                          (["--steps", "0"], "--steps 0"),
                                          (["--trace-max-chars", "10"], "trace_max_chars=10")])
def test_the_comparison_script_refuses_bad_settings_before_building_anything(tmp_path, capsys, flags, named):
    with pytest.raises(SystemExit) as stop:
        _script("countdown_sft").main(["--out", str(tmp_path / "w"), *flags])
    assert stop.value.code == 2 and named in capsys.readouterr().err and not (tmp_path / "w").exists()


def test_the_comparison_script_matches_the_path_arm_to_the_trace_arms_tokens(tmp_path, monkeypatch):
    bench = _script("countdown_sft")
    calls = []
    monkeypatch.setattr(bench, "run", lambda cmd, prov, name: calls.append((name, cmd)))
    monkeypatch.setattr(bench, "mean_row_tokens", lambda *a: {"path": 40.0, "trace": 600.0})
    monkeypatch.setattr(bench, "arm_row", lambda *a: {})
    monkeypatch.setattr(bench, "markdown", lambda result: "")
    bench.main(["--out", str(tmp_path / "w"), "--steps", "10", "--level", "3"])
    sft = {name: cmd for name, cmd in calls if name.startswith("sft_")}
    steps = {name: int(cmd[cmd.index("--max-steps") + 1]) for name, cmd in sft.items()}
    assert steps == {"sft_trace": 10, "sft_path": 150}  # 10 x 600 tokens = 150 x 40 tokens per row
    assert all("min_numbers=3" in cmd and "max_numbers=3" in cmd for cmd in sft.values())
    assert "solution_format=trace" in sft["sft_trace"] and "solution_format=path" in sft["sft_path"]


def test_star_runs_the_recipe_at_this_runs_level_and_its_control_spends_the_same_steps(tmp_path, monkeypatch):
    from pathlib import Path

    from roadmap.app.loop_config import load_recipe

    bench = _script("countdown_sft")
    calls = []

    def fake_run(cmd, prov, name):
        calls.append((name, cmd))
        if name == "star":  # what `roadmap run` leaves: the run's metrics, one row per iteration
            out = Path(cmd[cmd.index("--out") + 1])
            out.mkdir(parents=True)
            rows = [{"iteration": 0}, {"iteration": 1, "learn_steps": 37, "learn_tokens": 9000, "data_tokens": 50_000,
                                       "search_accuracy": 0.4}]
            (out / "metrics.json").write_text(json.dumps({"iterations": rows}))
        if name == "sft_trace_more":
            out = Path(cmd[cmd.index("--out") + 1])
            out.mkdir(parents=True)
            (out / "sft_result.json").write_text(json.dumps({"steps": 37}))

    monkeypatch.setattr(bench, "run", fake_run)
    monkeypatch.setattr(bench, "mean_row_tokens", lambda *a: {"path": 40.0, "trace": 600.0})
    monkeypatch.setattr(bench, "arm_row", lambda *a, **k: {"trained": k.get("trained")})
    monkeypatch.setattr(bench, "markdown", lambda result: "")
    w = tmp_path / "w"
    bench.main(["--out", str(w), "--steps", "10", "--level", "4", "--trace-max-chars", "512", "--star"])
    named = dict(calls)
    recipe = load_recipe(w / "star_recipe.yaml", policy=str(w / "sft_trace"))
    assert recipe.task == "countdown" and recipe.task_args["solution_format"] == "trace"
    assert (recipe.task_args["min_numbers"], recipe.task_args["max_numbers"], recipe.task_args["trace_max_chars"]) \
        == (4, 4, 512)
    assert recipe.lengths_config.max_solution_tokens == 528 and recipe.lengths_config.train_max_length == 576
    assert named["star"][named["star"].index("--policy") + 1] == str(w / "sft_trace")
    control = named["sft_trace_more"]
    assert control[control.index("--policy") + 1] == str(w / "sft_trace")
    assert int(control[control.index("--max-steps") + 1]) == 37 and "solution_format=trace" in control
    assert float(control[control.index("--lr") + 1]) == recipe.learn_config.learning_rate
    assert {"eval_star", "eval_trace_more"} <= set(named)
    result = json.loads((w / "countdown_sft.json").read_text())
    assert result["arms"][-2]["trained"]["data_tokens"] == 50_000  # STaR's row carries its sampled tokens


def test_the_countdown_star_recipe_loads():
    from pathlib import Path

    from roadmap.app.loop_config import load_recipe

    recipe = Path(__file__).resolve().parents[1] / "recipes" / "countdown_star.yaml"
    config = load_recipe(recipe, policy="somewhere")
    task = get_task(config.task, **config.task_args)
    assert config.lengths_config.max_solution_tokens >= task.config.trace_max_chars + 16
    assert config.learner.name == "expert_iteration" and config.guide == "verifier"


def _script(name):
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_parallel_curve_counts_a_problem_solved_once_any_of_its_first_n_samples_checks():
    rows = [{"correct": [False, False, True, False], "tokens": [10, 20, 30, 40], "truncated": [False] * 4},
            {"correct": [True, False, False, False], "tokens": [5, 5, 5, 5], "truncated": [False, True, False, False]}]
    from roadmap.app.sos import checked_curve

    got = checked_curve(rows, 4)
    assert [c["N"] for c in got] == [1, 2, 4]
    assert [c["accuracy"] for c in got] == [0.5, 0.5, 1.0]
    assert [c["tokens_per_problem"] for c in got] == [7.5, 20.0, 60.0] and [c["truncated"] for c in got] == [0, 1, 1]


def test_the_test_time_script_refuses_a_folder_without_a_comparison(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        _script("countdown_test_time").main(["--run", str(tmp_path)])
    assert stop.value.code == 2 and "countdown_sft.json" in capsys.readouterr().err


def test_the_test_time_script_reuses_its_stored_samples(tmp_path, monkeypatch):
    from roadmap.app.sos import sample_settings

    bench = _script("countdown_test_time")
    problems = [type("P", (), {"id": f"p{i}"})() for i in range(2)]
    rows = [{"id": p.id, "correct": [True], "tokens": [3], "truncated": [False]} for p in problems]
    (tmp_path / "sft_path").mkdir()
    (tmp_path / "sft_path" / "config.json").write_text("{}")
    stored = {"settings": {**sample_settings(tmp_path / "sft_path", problems, 1, 0.7, 32, 1), "seconds": 9.0}}
    (tmp_path / "test_time").mkdir()
    (tmp_path / "test_time" / "path.jsonl").write_text("\n".join(json.dumps(r) for r in [stored, *rows]) + "\n")
    monkeypatch.setattr("roadmap.core.hf_policy.HFPolicy.from_pretrained",
                        lambda *a, **k: pytest.fail("stored samples were drawn again"))
    assert bench.sample_arm(tmp_path, "path", None, problems, 1, 0.7, 32, 1) == rows
    # other weights in the policy folder: the stored samples are not theirs, so they are drawn again
    (tmp_path / "sft_path" / "config.json").write_text('{"hidden_size": 2}')
    with pytest.raises(pytest.fail.Exception, match="drawn again"):
        bench.sample_arm(tmp_path, "path", None, problems, 1, 0.7, 32, 1)


def test_q_step_pairs_are_checked_against_the_exact_values():
    task = get_task("countdown", min_numbers=3, max_numbers=3, solution_format="path")
    p = task.problems("train", n=1, seed=0)[0]  # 11 11 19 -> 20: 11/11=1, 19+1=20
    pairs = [
        {"id": p.id, "prompt": task.prompt(p), "chosen": "11/11=1\n19+1=20\nAnswer: 20",
         "rejected": "11+11=22\n22-19=3\nAnswer: 3"},                      # ordered as the solver orders them
        {"id": p.id, "prompt": task.prompt(p) + "11/11=1\n", "chosen": "19-1=18\nAnswer: 18",
         "rejected": "19+1=20\nAnswer: 20"},                               # a Q-value that had it backwards
    ]
    got = _script("countdown_tree_dpo").q_pair_check(task, [p], pairs)
    assert got == {"pairs": 2, "exactly_ordered": 0.5, "chosen_right": 0.5, "rejected_wrong": 0.5}


@pytest.mark.parametrize("flags, named", [(["--arms", "q,tree"], "tree"), ([], "no countdown_sft.json")])
def test_the_tree_dpo_script_refuses_bad_settings_before_searching(tmp_path, capsys, flags, named):
    with pytest.raises(SystemExit) as stop:
        _script("countdown_tree_dpo").main(["--run", str(tmp_path / "w"), *flags])
    assert stop.value.code == 2 and named in capsys.readouterr().err and not (tmp_path / "w").exists()


def test_the_tree_dpo_script_refuses_trees_or_models_made_with_other_settings(tmp_path, capsys):
    w = tmp_path / "w"
    (w / "sft_path").mkdir(parents=True)
    (w / "countdown_sft.json").write_text(json.dumps({"size": {"trace_max_chars": 256, "eval_n": 3}, "level": 3,
                                                      "test_seed": 918273}))
    (w / "eval_path.json").write_text("{}")
    d = w / "tree_dpo" / "b8w4"
    d.mkdir(parents=True)
    (d / "provenance.json").write_text(json.dumps({"search_settings": {"problems": 1024, "temperature": 0.7,
                                                                       "seed": 0}}))
    with pytest.raises(SystemExit) as stop:
        _script("countdown_tree_dpo").main(["--run", str(w), "--budget", "8", "--temperature", "1.0"])
    assert stop.value.code == 2 and "searched with" in capsys.readouterr().err
    learned = {"lr": 1e-4, "beta": 0.1, "epochs": 2.0, "batch_size": 16, "margin": 0.3, "dev_seed": 1}
    (d / "provenance.json").write_text(json.dumps({"dpo_q": {"settings": learned}}))
    with pytest.raises(SystemExit) as stop:
        _script("countdown_tree_dpo").main(["--run", str(w), "--budget", "8", "--lr", "1e-5"])
    assert stop.value.code == 2 and "pass another --tag" in capsys.readouterr().err
