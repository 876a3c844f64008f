"""The recipe of the search-and-learn loop (``roadmap run``), typed and checked before any work.

A recipe is YAML: top-level keys are ``LoopConfig``'s fields, and its ``search:``, ``learn:``,
``prm:``, ``model:`` and ``prompt:`` sections hold the fields of the phase's own config class
(``prompt:`` those of ``roadmap.core.tasks.PromptFormat``); ``lengths:`` holds the fields of
``roadmap.core.Lengths``, the length limits every phase reads. ``LoopConfig.__post_init__``
builds those typed configs at once, so a misspelled key at any depth, a value of the wrong type
or an unknown task fails in well under a second, naming the key, its section, the known keys
(and the closest one), before the run folder is touched. The recipe itself is kept as plain
dicts (what ``config.yaml`` stores), so run folders written by older versions still resume.
"""

from __future__ import annotations

import difflib
import logging
import types
import typing
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from roadmap.core.errors import ConfigError, MissingPathError, RecipeError
from roadmap.core.lengths import Lengths
from roadmap.core.ranges import check_ranges

logger = logging.getLogger(__name__)

__all__ = ["LoopConfig", "PRMPhaseConfig", "RecipeError", "load_recipe"]


_LENGTHS_REASON = "the top-level lengths: section, e.g. `lengths: {max_solution_tokens: 2048}`"


@dataclass
class PRMPhaseConfig:
    """The loop's own knobs of the ``prm:`` section (besides ``LabelConfig``/``RewardModelConfig`` fields)."""

    problems: int = field(default=1000, metadata={"help": "Training problems whose sampled solutions are labelled."})
    samples: int = field(default=4, metadata={"help": "Solutions sampled per labelled problem."})
    aggregation: str = field(default="min", metadata={"help": "How the PRM's step scores make one: min | prod | last | mean."})

    def __post_init__(self) -> None:
        from rewards import AGGREGATIONS

        if self.problems < 1 or self.samples < 1:
            raise ConfigError(f"problems={self.problems} and samples={self.samples} must be at least 1")
        if self.aggregation not in AGGREGATIONS:
            raise ConfigError(f"aggregation={self.aggregation!r} is unknown; use one of {AGGREGATIONS}")


_NAMES = {int: "an int", float: "a number", bool: "a bool (true or false)", str: "a string", dict: "a mapping",
          list: "a list", tuple: "a list", type(None): "null"}


def _type_name(hint: Any) -> str:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_type_name(h) for h in typing.get_args(hint))
    hint = typing.get_origin(hint) or hint
    return _NAMES.get(hint, getattr(hint, "__name__", str(hint)))


def _fits(value: Any, hint: Any) -> bool:
    """Whether ``value`` (as YAML reads it) is of type ``hint``: bools are not numbers, ints are floats."""
    if hint is Any:
        return True
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if origin is not None:
        hint = origin
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint in (tuple, list):
        return isinstance(value, (tuple, list))
    return isinstance(value, hint) if isinstance(hint, type) else True


def check_types(values: dict[str, Any], cls: type, where: str) -> None:
    """Raise RecipeError for the first value in ``values`` that is not of its ``cls`` field's type."""
    hints = typing.get_type_hints(cls)
    for key, value in values.items():
        hint = hints.get(key, Any)
        if not _fits(value, hint):
            fix = ""
            if isinstance(value, str) and _fits(0.5, hint):
                try:
                    float(value)
                    fix = f" (YAML reads {value} as a string: write it with a decimal point, e.g. 1.0e-4, or in full)"
                except ValueError:
                    pass
            raise RecipeError(f"{where}{key}={value!r} is {_type_name(type(value))}; it must be {_type_name(hint)}{fix}")


def _unknown(keys, known, where: str, elsewhere: dict[str, str] | None = None) -> None:
    """RecipeError for keys not in ``known``, with the closest known key; ``elsewhere``: key -> where it belongs."""
    unknown = sorted(set(keys) - set(known))
    if not unknown:
        return
    elsewhere = elsewhere or {}
    belongs = "".join(f"; {k!r} belongs to {elsewhere[k]}" for k in unknown if k in elsewhere)
    close = {k: m[0] for k in unknown if (m := difflib.get_close_matches(k, sorted(known), n=1))}
    if len(unknown) == 1 and close:
        guess = f" (did you mean {close[unknown[0]]!r}?)"
    else:
        guess = "".join(f" ({m!r} for {k!r}?)" for k, m in close.items())
    raise RecipeError(f"{where}: unknown keys {unknown}{guess}{belongs}; known keys: {sorted(known)}")


#: RLConfig fields the loop cannot serve: its learners get no demonstrations (the ladder's learner: rl passes its seed set)
_NO_DEMONSTRATIONS = {k: "the loop passes no demonstrations to RL; the ladder (learner: rl) keeps its seed set in RL's "
                         "loss with rl.sft_weight" for k in ("sft_weight", "sft_batch")}


def build_section(cls: type, values: Any, section: str, *, set_by_loop: dict[str, str] | None = None,
                  label: str = "", elsewhere: dict[str, str] | None = None):
    """``cls(**values)`` with every key and type checked; errors name ``section`` (e.g. "learn").

    ``set_by_loop`` maps fields the loop sets itself to the reason, given when a recipe sets one;
    ``label`` says what the section is built into (default: the class name); ``elsewhere`` maps
    keys of other sections' classes to where they belong, for the error on such a key.
    """
    if not isinstance(values, dict):
        raise RecipeError(f"{section} must be a mapping of {cls.__name__} fields, not {_type_name(type(values))} "
                          f"{values!r}; write e.g. `{section}: {{...}}`")
    loop_set = set_by_loop or {}
    for key in values:
        if key in loop_set:
            raise RecipeError(f"{section}.{key} is set by the loop ({loop_set[key]}); remove it from the recipe")
    _unknown(values, {f.name for f in fields(cls)} - set(loop_set), f"{section} ({label or cls.__name__})", elsewhere)
    check_types(values, cls, f"{section}.")
    try:
        check_ranges(values, f"{section}.")
    except ConfigError as e:
        raise RecipeError(str(e)) from None
    try:
        return cls(**values)
    except (TypeError, ValueError) as e:
        raise RecipeError(f"{section}: {e}") from e


@dataclass
class LoopConfig:
    """A recipe of ``roadmap run``: what each phase of each iteration does.

    The sections are dicts of the fields of the phase's own config class, built and checked
    at construction into typed attributes:

    - ``search_config``: ``roadmap.app.train_search.TrainSearchConfig`` from ``search`` (its seed
      is the loop's; iteration k searches with ``seed + 104729 k``);
    - ``learner`` and ``learn_config``: ``learn.algorithm`` (default expert_iteration) looked up
      in ``learning.registry``, and its config class built from the rest of ``learn``;
    - ``prompt_format``: ``roadmap.core.tasks.PromptFormat`` from ``prompt`` (the task's prompt format);
    - ``prm_config``, ``label_config``, ``reward_model_config``: ``PRMPhaseConfig``,
      ``rewards.LabelConfig`` and ``rewards.RewardModelConfig`` from ``prm`` (a key goes to every
      one of them that has it);
    - ``lengths_config``: ``roadmap.core.Lengths`` from ``lengths``, set into every typed config
      above that has a ``lengths`` field (so a section may not set its own), and read by the
      loop's evaluation and label sampling.
    """

    policy: str = field(default="", metadata={"help": "Starting (warm-started) policy folder."})
    task: str = field(default="arith", metadata={"help": "Task name."})
    task_args: dict = field(default_factory=dict, metadata={"help": "Task keyword arguments."})
    iterations: int = field(default=3, metadata={"help": "Search-and-learn iterations K."})
    train_problems: int = field(default=512, metadata={"help": "Fresh training problems searched per iteration."})
    guide: str = field(default="verifier", metadata={"help": "What guides train-time search: 'verifier' or 'prm'."})
    search: dict = field(default_factory=lambda: {"method": "mcts", "budget": 4, "width": 4})
    learn: dict = field(default_factory=lambda: {"algorithm": "expert_iteration"})
    prm: dict = field(default_factory=dict, metadata={"help": "Labelling and PRM training (guide: prm)."})
    prm_dir: str = field(default="", metadata={
        "help": "A trained PRM folder used as is in every iteration: it guides the search when guide: prm (no "
                "labelling, no PRM training) and filters expert-iteration data (learn.min_step_score)."})
    eval_problems: int = field(default=500, metadata={"help": "Held-out problems evaluated (greedy) per iteration."})
    batch_size: int = field(default=256, metadata={"help": "Policy batch size for sampling."})
    backend: str = field(default="hf", metadata={"help": "Sampling backend: hf (transformers) or vllm."})
    model: dict = field(default_factory=dict, metadata={
        "help": "How policy folders load: dtype, device, device_map, attn_implementation, trust_remote_code "
                "(roadmap.core.backends.ModelOptions)."})
    prompt: dict = field(default_factory=dict, metadata={
        "help": "Prompt format of the task: kind (plain | chat | fewshot), system_prompt, shots, step_delimiter, "
                "shot_seed (roadmap.core.tasks.PromptFormat); chat binds the starting policy's tokenizer."})
    lengths: dict = field(default_factory=dict, metadata={
        "help": "Length limits of every phase (roadmap.core.Lengths fields: max_step_tokens, max_steps, "
                "max_solution_tokens, rollout_tokens, train_max_length, rl_completion_tokens)."})
    seed: int = field(default=0, metadata={"help": "Base seed; iteration k uses seed + k."})
    workers: int = field(default=1, metadata={
        "help": "Ray actors of the search and label phases, each loading its own policy (and PRM); 1: this "
                "process. Results do not depend on it (roadmap.core.distributed)."})
    ray_address: str = field(default="", metadata={"help": "A Ray cluster the search and label phases join (HOST:PORT)."})
    accelerate_config: str = field(default="", metadata={
        "help": "An accelerate config file (e.g. recipes/accelerate/ddp.yaml): each learn phase then runs as "
                "`accelerate launch --config_file PATH -m roadmap.app.learn_launch` (DDP, FSDP, DeepSpeed), its log in "
                "iter_k/learn.log (roadmap.app.learn_launch); empty: the learn phase runs in the loop's process."})
    num_processes: int = field(default=0, metadata={
        "help": "Processes of the learn subprocess (--num_processes); 0: the accelerate_config file's own count. "
                "Only with accelerate_config."})

    def __post_init__(self) -> None:
        import os

        self.policy, self.prm_dir, self.accelerate_config = (
            os.fspath(p) if isinstance(p, os.PathLike) else p for p in (self.policy, self.prm_dir, self.accelerate_config))
        check_types({f.name: getattr(self, f.name) for f in fields(self)}, LoopConfig, "")
        if not self.policy:
            raise RecipeError("policy is empty; set `policy:` to a warm-started policy folder (e.g. from roadmap quickstart)")
        for name in ("iterations", "train_problems", "eval_problems", "batch_size", "workers"):
            if getattr(self, name) < 1:
                raise RecipeError(f"{name}={getattr(self, name)} must be at least 1")
        self._check_accelerate()
        if self.guide not in ("verifier", "prm"):
            raise RecipeError(f"guide={self.guide!r} must be 'verifier' or 'prm'")
        if self.prm_dir:  # this project's PRM, Math-Shepherd or Qwen2.5-Math-PRM; anything else is refused
            from rewards.public_prm import detect_prm_format

            detect_prm_format(self.prm_dir)
        self._check_task()
        self._build_prompt()
        self._build_model()
        self.lengths_config = build_section(Lengths, self.lengths, "lengths")
        self._build_search()
        self._build_learn()
        self._build_prm()
        for name in ("search_config", "learn_config", "label_config", "reward_model_config"):
            if "lengths" in {f.name for f in fields(getattr(self, name))}:
                setattr(self, name, replace(getattr(self, name), lengths=self.lengths_config))

    @property
    def trains_prm(self) -> bool:
        """Whether each iteration labels steps and trains its own PRM (guide: prm without prm_dir)."""
        return self.guide == "prm" and not self.prm_dir

    def _check_accelerate(self) -> None:
        import importlib.util

        if self.num_processes < 0 or (self.num_processes and not self.accelerate_config):
            raise RecipeError(f"num_processes={self.num_processes} must be >= 0 and needs accelerate_config (the "
                              "config file of the learn subprocess); set accelerate_config, or drop num_processes")
        if not self.accelerate_config:
            return
        if not Path(self.accelerate_config).is_file():
            raise RecipeError(f"accelerate_config={self.accelerate_config!r}: no such file; give an accelerate config "
                              "file (e.g. recipes/accelerate/ddp.yaml, or one `accelerate config` wrote), or drop the "
                              "key to learn in the loop's process")
        if importlib.util.find_spec("accelerate") is None:
            raise RecipeError(f"accelerate_config={self.accelerate_config!r} needs accelerate, which is not "
                              "installed; pip install accelerate, or drop the key")

    def _check_task(self) -> None:
        from roadmap.core.tasks import get_task

        try:
            get_task(self.task, **self.task_args)  # builds lazily: no data is read here
        except TypeError as e:
            raise RecipeError(f"task_args={self.task_args!r} do not fit task {self.task!r}: {e}") from e
        except ValueError as e:
            raise RecipeError(f"task {self.task!r} with task_args={self.task_args!r}: {e}") from e

    def _build_prompt(self) -> None:
        from roadmap.core.tasks import PromptFormat

        self.prompt_format = build_section(PromptFormat, self.prompt, "prompt")

    def _build_model(self) -> None:
        from roadmap.core.backends import BACKENDS, ModelOptions

        if self.backend not in BACKENDS:
            raise RecipeError(f"backend={self.backend!r} is not a sampling backend; use one of {BACKENDS}")
        self.model_options = build_section(ModelOptions, self.model, "model")

    def _build_search(self) -> None:
        from roadmap.app.train_search import TrainSearchConfig

        reason = "the top-level seed; iteration k searches with seed + 104729 k"
        self.search_config = build_section(TrainSearchConfig, self.search, "search",
                                           set_by_loop={"seed": reason, "lengths": _LENGTHS_REASON})

    def _build_learn(self) -> None:
        from learning.registry import LEARNERS, get_learner

        if not isinstance(self.learn, dict):
            raise RecipeError(f"learn must be a mapping (algorithm: ... and its config's fields), not {self.learn!r}")
        algorithm = self.learn.get("algorithm", "expert_iteration")
        if not isinstance(algorithm, str):
            raise RecipeError(f"learn.algorithm={algorithm!r} must be a learner's name (a str)")
        try:
            self.learner = get_learner(algorithm)
        except ValueError as e:
            raise RecipeError(str(e)) from e
        cls = self.learner.config_class
        values = {k: v for k, v in self.learn.items() if k != "algorithm"}
        elsewhere: dict[str, str] = {}
        for other in LEARNERS.values():
            for f in fields(other.config_class):
                elsewhere.setdefault(f.name, f"learn.algorithm: {other.name}")
        self.learn_config = build_section(cls, values, "learn", label=f"algorithm {algorithm}: {cls.__name__}",
                                          set_by_loop={"output_dir": "iter_k/policy of the run folder",
                                                       "lengths": _LENGTHS_REASON,
                                                       **(_NO_DEMONSTRATIONS if cls.__name__ == "RLConfig" else {})},
                                          elsewhere=elsewhere)
        if getattr(self.learn_config, "step_values", "q") == "exact":
            from roadmap.core.tasks import get_task

            if getattr(get_task(self.task, **self.task_args), "step_labels", None) is None:
                raise RecipeError(f"learn.step_values: exact needs a task with exact step labels (task.step_labels); "
                                  f"task {self.task!r} has none: use step_values: q")
        needs = self.learner.scorer_field(self.learn_config)
        if needs and not (self.prm_dir or self.guide == "prm"):
            raise RecipeError(f"learn.{needs} needs a PRM: set prm_dir, or guide: prm")

    def _build_prm(self) -> None:
        from rewards import LabelConfig, RewardModelConfig

        if not isinstance(self.prm, dict):
            raise RecipeError(f"prm must be a mapping of labelling and PRM-training keys, not {self.prm!r}")
        classes = (PRMPhaseConfig, LabelConfig, RewardModelConfig)
        loop_set = {"output_dir": "iter_k/prm of the run folder", "lengths": _LENGTHS_REASON}
        names = {c: {f.name for f in fields(c)} - set(loop_set) for c in classes}
        for key in self.prm:
            if key in loop_set:
                raise RecipeError(f"prm.{key} is set by the loop ({loop_set[key]}); remove it from the recipe")
        _unknown(self.prm, set().union(*names.values()), "prm (PRMPhaseConfig, LabelConfig, RewardModelConfig)")
        built = [build_section(c, {k: v for k, v in self.prm.items() if k in names[c]}, "prm") for c in classes]
        self.prm_config, self.label_config, self.reward_model_config = built
        idle = sorted(k for k in self.prm if k != "aggregation")
        if idle and not self.trains_prm:
            logger.warning("prm: %s apply only when the loop trains its PRM (guide: prm without prm_dir); "
                           "this recipe %s, so they are not used", idle,
                           "uses prm_dir as is" if self.prm_dir else "is guided by the verifier")


def load_recipe(path: str | Path, **overrides) -> LoopConfig:
    """A ``LoopConfig`` from a YAML recipe; overrides that are not None replace its keys.

    Every key is checked here, at any depth: an error names the recipe, the key, its section
    and the known keys.
    """
    return build_recipe(LoopConfig, read_recipe(path), path, overrides)


def read_recipe(path: str | Path) -> dict:
    """The top-level mapping of the YAML recipe at ``path``; a missing, non-UTF-8, invalid or non-mapping file is
    refused naming it."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise MissingPathError(f"recipe {path} does not exist; see recipes/ for examples")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise RecipeError(f"recipe {path} is not UTF-8 text (byte {e.start}: {e.reason}); save it as UTF-8") from e
    except yaml.YAMLError as e:
        raise RecipeError(f"recipe {path} is not valid YAML: {e}") from e
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise RecipeError(f"recipe {path} holds a {type(data).__name__} at its top level; a recipe is a mapping of "
                          "keys (task:, iterations:, search:, learn:, ...), see recipes/")
    return data


def marked_recipe(path: str | Path, key: str) -> bool:
    """Whether the YAML recipe at ``path`` is marked ``key: true`` (``ladder``, ``sos``: which runner
    ``roadmap run`` hands it to). An unreadable file is not marked: loading it gives the precise error."""
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False
    return isinstance(data, dict) and data.get(key) is True


def build_recipe(cls: type, data: dict, path: str | Path, overrides: dict):
    """``cls(**data)`` with ``overrides`` that are not None applied and every top-level key checked; errors name
    the recipe ``path`` (the one entry of the loop's and the ladder's recipes)."""
    data = {**data, **{k: v for k, v in overrides.items() if v is not None}}
    try:
        _unknown(data, {f.name for f in fields(cls)}, "top level")
        return cls(**data)
    except RecipeError as e:
        raise RecipeError(f"recipe {path}: {e}") from e
