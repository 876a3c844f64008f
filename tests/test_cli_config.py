"""`roadmap <command> --config FILE.yaml`: flags from a file, each type-checked, typed flags winning."""

import pytest
import yaml

from roadmap.app.cli import main
from roadmap.app.cli_config import expand_config
from roadmap.app.cli_parser import build_parser


def _write(tmp_path, text):
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    return str(path)


def test_config_keys_become_flags_before_the_typed_ones(tmp_path):
    path = _write(tmp_path, "command: eval\nn: 3\nmax_new_tokens: 16\ntask_arg: [digits=1, max_operands=3]\n"
                            "trust_remote_code: true\n")
    argv = expand_config(["eval", "--policy", "p", "--config", path, "--n", "2"], build_parser())
    args = build_parser().parse_args(argv)
    assert args.n == 2  # typed on the command line: wins over the file
    assert args.max_new_tokens == 16 and args.trust_remote_code is True
    assert args.task_arg == ["digits=1", "max_operands=3"]


def test_a_recipe_writes_prompt_lengths_and_model_as_sections_like_a_loop_recipe(tmp_path, caplog):
    """One recipe style: the sections of a loop recipe set the same flags; the old flat keys still load, with one
    deprecation note naming the section keys, and a section key no flag takes is refused naming the keys."""
    parser = build_parser()
    sections = _write(tmp_path, "command: eval\nprompt: {kind: chat, system_prompt: Be brief.}\n"
                                "lengths: {max_steps: 40, max_solution_tokens: 64, max_step_tokens: 32}\n"
                                "model: {dtype: bfloat16, trust_remote_code: true}\n")
    with caplog.at_level("WARNING"):
        new = parser.parse_args(expand_config(["eval", "--policy", "p", "--config", sections], parser))
    assert not caplog.records
    assert (new.prompt_format, new.system_prompt, new.max_solution_steps, new.max_new_tokens, new.max_step_tokens,
            new.dtype, new.trust_remote_code) == ("chat", "Be brief.", 40, 64, 32, "bfloat16", True)
    flat = tmp_path / "flat.yaml"
    flat.write_text("command: eval\nprompt_format: chat\nsystem_prompt: Be brief.\nmax_solution_steps: 40\n"
                    "max_new_tokens: 64\nmax_step_tokens: 32\ndtype: bfloat16\ntrust_remote_code: true\n")
    with caplog.at_level("WARNING"):
        old = parser.parse_args(expand_config(["eval", "--policy", "p", "--config", str(flat)], parser))
    assert vars(old) == vars(new)
    [note] = [r.getMessage() for r in caplog.records]
    assert "deprecated" in note and "prompt: {kind: chat, system_prompt: Be brief.}" in note
    assert "lengths: {max_steps: 40, max_solution_tokens: 64, max_step_tokens: 32}" in note
    # the note is YAML to copy: a value with a comma comes quoted
    comma = tmp_path / "comma.yaml"
    comma.write_text("command: eval\nsystem_prompt: 'Reason step by step, then answer.'\n")
    caplog.clear()
    with caplog.at_level("WARNING"):
        expand_config(["eval", "--policy", "p", "--config", str(comma)], parser)
    hint = caplog.records[0].getMessage().split("write ", 1)[1].split(" (the style")[0]
    assert yaml.safe_load(hint) == {"prompt": {"system_prompt": "Reason step by step, then answer."}}
    bad = _write(tmp_path, "command: eval\nlengths: {max_steps: 4, train_max_length: 9}\n")
    with pytest.raises(ValueError, match=r"lengths.train_max_length is not a setting this command takes; its "
                                         r"lengths: keys: \['max_solution_tokens', 'max_step_tokens'"):
        expand_config(["eval", "--policy", "p", "--config", bad], parser)
    twice = _write(tmp_path, "command: eval\nmax_new_tokens: 8\nlengths: {max_solution_tokens: 64}\n")
    with pytest.raises(ValueError, match="set the same flag --max-new-tokens"):
        expand_config(["eval", "--policy", "p", "--config", twice], parser)


def test_every_shipped_recipe_for_a_command_is_in_the_one_style(caplog):
    """recipes/real's test-time recipes load without a deprecation note."""
    from pathlib import Path

    parser = build_parser()
    recipes = [p for p in sorted(Path(__file__).resolve().parents[1].glob("recipes/**/*.yaml"))
               if "command" in (yaml.safe_load(p.read_text()) or {})]
    assert len(recipes) >= 6
    with caplog.at_level("WARNING"):
        for p in recipes:
            command = yaml.safe_load(p.read_text())["command"]
            parser.parse_args(expand_config([command, "--config", str(p)], parser))
    assert not caplog.records


def test_config_values_go_through_the_flags_type_checks(tmp_path, capsys):
    path = _write(tmp_path, "command: eval\nn: 0\n")
    with pytest.raises(SystemExit):
        main(["eval", "--policy", "p", "--config", path])
    assert "--n" in capsys.readouterr().err


@pytest.mark.parametrize("text, message", [
    ("command: eval\nnn: 3\n", "has no flag --nn (did you mean 'n'?)"),
    ("command: bench\nn: 3\n", "is a recipe for `roadmap bench`, not `roadmap eval`"),
    ("command: eval\ntrust_remote_code: maybe\n", "must be true or false"),
    ("- 1\n- 2\n", "must map flag names to values"),
])
def test_bad_config_files_are_refused_naming_the_key(tmp_path, capsys, text, message):
    path = _write(tmp_path, text)
    assert main(["eval", "--policy", "p", "--config", path]) == 2
    err = capsys.readouterr().err
    assert message in err and path in err


def test_missing_config_file_is_refused(tmp_path, capsys):
    assert main(["eval", "--policy", "p", "--config", str(tmp_path / "none.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err
