"""The roadmap command: argument parsing, eval end to end on a tiny model, fast start."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from roadmap.app.cli import main, parse_task_args
from roadmap.core.io import format_table


def test_parse_task_args_casts_numbers():
    assert parse_task_args(["digits=3", "test_fraction=0.2", "source=a.jsonl"]) == {
        "digits": 3, "test_fraction": 0.2, "source": "a.jsonl"}
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_task_args(["digits"])


def test_format_table_aligns_columns():
    text = format_table([{"a": 1, "b": 0.12345}, {"a": 100, "b": (0.1, 0.2)}], ["a", "b"])
    lines = text.splitlines()
    assert lines[0].startswith("a  ") and "0.123" in lines[2] and "[0.100, 0.200]" in lines[3]
    assert format_table([{"a": 1}], ["a"], markdown=True).startswith("| a |")


def test_eval_command_writes_json(tiny_dir, tmp_path, capsys):
    out = tmp_path / "eval.json"
    code = main(["eval", "--policy", str(tiny_dir), "--task", "arith", "--n", "6", "--seed", "1",
                 "--method", "majority", "--samples", "2", "--max-new-tokens", "16", "--out", str(out)])
    assert code == 0
    report = json.loads(out.read_text())
    for key in ("accuracy", "ci95", "n", "generated_tokens", "wall_seconds"):
        assert key in report
    assert report["n"] == 6 and report["samples"] == 2 and len(report["records"]) == 6
    assert "accuracy" in capsys.readouterr().out


def test_length_flags_make_one_lengths_per_command():
    from roadmap.app.cli import build_parser, lengths_from_args
    from roadmap.core import Lengths

    parser = build_parser()
    args = parser.parse_args(["eval", "--policy", "p", "--method", "beam", "--max-step-tokens", "512",
                              "--max-solution-steps", "40", "--max-new-tokens", "2048", "--rollout-tokens", "1024"])
    assert lengths_from_args(args) == Lengths(max_step_tokens=512, max_steps=40, max_solution_tokens=2048,
                                              rollout_tokens=1024)
    for command in (["search", "--out", "o"], ["bench", "test-time", "--out", "o"]):
        args = parser.parse_args([*command, "--policy", "p", "--max-solution-steps", "20"])
        assert lengths_from_args(args) == Lengths(max_steps=20)
    args = parser.parse_args(["label", "--policy", "p", "--out", "o", "--rollout-tokens", "300"])
    assert lengths_from_args(args) == Lengths(rollout_tokens=300)
    # on sft, --max-steps stays the optimizer steps; --max-length is the training sequence length
    args = parser.parse_args(["sft", "--policy", "p", "--out", "o", "--max-steps", "5", "--max-length", "3072"])
    assert args.max_steps == 5 and lengths_from_args(args) == Lengths(train_max_length=3072)
    args = parser.parse_args(["train-prm", "--labels", "l", "--init", "i", "--out", "o", "--max-length", "900"])
    assert lengths_from_args(args).train_max_length == 900
    assert lengths_from_args(parser.parse_args(["eval", "--policy", "p"])) == Lengths()
    for bad in (["eval", "--policy", "p", "--max-new-tokens", "0"], ["eval", "--policy", "p", "--max-length", "9"]):
        with pytest.raises(SystemExit):
            parser.parse_args(bad)


def test_cli_help_starts_fast():
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "roadmap.app.cli", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "quickstart" in proc.stdout
    assert time.perf_counter() - t0 < 10
    proc = subprocess.run([sys.executable, "-c", "import roadmap.app.cli, sys; print('torch' in sys.modules)"],
                          capture_output=True, text=True)
    assert proc.stdout.strip() == "False"


def test_label_train_prm_and_search_eval_commands(tiny_dir, tmp_path, capsys, monkeypatch):
    labels, prm = tmp_path / "labels", tmp_path / "prm"
    assert main(["label", "--policy", str(tiny_dir), "--n", "4", "--samples", "2", "--rollouts", "2",
                 "--method", "binary", "--out", str(labels)]) == 0
    assert (labels / "state.json").exists()
    assert main(["train-prm", "--labels", str(labels), "--init", str(tiny_dir), "--out", str(prm),
                 "--epochs", "1"]) == 0
    assert (prm / "reward_model.json").exists()
    assert main(["train-orm", "--labels", str(labels), "--init", str(tiny_dir), "--out", str(tmp_path / "orm"),
                 "--epochs", "1"]) == 0
    out = tmp_path / "beam.json"
    import roadmap.app.evaluate as ev

    widths, real = [], ev.evaluate_search
    monkeypatch.setattr(ev, "evaluate_search", lambda *a, **kw: widths.append(kw["width"]) or real(*a, **kw))
    assert main(["eval", "--policy", str(tiny_dir), "--n", "3", "--method", "beam", "--budget", "4", "--width", "2",
                 "--prm", str(prm), "--out", str(out)]) == 0
    assert widths == [2]  # --width reaches the search
    report = json.loads(out.read_text())
    assert report["method"] == "beam" and report["n"] == 3 and report["generated_tokens"] > 0
    capsys.readouterr()
    assert main(["eval", "--policy", str(tiny_dir), "--n", "2", "--method", "mcts"]) == 2
    assert "--prm" in capsys.readouterr().err
    assert main(["eval", "--policy", str(tiny_dir), "--n", "2", "--method", "beam", "--prm", str(tiny_dir)]) == 2
    assert "not a reward model" in capsys.readouterr().err


def test_search_takes_the_temperature_the_recipes_use(tiny_dir, tmp_path, monkeypatch):
    """`roadmap search --temperature` reaches the search's config (the recipes search at 0.3)."""
    import roadmap.app.train_search as ts

    seen, real = [], ts.search_train

    def spy(policy, task, problems, out, config, **kw):
        seen.append(config.temperature)
        return real(policy, task, problems, out, config, **kw)

    monkeypatch.setattr(ts, "search_train", spy)
    assert main(["search", "--policy", str(tiny_dir), "--n", "2", "--method", "bon", "--budget", "2",
                 "--temperature", "0.3", "--max-new-tokens", "8", "--out", str(tmp_path / "s")]) == 0
    assert seen == [0.3]
