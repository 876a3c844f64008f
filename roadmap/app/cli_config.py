"""``roadmap <command> --config FILE.yaml``: a command's flags kept in a YAML file (a test-time recipe).

search-and-learn runs ``python scripts/test_time_compute.py recipes/<model>/beam_search.yaml``;
here ``roadmap eval --config recipes/real/<model>/beam_math500.yaml`` does the same. The file's
keys are the command's long flags (``n``, ``method``, ``budget`` for ``--n``, ``--method``, ``--budget``), plus
``command:`` naming the command it is for, and the sections a loop recipe writes the same settings in:
``prompt:`` (``roadmap.core.tasks.PromptFormat``: ``{kind: chat}`` for ``--prompt-format chat``), ``lengths:``
(``roadmap.core.Lengths``: ``{max_steps: 40}`` for ``--max-solution-steps 40``) and ``model:`` (``{dtype:
bfloat16}`` for ``--dtype bfloat16``), so one recipe style serves every command. A flat key that a section holds
(``prompt_format``, ``max_solution_steps``, ``dtype`` ...) still loads, with a deprecation note naming the section
key. Values become command-line tokens placed before the ones typed, so every value goes through the flag's own
type check and a flag typed on the command line wins over the file. An unknown key fails at once, naming the
file, the key, the closest flag and the command's flags.
"""

from __future__ import annotations

import argparse
import difflib
import logging
from collections.abc import Sequence
from pathlib import Path

from roadmap.core.errors import ConfigError, MissingPathError

__all__ = ["expand_config", "SECTIONS"]

logger = logging.getLogger(__name__)


def _sections() -> dict[str, dict[str, str]]:
    """Recipe section -> its keys -> the flag (without dashes) each sets."""
    from roadmap.app.cli_parser import LENGTH_FLAGS

    return {
        "prompt": {"kind": "prompt-format", "system_prompt": "system-prompt", "shots": "shots",
                   "step_delimiter": "step-delimiter"},
        "lengths": {field: flag[2:] for flag, field in LENGTH_FLAGS.items()},
        # roadmap.core.backends.ModelOptions, as a loop recipe's model: section
        "model": {k: k.replace("_", "-") for k in ("dtype", "device", "device_map", "attn_implementation",
                                                  "trust_remote_code")},
    }


#: the sections a ``--config`` file may hold, as a loop recipe does: section -> key -> flag
SECTIONS = _sections()


def _flags(sub: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """Long flag name without dashes -> its action, for the optional arguments of ``sub``."""
    out = {}
    for action in sub._actions:
        for option in action.option_strings:
            if option.startswith("--") and option not in ("--help", "--config", "--debug"):
                out[option[2:]] = action
    return out


def _tokens(path: str, key: str, value, action: argparse.Action) -> list[str]:
    flag = action.option_strings[-1] if action.option_strings[-1].startswith("--") else f"--{key}"
    if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: {key}={value!r} must be true or false (it switches {flag})")
        on = value if isinstance(action, argparse._StoreTrueAction) else not value
        return [flag] if on else []
    if isinstance(action, argparse.BooleanOptionalAction):  # a config's bool field: --lora / --no-lora
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: {key}={value!r} must be true or false (it switches {action.option_strings[0]})")
        return [action.option_strings[0 if value else 1]]  # option_strings: --lora, --no-lora (aliases after)
    if isinstance(action, argparse._AppendAction):
        items = value if isinstance(value, list) else [value]
        return [t for item in items for t in (flag, _text(item))]
    if isinstance(value, (list, tuple)):
        value = ",".join(_text(v) for v in value)  # comma-separated flags (--budgets 4,16)
    if isinstance(value, dict) or value is None:
        raise ConfigError(f"{path}: {key}={value!r} is not a value {flag} takes; write a number, a string or a list")
    return [flag, _text(value)]


def _text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def expand_config(argv: Sequence[str], parser: argparse.ArgumentParser) -> list[str]:
    """``argv`` with ``--config FILE`` replaced by the flags the file holds (typed flags still win)."""
    import yaml

    argv = list(argv)
    if "--config" not in argv and not any(a.startswith("--config=") for a in argv):
        return argv
    i = next(k for k, a in enumerate(argv) if a == "--config" or a.startswith("--config="))
    if argv[i] == "--config":
        if i + 1 >= len(argv):
            raise ConfigError("--config needs a YAML file: roadmap <command> --config FILE.yaml")
        path, rest = argv[i + 1], argv[:i] + argv[i + 2 :]
    else:
        path, rest = argv[i].split("=", 1)[1], argv[:i] + argv[i + 1 :]
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    command = next((a for a in rest if a in subparsers.choices), None)
    if command is None:
        raise ConfigError(f"--config {path}: name the command first, e.g. roadmap eval --config {path}")
    p = Path(path)
    if not p.is_file():
        raise MissingPathError(f"--config {path} does not exist; see recipes/real/ for examples")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"--config {path} is not valid YAML: {e}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"--config {path} holds a {type(data).__name__}; it must map flag names to values")
    wanted = data.pop("command", command)
    if wanted != command:
        raise ConfigError(f"--config {path} is a recipe for `roadmap {wanted}`, not `roadmap {command}`; "
                          f"run roadmap {wanted} --config {path}")
    flags = _flags(subparsers.choices[command])
    tokens: list[str] = []
    for key, value in _flat(path, data, flags).items():
        name = str(key).replace("_", "-")
        if name not in flags:
            close = difflib.get_close_matches(name, sorted(flags), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"--config {path}: `roadmap {command}` has no flag --{name}{hint}; "
                              f"its flags: {sorted(flags)}")
        tokens += _tokens(path, name, value, flags[name])
    at = rest.index(command) + 1
    return rest[:at] + tokens + rest[at:]


def _flat(path: str, data: dict, flags: dict[str, argparse.Action]) -> dict:
    """``data`` with its sections (``prompt:``, ``lengths:``, ``model:``) spelled as flags; a flat key a section
    holds gets a deprecation note naming the section key."""
    by_flag = {flag: (section, key) for section, keys in SECTIONS.items() for key, flag in keys.items()}
    out: dict = {}
    old: dict[str, dict[str, str]] = {}  # flat keys a section holds: section -> {its key: value}
    for key, value in data.items():
        if key in SECTIONS and isinstance(value, dict):
            for sub, v in value.items():
                flag = SECTIONS[key].get(str(sub))
                if flag is None or flag not in flags:
                    takes = sorted(k for k, f in SECTIONS[key].items() if f in flags)
                    raise ConfigError(f"--config {path}: {key}.{sub} is not a setting this command takes; "
                                      f"its {key}: keys: {takes}")
                if flag in out:
                    raise ConfigError(f"--config {path}: {key}.{sub} and {flag.replace('-', '_')} set the same flag "
                                      f"--{flag}; keep {key}.{sub}")
                out[flag] = v
            continue
        name = str(key).replace("_", "-")
        if name in by_flag and name in flags and key not in SECTIONS:
            section, sub = by_flag[name]
            old.setdefault(section, {})[sub] = value
        if name in out:
            raise ConfigError(f"--config {path}: {key} sets the flag --{name}, which another key of the file sets "
                              "too; keep one")
        out[name] = value
    if old:
        import yaml

        new = ", ".join(yaml.safe_dump({section: keys}, default_flow_style=True, sort_keys=False, width=10**6).strip()[1:-1]
                        for section, keys in old.items())  # flow style, quoted where YAML needs it
        logger.warning("%s: flat keys for settings a section holds are deprecated in a recipe; write %s (the style of "
                       "every recipe, as a loop recipe writes them)", path, new)
    return out
