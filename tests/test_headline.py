"""The headline harness (benchmarks/headline.py): its commands parse with today's CLI, and its table reads back
every figure a seed's folder holds, with the mean and spread over seeds. (Its --quick run trains models for
minutes and lives in benchmarks/.)"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("headline", ROOT / "benchmarks" / "headline.py")
headline = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(headline)


@pytest.mark.parametrize("stage", headline.STAGES)
def test_every_stage_command_parses_with_todays_cli(stage, tmp_path):
    from roadmap.app.cli_parser import build_parser

    if stage == "sft_control":  # sized from the expert iteration it controls for
        headline.stage_commands("expert_iteration", tmp_path / "s0", 0, 918273, 1, headline.QUICK)
        _write(tmp_path / "s0" / "expert_iteration" / "metrics.json",
               {"iterations": [{"iteration": 0}, {"iteration": 1, "learn_steps": 5}, {"iteration": 2, "learn_steps": 7}]})
    if stage == "strong_prm":  # needs the weak policy and the stronger policy's PRM on disk
        with pytest.raises(SystemExit, match="weak_policy and rewards"):
            headline.stage_commands(stage, tmp_path / "s0", 0, 918273, 1, headline.QUICK)
        _write(tmp_path / "s0" / "weak_policy" / "sft_result.json", {})
        (tmp_path / "s0" / "rewards" / "prm_binary").mkdir(parents=True)
    for cmd in headline.stage_commands(stage, tmp_path / "s0", 0, 918273, 1, headline.QUICK):
        if cmd[1:3] == ["-m", "roadmap.app.cli"]:
            args = build_parser().parse_args(cmd[3:])  # argparse exits on an unknown or missing flag
            assert getattr(args, "seed", None) in (None, 0, 918273)
        else:  # the rewards script: its flags exist in its own parser
            text = Path(cmd[1]).read_text()
            for flag in (a for a in cmd[2:] if a.startswith("--")):
                assert f'"{flag}"' in text, flag
    if stage == "sft_control":  # as many steps of 64 rows as expert iteration learned, at its learning rate
        sft = build_parser().parse_args(headline.stage_commands(stage, tmp_path / "s0", 0, 918273, 1, headline.QUICK)[0][3:])
        assert (sft.num_problems, sft.max_steps, sft.batch_size, sft.learning_rate, sft.warmup_fraction) == \
            (12 * 64, 12, 64, 0.0005, 0.05)
    if stage == "expert_iteration":
        from roadmap.app.loop_config import read_recipe

        assert read_recipe(tmp_path / "s0" / "expert_iteration.yaml")["seed"] == 918273  # evaluates on the test seed
    if stage == "strong_prm":  # the weak policy searched, guided by the stronger policy's PRM
        bench = build_parser().parse_args(headline.stage_commands(stage, tmp_path / "s0", 0, 918273, 1, headline.QUICK)[0][3:])
        assert (Path(bench.policy).name, Path(bench.prm).parent.name) == ("weak_policy", "rewards")


def _write(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def _seed_folder(d: Path, greedy: float, beam: float) -> None:
    _write(d / "greedy.json", {"accuracy": greedy, "ci95": [greedy - 0.05, greedy + 0.05]})
    _write(d / "rewards" / "rewards_quality.json",
           {"auc": [{"prm": "binary", "auc": 0.9}],
            "best_of_n": [{"selector": "majority@16", "accuracy": 0.8, "ci95": [0.7, 0.9]}]})
    _write(d / "test_time" / "test_time.json",
           {"summary": [{"method": "beam", "budget": 16, "accuracy": beam, "ci95_pooled": [beam - 0.1, beam + 0.1],
                         "tokens_per_problem": 900.0}]})
    _write(d / "strong_prm" / "test_time.json",
           {"summary": [{"method": "dvts", "budget": 16, "accuracy": beam / 2, "ci95_pooled": [0.1, 0.5],
                         "tokens_per_problem": 800.0}]})
    _write(d / "expert_iteration" / "metrics.json",
           {"iterations": [{"iteration": 0, "accuracy": greedy, "ci95": [0.1, 0.9]}]})
    _write(d / "sft_control.json", {"accuracy": greedy + 0.01, "ci95": [0.2, 0.8],
                                    "records": [{"id": "a", "correct": True}, {"id": "b", "correct": True}]})
    for k, right in ((0, [False, False]), (1, [True, False])):
        _write(d / "expert_iteration" / f"iter_{k}" / "eval.json",
               {"records": [{"id": i, "correct": ok} for i, ok in zip("ab", right)]})
    trees = d / "expert_iteration" / "iter_1" / "search" / "trees.jsonl"
    trees.parent.mkdir(parents=True)
    trees.write_text(json.dumps({"problem_id": "p", "question": "2+3-1", "reference": "4", "candidate_correct": [True, True],
                                 "candidates": ["2+3=5\n5-1=4\nAnswer: 4", "2+3=6\n6-1=4\nAnswer: 4"]}) + "\n")


def test_the_table_reads_every_figure_and_its_spread_over_seeds(tmp_path):
    _seed_folder(tmp_path / "s0", 0.60, 0.70)
    _seed_folder(tmp_path / "s1", 0.64, 0.76)
    per_seed = {s: headline.read_figures(tmp_path / f"s{s}") for s in (0, 1)}
    rows = {r["figure"]: r for r in headline.summarise(per_seed)}
    assert set(rows) == {"greedy", "prm_auc/binary", "select/majority@16", "test_time/beam@16", "tokens/beam@16",
                         "expert_iteration/iter0", "expert_iteration/iter_1_steps_right", "sft_control",
                         "paired/only_expert_iteration", "paired/only_sft_control", "paired/mcnemar_p",
                         "strong_prm/dvts@16", "strong_prm_tokens/dvts@16"}
    assert rows["strong_prm/dvts@16"]["mean"] == pytest.approx(0.365)  # the weak policy's own search, not test_time's
    assert (rows["paired/only_expert_iteration"]["mean"], rows["paired/only_sft_control"]["mean"]) == (0, 1)  # iter_1
    assert rows["expert_iteration/iter_1_steps_right"]["mean"] == 0.5  # the second candidate's slip is counted
    assert rows["greedy"]["mean"] == pytest.approx(0.62) and rows["greedy"]["spread"] == pytest.approx(0.04)
    assert rows["test_time/beam@16"]["seeds"]["1"]["ci95"] == pytest.approx([0.66, 0.86])
    table = headline.markdown(list(rows.values()), [0, 1])
    assert "| greedy | 60.0% [55.0-65.0] | 64.0% [59.0-69.0] | 62.0% | 4.0 pts |" in table
    assert "| tokens/beam@16 | 900 | 900 | 900 | 0.000 |" in table


def test_a_stage_not_run_gives_no_figure_and_a_dev_seed_equal_to_the_test_seed_is_refused(tmp_path, capsys):
    _write(tmp_path / "s0" / "greedy.json", {"accuracy": 0.5, "ci95": [0.4, 0.6]})
    assert set(headline.read_figures(tmp_path / "s0")) == {"greedy"}
    with pytest.raises(SystemExit):
        headline.main(["--out", str(tmp_path), "--test-seed", "1", "--dev-seed", "1"])
    assert "no tuning touched" in capsys.readouterr().err


def test_the_control_is_skipped_when_expert_iteration_learned_nothing(tmp_path):
    headline.stage_commands("expert_iteration", tmp_path / "s0", 0, 918273, 1, headline.QUICK)
    _write(tmp_path / "s0" / "expert_iteration" / "metrics.json",
           {"iterations": [{"iteration": 0}, {"iteration": 1, "learn_steps": 0}, {"iteration": 2, "learn_steps": None}]})
    assert headline.stage_commands("sft_control", tmp_path / "s0", 0, 918273, 1, headline.QUICK) == []


def test_provenance_names_the_machine_a_stage_ran_on():
    import torch

    m = headline.machine()
    assert m["torch"].startswith(torch.__version__.split("+")[0]) and m["transformers"]
    assert m["cpu_capability"] == torch.backends.cpu.get_cpu_capability() and m["threads"] >= 1


def test_cross_prm_searches_one_seeds_policy_under_another_seeds_prm(tmp_path):
    from roadmap.app.cli_parser import build_parser

    assert headline.stage_commands("cross_prm", tmp_path / "s0", 0, 918273, 1, headline.QUICK, cross_seed=0) == []
    with pytest.raises(SystemExit, match="init seed 0's rewards stage first"):
        headline.stage_commands("cross_prm", tmp_path / "s1", 1, 918273, 1, headline.QUICK, cross_seed=0)
    (tmp_path / "s0" / "rewards" / "prm_binary").mkdir(parents=True)
    cmd = headline.stage_commands("cross_prm", tmp_path / "s1", 1, 918273, 1, headline.QUICK, cross_seed=0)[0]
    bench = build_parser().parse_args(cmd[3:])
    assert (Path(bench.policy), Path(bench.prm)) == (tmp_path / "s1" / "policy", tmp_path / "s0" / "rewards" / "prm_binary")
    assert Path(bench.out) == tmp_path / "s1" / "cross_prm"
