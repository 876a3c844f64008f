"""The roadmap command with prompt formats on stand-ins of real model families, and tasks by import path."""

from __future__ import annotations

import json

import pytest

from roadmap.app.cli import main


@pytest.fixture(scope="module")
def qwen2(tmp_path_factory):
    from policy_init.standins import build_standin

    return build_standin("qwen2", tmp_path_factory.mktemp("qwen2") / "policy")


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory):
    from policy_init.standins import build_standin

    return build_standin("gpt2", tmp_path_factory.mktemp("gpt2") / "policy")


def _eval(policy, out, *extra):
    return main(["eval", "--policy", str(policy), "--n", "3", "--max-new-tokens", "8", "--out", str(out), *extra])


def test_eval_in_chat_format_on_a_qwen2_standin(qwen2, tmp_path, capsys):
    out = tmp_path / "eval.json"
    assert _eval(qwen2, out, "--prompt-format", "chat", "--task", "gsm_symbolic") == 0
    report = json.loads(out.read_text())
    assert report["n"] == 3 and 0.0 <= report["accuracy_flexible"] <= 1.0
    assert {"answer_flexible", "correct_flexible"} <= set(report["records"][0])
    assert "accuracy_flexible" in capsys.readouterr().out


def test_eval_fewshot_and_a_custom_delimiter_run(qwen2, tmp_path):
    assert _eval(qwen2, tmp_path / "a.json", "--prompt-format", "fewshot", "--shots", "2") == 0
    assert _eval(qwen2, tmp_path / "b.json", "--prompt-format", "chat", "--shots", "1", "--system-prompt", "Be brief.",
                 "--step-delimiter", "\\n") == 0


def test_chat_on_a_tokenizer_without_template_exits_2_naming_it(gpt2, tmp_path, capsys):
    assert _eval(gpt2, tmp_path / "e.json", "--prompt-format", "chat") == 2
    err = capsys.readouterr().err
    assert err.startswith("roadmap eval: error: prompt format 'chat' needs a chat template")
    assert str(gpt2) in err and "--prompt-format plain" in err
    assert not (tmp_path / "e.json").exists()


def test_bad_prompt_flags_are_refused_before_loading(tmp_path, capsys):
    missing = tmp_path / "no-policy-here"
    missing.mkdir()
    assert _eval(missing, tmp_path / "e.json", "--shots", "2") == 2
    assert "--prompt-format plain: prompt format plain with shots=2" in capsys.readouterr().err


def test_task_by_import_path_from_the_cli(qwen2, tmp_path, monkeypatch, capsys):
    (tmp_path / "cli_user_tasks.py").write_text(
        "from roadmap.core.tasks import ArithTask\n\n"
        "class SmallArith(ArithTask):\n    name = 'small_arith'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "eval.json"
    assert _eval(qwen2, out, "--task", "cli_user_tasks:SmallArith", "--task-arg", "digits=1",
                 "--prompt-format", "chat") == 0
    assert json.loads(out.read_text())["task"] == "small_arith"
    assert _eval(qwen2, out, "--task", "cli_user_tasks:Nope") == 2
    assert "module 'cli_user_tasks' has no attribute 'Nope'" in capsys.readouterr().err


def test_sft_in_chat_format_trains_on_a_qwen2_standin(qwen2, tmp_path):
    out = tmp_path / "sft"
    assert main(["sft", "--policy", str(qwen2), "--out", str(out), "--problems", "8", "--max-steps", "2",
                 "--batch-size", "4", "--prompt-format", "chat"]) == 0
    assert (out / "config.json").exists()


def test_loop_binds_the_recipe_prompt_format_with_the_starting_policy_tokenizer(qwen2, gpt2, tmp_path):
    from roadmap.app.loop import LoopConfig, _Run
    from roadmap.core.errors import ConfigError

    run = _Run(LoopConfig(policy=str(qwen2), prompt={"kind": "chat"}), tmp_path / "run", say=lambda _: None)
    p = run.task.problems("test", n=1)[0]
    assert run.task.prompt(p).endswith("<|im_start|>assistant\n") and run.task.step_delimiter == "\n\n"
    with pytest.raises(ConfigError, match="needs a chat template"):
        _Run(LoopConfig(policy=str(gpt2), prompt={"kind": "chat"}), tmp_path / "run2", say=lambda _: None)
