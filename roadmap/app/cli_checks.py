"""Checks the ``roadmap`` command runs before any work, and its one error boundary.

Argument types (``positive_int`` ...) make argparse refuse a bad number with the flag's name;
``check_inputs`` makes every input path that looks like a path exist locally before a model
loads (no Hub lookup for a typo) and every output be writable before an eval runs;
``input_error_line`` turns a library error from bad input into the one line ``roadmap.app.cli.main``
prints. Imports no torch, so ``roadmap --help`` stays fast.
"""

from __future__ import annotations

import argparse
import errno
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from roadmap.core import ranges
from roadmap.core.errors import ConfigError, RoadmapError
from roadmap.core.io import folder_fingerprint, require_local_path

__all__ = ["number_type", "positive_int", "nonnegative_int", "positive_float", "nonnegative_float", "fraction", "probability", "int_list",
           "max_steps", "parse_task_args", "prompt_format_from_args", "check_inputs", "input_fingerprints",
           "checked_problems", "model_tokenizer", "input_error_line", "BUG_NOTE"]


def number_type(cast: Callable[[str], Any], ok: Callable[[Any], bool], rule: str) -> Callable[[str], Any]:
    """An argparse type: ``cast`` of the text, refused naming ``rule`` unless ``ok`` (a ``roadmap.core.ranges.Rule``'s
    test); argparse then prints the flag's name beside it."""
    def parse(text: str):
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {rule}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not {rule}")
        return value

    parse.__name__ = rule
    return parse


# the ranges of roadmap.core.ranges, which the recipe keys of the same settings are checked against
positive_int = number_type(int, ranges.POSITIVE_INT.ok, ranges.POSITIVE_INT.text)
nonnegative_int = number_type(int, ranges.NONNEGATIVE_INT.ok, ranges.NONNEGATIVE_INT.text)
positive_float = number_type(float, ranges.POSITIVE.ok, ranges.POSITIVE.text)
nonnegative_float = number_type(float, ranges.NONNEGATIVE.ok, ranges.NONNEGATIVE.text)
fraction = number_type(float, ranges.FRACTION.ok, ranges.FRACTION.text)
probability = number_type(float, ranges.PROBABILITY.ok, ranges.PROBABILITY.text)
max_steps = number_type(int, lambda v: v == -1 or v >= 1, "-1 (no step limit) or an integer >= 1")


def int_list(minimum: int | None = None) -> Callable[[str], tuple[int, ...]]:
    """An argparse type for "1,4,16": a tuple of integers, each >= ``minimum`` when given."""
    rule = "a comma-separated list of integers" + (f" >= {minimum}" if minimum is not None else "")

    def parse(text: str) -> tuple[int, ...]:
        try:
            values = tuple(int(x) for x in text.split(","))
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {rule} (e.g. 1,4,16)") from None
        if minimum is not None and min(values) < minimum:
            raise argparse.ArgumentTypeError(f"{text!r} is not {rule}")
        return values

    parse.__name__ = "list"
    return parse


def str_list(text: str) -> tuple[str, ...]:
    """An argparse type for "greedy,majority": a tuple of the non-empty names, in order."""
    values = tuple(x.strip() for x in text.split(",") if x.strip())
    if not values:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of names (e.g. greedy,majority)")
    return values


str_list.__name__ = "list"


def parse_task_args(pairs: Sequence[str]) -> dict[str, Any]:
    """Turn ["min_operands=3", "source=data.jsonl"] into keyword arguments (numbers parsed)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair or not pair.split("=", 1)[0]:
            raise ConfigError(f"--task-arg {pair!r} is not KEY=VALUE; write e.g. --task-arg min_operands=3")
        key, value = pair.split("=", 1)
        for cast in (int, float):
            try:
                out[key] = cast(value)
                break
            except ValueError:
                continue
        else:
            out[key] = value
    return out


def prompt_format_from_args(args: argparse.Namespace):
    """The ``PromptFormat`` of the --prompt-format, --system-prompt, --shots and --step-delimiter flags,
    or None for a command without them. ``--step-delimiter '\\n\\n'`` reads its backslash escapes."""
    import codecs

    from roadmap.core.tasks.prompts import PromptFormat

    if not hasattr(args, "prompt_format"):
        return None
    delimiter = args.step_delimiter
    if delimiter is not None:
        try:
            delimiter = codecs.decode(delimiter, "unicode_escape")
        except UnicodeError as err:
            raise ConfigError(f"--step-delimiter {args.step_delimiter!r} has a bad backslash escape ({err}); "
                              "write e.g. '\\n\\n'") from None
    try:
        return PromptFormat(kind=args.prompt_format, system_prompt=args.system_prompt, shots=args.shots,
                            step_delimiter=delimiter)
    except ConfigError as err:
        raise ConfigError(f"--prompt-format {args.prompt_format}: {err}") from None


#: argument -> what it names, for the path check
_INPUT_PATHS = {"policy": "--policy folder", "completer": "--completer folder", "init": "--init policy folder",
                "prm": "--prm reward model folder", "labels": "--labels folder", "recipe": "recipe",
                "points": "points file", "prm_dir": "--prm-dir folder"}
#: commands whose --out is a file rather than a folder
_FILE_OUTPUTS = ("eval",)
#: the keys every report file of those commands held before reports named their writer (``owned_payload``)
_LEGACY_FILE_KEYS = {"eval": ("task", "method", "samples", "n", "accuracy", "ci95", "records")}


def _input_paths(args: argparse.Namespace) -> dict[str, str]:
    """What the command reads, by the name the messages give it: the path arguments and a data file."""
    inputs = {what: getattr(args, attr) for attr, what in _INPUT_PATHS.items() if getattr(args, attr, None)}
    source = parse_task_args(getattr(args, "task_arg", None) or []).get("source")
    if isinstance(source, str):
        inputs["--task-arg source"] = source
    if args.command == "run":  # what the recipe reads, unless a flag overrides it (a bad recipe is named later)
        inputs.update({k: v for k, v in _recipe_inputs(args.recipe).items() if k not in inputs})
    if args.command == "run" and getattr(args, "out", None) and args.recipe:
        # resuming with the run's own saved recipe reads a file the library wrote there: not an overlap
        if Path(args.recipe).expanduser().absolute() == (Path(args.out).expanduser() / "config.yaml").absolute():
            inputs.pop("recipe", None)
    return inputs


def _recipe_inputs(recipe: str) -> dict[str, str]:
    """The paths a recipe reads (policy, prm_dir, its data file), named as the flags that override them."""
    import yaml

    try:
        data = yaml.safe_load(Path(recipe).read_text(encoding="utf-8"))
    except (OSError, ValueError, yaml.YAMLError):
        return {}
    if not isinstance(data, dict):
        return {}
    found = {"--policy folder": data.get("policy"), "--prm-dir folder": data.get("prm_dir"),
             "--task-arg source": (data.get("task_args") or {}).get("source")
             if isinstance(data.get("task_args"), dict) else None}
    return {k: v for k, v in found.items() if isinstance(v, str) and v}


def check_inputs(args: argparse.Namespace) -> None:
    """Refuse, before any work: a missing input path, a bad prompt format, and an ``--out`` that cannot be
    written, or that would replace or write into an input or a file the library did not write (the
    write guard of ``roadmap.core.outputs``)."""
    from roadmap.core.outputs import check_output_file, check_overlap, check_writable, claim_output_dir

    prompt_format_from_args(args)
    for attr, what in _INPUT_PATHS.items():
        value = getattr(args, attr, None)
        if value:  # labels, recipes and points are never Hub ids: a Path is always checked
            require_local_path(Path(value) if attr in ("labels", "recipe", "points") else value, what)
    out = getattr(args, "out", None)
    if not out:
        return
    check_overlap({"--out": out}, _input_paths(args))
    out = Path(out)
    if args.command in _FILE_OUTPUTS:
        if out.is_dir():
            raise ConfigError(f"--out {str(out)!r} is a folder; --out takes a file name for the JSON report, "
                              f"e.g. {out / 'report.json'}")
        parent = next((p for p in out.absolute().parents if p.exists()), None)
        if parent is not None and not parent.is_dir():
            raise ConfigError(f"--out {str(out)!r}: {parent} is a file, not a folder; pick another --out")
        check_output_file(out, args.command, legacy_keys=_LEGACY_FILE_KEYS[args.command])
    elif out.exists() and not out.is_dir():
        raise ConfigError(f"--out {str(out)!r} is a file; --out takes a folder here, pick another name")
    elif args.command in ("run", "search", "bench", "quickstart"):  # written in place: the library's own, or new
        claim_output_dir(out, args.command, legacy=_legacy_dir(args.command), check_only=True)
    elif args.command == "fit":
        check_output_file(out / "fit.json", "fit", legacy_keys=("sigmoid", "power_law"), what="--out file")
        if (out / "fit.png").exists() and not (out / "fit.json").exists():
            raise ConfigError(f"--out {str(out)!r} holds a fit.png without the fit.json `roadmap fit` writes beside "
                              "it; it is never replaced: pick another --out, or move fit.png away")
    check_writable(out)


def _legacy_dir(command: str):
    """The test that an unmarked folder is ``command``'s output from before markers (``claim_output_dir``)."""
    if command == "run":
        from roadmap.app.loop import legacy_run_dir

        return legacy_run_dir
    if command == "search":
        from roadmap.app.train_search import legacy_search_dir

        return legacy_search_dir
    if command == "quickstart":
        from roadmap.app.quickstart import legacy_quickstart_dir

        return legacy_quickstart_dir
    from roadmap.app.bench import legacy_bench_dir

    return legacy_bench_dir


def input_fingerprints(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """(policy inputs, scorer inputs) identifying what a bench/search result is made from: the
    policy folder's fingerprint (or its Hub id) with the prompt format when it is not the plain
    default, and the PRM folder's with the aggregation."""

    def ident(path: str) -> str:
        return folder_fingerprint(path) if Path(path).expanduser().exists() else f"hub:{path}"

    policy = {"policy": ident(args.policy)}
    fmt = prompt_format_from_args(args)
    if fmt is not None and fmt != type(fmt)():
        policy["prompt_format"] = fmt.to_dict()  # the plain default adds nothing, so older results still match
    scorer = {"prm": ident(args.prm), "aggregation": args.aggregation} if getattr(args, "prm", None) else {}
    return policy, scorer


def model_tokenizer(args: argparse.Namespace, folder, required: bool = False):
    """The tokenizer of the model folder ``folder``, loaded alone; None when none loads alone (a GGUF file, a
    folder the model loader will name) unless ``required`` (a chat format needs it): that loader then says
    what is wrong."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(folder, trust_remote_code=getattr(args, "trust_remote_code", False))
    except (OSError, ValueError):
        if required:
            raise
        return None


def checked_problems(task, split: str, n: int | None, seed: int) -> list:
    """``task.problems(split, n, seed)``, refusing an empty list (an empty data file, a split with
    no rows): it would report accuracy 0 over nothing; fewer than ``n`` problems is warned about,
    giving the count used."""
    problems = task.problems(split, n=n, seed=seed)
    short = problems and n is not None and len(problems) < n
    if short and not getattr(task, "warns_when_short", False):  # a smaller evaluation than asked must not pass unseen
        source = getattr(task, "source", None)
        print(f"roadmap: WARNING: --n {n}: task {task.name!r}{f' (source {str(source)!r})' if source else ''} has "
              f"only {len(problems)} {split} problems; using those {len(problems)}", file=sys.stderr)
    if not problems:
        source = getattr(task, "source", None)
        where = f" (source {str(source)!r})" if source is not None else ""
        raise ConfigError(f"task {task.name!r} has no {split} problems{where}; pass a data file with {split} rows, "
                          "or another --split")
    return problems


#: errors of the machine rather than of the library or its input (a full disk, a read-only folder): one line too
_ENVIRONMENT_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM)


def input_error_line(err: BaseException) -> str | None:
    """The one-line message for a library error caused by bad input, or None for a bug (which keeps its traceback).

    One line: the library's own ``RoadmapError``s, a YAML file that does not parse, and an OS error of the
    machine (a full disk, a folder that refuses writes). Any other exception, a bare ``ValueError`` or
    ``KeyError`` included, is a bug: the library raises ``RoadmapError`` subclasses for bad input.
    """
    yaml = sys.modules.get("yaml")  # a YAML error can only come from a loaded yaml
    if isinstance(err, RoadmapError) or (yaml is not None and isinstance(err, yaml.YAMLError)):
        text = " ".join(str(err).split()) or type(err).__name__
        return text if isinstance(err, RoadmapError) else f"{type(err).__name__}: {text}"
    if isinstance(err, OSError) and err.errno in _ENVIRONMENT_ERRNOS:
        where = f" ({err.filename})" if err.filename else ""
        return f"{err.strerror or err}{where}; free space or pick a folder you can write to, and rerun"
    return None


#: the line added under the traceback of an exception that is not the library's bad-input error
BUG_NOTE = ("this is a bug in o1-roadmap, not a problem with your input: please report it with the traceback above "
            "and the command you ran")
