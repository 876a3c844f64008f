"""`roadmap <command> --config FILE.yaml`: flags from a file, each type-checked, typed flags winning."""

import pytest

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
