"""Command flags made from config dataclasses: no flag without a field, no scalar field without a flag."""

import argparse
import dataclasses

import pytest

from roadmap.app.cli import main
from roadmap.app.cli_config import expand_config
from roadmap.app.cli_fields import COMMAND_CONFIGS, config_fields, config_values, field_dest
from roadmap.app.cli_parser import build_parser

#: the flags a command has for its run, not for its config (folders, problems, loading, scale out, lengths)
RUN_FLAGS = {
    "policy", "out", "overwrite", "task", "task_arg", "prompt_format", "system_prompt", "shots", "step_delimiter",
    "max_length", "max_new_tokens", "rollout_tokens", "max_step_tokens", "max_solution_steps", "backend", "dtype",
    "device", "device_map", "attn_implementation", "trust_remote_code", "workers", "ray_address", "batch_size",
    "seed", "n", "samples", "completer", "shard_size", "labels", "init", "split", "prm", "prm_format",
    "aggregation", "help", "config", "debug", "which", "problem_seed",
}
#: the minimal command line of each command
MINIMAL = {
    "sft": ["sft", "--policy", "p", "--out", "o"],
    "label": ["label", "--policy", "p", "--out", "o"],
    "train-prm": ["train-prm", "--labels", "l", "--init", "p", "--out", "o"],
    "train-orm": ["train-orm", "--labels", "l", "--init", "p", "--out", "o"],
    "search": ["search", "--policy", "p", "--out", "o"],
    "bench": ["bench", "test-time", "--policy", "p", "--out", "o"],
    "eval": ["eval", "--policy", "p"],
    "tiny": ["tiny", "--out", "o"],
    "quickstart": ["quickstart"],
}


def _sub(command: str) -> argparse.ArgumentParser:
    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return subparsers.choices[command]


def _dests(command: str) -> set[str]:
    return {a.dest for a in _sub(command)._actions}


def _field_dests(command: str) -> set[str]:
    """The attributes the config's flags parse to (a field's flag may have another name: --label-type)."""
    return {field_dest(command, n) for n in config_fields(command)}


@pytest.mark.parametrize("command", sorted(COMMAND_CONFIGS))
def test_every_flag_is_a_config_field_or_a_run_input_and_every_scalar_field_has_a_flag(command):
    fields = _field_dests(command)
    dests = _dests(command)
    flags = [a.dest for a in _sub(command)._actions]
    assert len(flags) == len(set(flags)), "two flags parse to one attribute"
    assert fields <= dests, f"fields without a flag: {sorted(fields - dests)}"
    strays = dests - fields - RUN_FLAGS
    assert not strays, f"`roadmap {command}` flags with no config field: {sorted(strays)}"
    # a run flag named like a config field sets that field only where the command passes it on by design
    # (--seed also draws the problems; --out and --overwrite; the length flags): never a second, stray copy
    spec = COMMAND_CONFIGS[command]
    names = {f.name for f in dataclasses.fields(spec.config_class())}
    shadowed = (names & (dests - fields)) - set(config_fields(command)) - spec.skip
    assert shadowed <= {"overwrite"}, shadowed


@pytest.mark.parametrize("command", sorted(COMMAND_CONFIGS))
def test_an_unset_flag_leaves_the_configs_own_default(command):
    args = build_parser().parse_args(MINIMAL[command])
    values = config_values(args, command)
    assert values == dict(COMMAND_CONFIGS[command].defaults)
    built = COMMAND_CONFIGS[command].config_class()(**values)
    default = COMMAND_CONFIGS[command].config_class()(**COMMAND_CONFIGS[command].defaults)
    for name in config_fields(command):
        if name not in values:
            assert getattr(built, name) == getattr(default, name), name


def test_a_given_flag_sets_its_field_and_the_old_short_names_still_work():
    parser = build_parser()
    long = config_values(parser.parse_args(MINIMAL["sft"] + ["--learning-rate", "3e-4", "--warmup-fraction", "0.1"]),
                         "sft")
    short = config_values(parser.parse_args(MINIMAL["sft"] + ["--lr", "3e-4", "--warmup-fraction", "0.1"]), "sft")
    assert long == short == {"learning_rate": 3e-4, "warmup_fraction": 0.1}
    orm = config_values(parser.parse_args(MINIMAL["train-orm"] + ["--readout", "tokens", "--no-keep-best"]),
                        "train-orm")
    assert orm == {"labels": "hard", "readout": "tokens", "keep_best": False}  # the ORM's own label default stays
    search = config_values(parser.parse_args(MINIMAL["search"] + ["--method", "beam", "--budget", "4"]), "search")
    assert search == {"method": "beam", "budget": 4}


def test_a_config_file_sets_bool_fields_both_ways(tmp_path):
    path = tmp_path / "sft.yaml"
    path.write_text("command: sft\nlora: true\ngroup_by_length: false\nwarmup_fraction: 0.2\n")
    parser = build_parser()
    args = parser.parse_args(expand_config(MINIMAL["sft"] + ["--config", str(path)], parser))
    assert config_values(args, "sft") == {"lora": True, "group_by_length": False, "warmup_fraction": 0.2}


@pytest.mark.parametrize("argv, named", [
    (MINIMAL["sft"] + ["--warmup-fraction", "1.5"], "--warmup-fraction"),  # FIELD_RULES: a fraction in [0, 1)
    (MINIMAL["sft"] + ["--lr", "0"], "--lr"),
    (MINIMAL["sft"] + ["--problems", "0"], "--problems: '0' is not an integer >= 1"),  # by argparse, before any load
    (MINIMAL["train-prm"] + ["--readout", "nope"], "--readout"),
    (MINIMAL["search"] + ["--budget", "0"], "--budget"),
    (MINIMAL["label"] + ["--rollouts", "x"], "--rollouts"),
    (MINIMAL["bench"] + ["--budgets", "4,0"], "--budgets"),
    (MINIMAL["bench"] + ["--thinking-unit", "0"], "--thinking-unit"),
    (MINIMAL["bench"] + ["--methods", ","], "--methods"),
])
def test_a_bad_field_value_is_refused_in_one_line_naming_the_flag(argv, named, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and named in err[-1], err


def test_eval_flags_build_its_config_and_the_config_refuses_what_the_flags_did():
    from roadmap.app.evaluate import EvalConfig
    from roadmap.core.errors import ConfigError

    args = build_parser().parse_args(MINIMAL["eval"] + ["--n", "7", "--method", "majority", "--samples", "3",
                                                        "--split", "train", "--thinking-budget", "40"])
    config = EvalConfig(**config_values(args, "eval"))
    assert (config.num_problems, config.method, config.samples, config.split, config.thinking_budget) == \
        (7, "majority", 3, "train", 40)
    with pytest.raises(ConfigError, match="--thinking-budget N"):  # sequential is greedy under a budget
        EvalConfig(method="sequential")
    with pytest.raises(ConfigError, match="num_problems=0"):
        EvalConfig(num_problems=0)
    with pytest.raises(ConfigError, match="budget_mode='later'"):
        EvalConfig(budget_mode="later")
