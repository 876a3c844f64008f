"""Command flags made from config dataclasses, in the manner of transformers' ``HfArgumentParser``.

A command that builds a config (``roadmap sft`` -> ``SFTWarmStartConfig``, ``train-prm``/``train-orm`` ->
``RewardModelConfig``, ``label`` -> ``LabelConfig``, ``search`` -> ``TrainSearchConfig``, ``bench test-time`` ->
``TestTimeConfig``, ``eval`` -> ``EvalConfig``, ``tiny`` -> ``TinyConfig``, ``quickstart`` ->
``QuickstartConfig``) gets one flag per scalar field of that config, and per tuple field given a list type
(``--budgets 1,4,16``): ``--learning-rate`` for ``learning_rate``, typed from the field's annotation and
``roadmap.core.ranges.FIELD_RULES``, its help the field's own, its default the config's. So a flag cannot exist
without a config field, nor a scalar field without a flag, and a default cannot drift between the two. The short
names the commands had (``--lr``, ``--minutes``, ``--problems``, ``--label-type``) stay as aliases.

Each flag parses to None unless given; ``config_values`` then gives the fields the user set, and the config's
own default holds for the rest. Fields that are not scalars (``lengths``, ``trainer_kwargs``) have their own
flags (``--max-length`` ...) or are for recipes only; ``output_dir`` and ``overwrite`` come from ``--out`` and
``--overwrite``.
"""

from __future__ import annotations

import argparse
import importlib
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import MISSING, Field, dataclass, field, fields, replace
from typing import Any

from roadmap.app.cli_checks import int_list, max_steps, number_type, str_list

__all__ = ["ConfigFlags", "COMMAND_CONFIGS", "config_options", "config_values", "config_fields", "field_dest"]

#: fields every command sets from its own flags (--out, --overwrite), never from a field flag
_SET_BY_COMMAND = frozenset({"output_dir", "overwrite"})


@dataclass(frozen=True)
class ConfigFlags:
    """How one command's flags come from its config class.

    Attributes:
        config: ``module:Class`` of the config dataclass (imported when the parser is built; config modules
            import no model code).
        flags: field -> its flags where they are not just ``--field-name``: the short names the command had
            (``learning_rate`` -> ``--learning-rate``, ``--lr``), or another name where the command's own flag
            takes it (train-prm's ``--labels`` is the label folder, so the ``labels`` field is ``--label-type``).
        defaults: field -> this command's default where it differs from the config's (train-orm's labels).
        choices: field -> the values its flag takes (from the config module's own tuples).
        types: field -> an argparse type where the field's range is not in ``FIELD_RULES``.
        skip: fields with no flag here (and why, for the reader).
    """

    config: str
    flags: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    defaults: Mapping[str, Any] = field(default_factory=dict)
    choices: Mapping[str, str] = field(default_factory=dict)
    types: Mapping[str, Callable[[str], Any]] = field(default_factory=dict)
    skip: frozenset[str] = frozenset()

    def config_class(self) -> type:
        module, name = self.config.split(":")
        return getattr(importlib.import_module(module), name)


_REWARD_MODEL = ConfigFlags("rewards.prm_training:RewardModelConfig",
                            flags={"labels": ("--label-type",), "max_minutes": ("--max-minutes", "--minutes"),
                                   "learning_rate": ("--learning-rate", "--lr")},
                            choices={"labels": "rewards.prm_training:LABEL_KINDS", "readout": "rewards.prm:READOUTS",
                                     "select_by": "rewards.prm_training:SELECT_BY"},
                            types={"max_steps": max_steps})

#: command -> how its flags come from its config
COMMAND_CONFIGS: dict[str, ConfigFlags] = {
    "sft": ConfigFlags("policy_init.sft:SFTWarmStartConfig",
                       flags={"num_problems": ("--num-problems", "--problems"),
                              "max_minutes": ("--max-minutes", "--minutes"), "learning_rate": ("--learning-rate", "--lr")},
                       types={"max_steps": max_steps}),
    "train-prm": _REWARD_MODEL,
    "train-orm": replace(_REWARD_MODEL, defaults={"labels": "hard", "readout": "step_end"}),
    # label and search: --seed also draws the problems, so it is the command's own flag (passed to the config)
    "label": ConfigFlags("rewards.labels:LabelConfig", choices={"method": "rewards.labels:METHODS"},
                         skip=frozenset({"seed"})),
    # --method's choices are the search registry's, plugins included (set by the parser)
    "search": ConfigFlags("roadmap.app.train_search:TrainSearchConfig",
                          choices={"mcts_evaluation": "search.registry:MCTS_EVALUATIONS"}, skip=frozenset({"seed"})),
    "tiny": ConfigFlags("policy_init.tiny:TinyConfig",
                        flags={"max_position_embeddings": ("--max-position-embeddings", "--max-positions")},
                        choices={"tokenizer": "policy_init.tiny:TOKENIZERS"}),
    # --out is the command's own flag (the quickstart folder); its help and default stay there
    "quickstart": ConfigFlags("roadmap.app.quickstart:QuickstartConfig", skip=frozenset({"out"})),
    # --n is the problem count, as in search and bench; --method's choices are the registry's (set by the parser)
    "eval": ConfigFlags("roadmap.app.evaluate:EvalConfig", flags={"num_problems": ("--n",)},
                        choices={"split": "roadmap.core.tasks.base:SPLITS", "budget_mode": "search.budget_forcing:BUDGET_MODES"}),
    # the grid's tuple fields are comma-separated lists (TestTimeConfig names an unknown method)
    "bench": ConfigFlags("roadmap.app.bench:TestTimeConfig",
                         types={"methods": str_list, "budgets": int_list(1), "seeds": int_list()}),
}


def _scalar(hint: Any) -> type | None:
    """``int``, ``float``, ``str`` or ``bool`` for a field annotated with one of them (or it | None); else None."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        hint = args[0] if len(args) == 1 else None
    return hint if hint in (int, float, str, bool) else None


def _rule_type(name: str, kind: type) -> Callable[[str], Any]:
    """The argparse type of a number field: ``kind`` checked against its ``FIELD_RULES`` range, if it has one."""
    from roadmap.core.ranges import FIELD_RULES

    rule = FIELD_RULES.get(name)
    return kind if rule is None else number_type(kind, rule.ok, rule.text)


def config_fields(command: str) -> dict[str, Field]:
    """The fields of ``command``'s config that have a flag: its scalar fields and those with their own argparse type
    (a tuple field's list), less the command's own and skips."""
    spec = COMMAND_CONFIGS[command]
    cls = spec.config_class()
    hints = typing.get_type_hints(cls)
    return {f.name: f for f in fields(cls) if (_scalar(hints[f.name]) is not None or f.name in spec.types)
            and f.name not in _SET_BY_COMMAND | spec.skip}


def field_dest(command: str, name: str) -> str:
    """The attribute the flag of ``command``'s config field ``name`` parses to: its first flag's name (``labels`` ->
    ``--label-type`` -> ``label_type``, never the ``--labels`` folder's)."""
    spec = COMMAND_CONFIGS[command]
    return spec.flags[name][0][2:].replace("-", "_") if name in spec.flags else name


def _resolve(path: str) -> tuple:
    module, name = path.split(":")
    return tuple(getattr(importlib.import_module(module), name))


def _default(f: Field) -> Any:
    if f.default is not MISSING:
        return f.default
    return f.default_factory() if f.default_factory is not MISSING else None


def config_options(p: argparse.ArgumentParser, command: str, choices: Mapping[str, tuple] | None = None) -> None:
    """Add ``command``'s config flags to ``p`` (``COMMAND_CONFIGS``): one per ``config_fields`` entry.

    ``choices`` adds field -> allowed values known only when the parser is built (the search registry's methods).
    """
    spec = COMMAND_CONFIGS[command]
    cls = spec.config_class()
    hints = typing.get_type_hints(cls)
    g = p.add_argument_group(f"{cls.__name__} ({cls.__module__}; a --config file's keys are these fields)")
    for name, f in config_fields(command).items():
        kind = _scalar(hints[name])
        default = spec.defaults.get(name, _default(f))
        flags = spec.flags.get(name) or (f"--{name.replace('_', '-')}",)
        text = f.metadata.get("help", "").strip().replace("%", "%%")  # argparse formats help with %
        allowed = (choices or {}).get(name) or (_resolve(spec.choices[name]) if name in spec.choices else None)
        if kind is bool:
            g.add_argument(*flags, dest=field_dest(command, name), action=argparse.BooleanOptionalAction, default=None,
                           help=f"{text} Default: {'on' if default else 'off'}.")
            continue
        shown = ",".join(map(str, default)) if isinstance(default, (tuple, list)) else default
        g.add_argument(*flags, dest=field_dest(command, name), default=None, choices=allowed,
                       type=spec.types.get(name) or (_rule_type(name, kind) if kind in (int, float) else str),
                       metavar=None if allowed else name.upper(),
                       help=f"{text} Default: {shown}.")


def config_values(args: argparse.Namespace, command: str) -> dict[str, Any]:
    """The config fields ``args`` set for ``command`` (given flags, and this command's own defaults); the
    config's defaults hold for the others."""
    spec = COMMAND_CONFIGS[command]
    given = {name: getattr(args, field_dest(command, name), None) for name in config_fields(command)}
    out = {name: value for name, value in given.items() if value is not None}
    return {**{k: v for k, v in spec.defaults.items() if k not in out}, **out}
