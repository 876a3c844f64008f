"""Typed ranges of the settings many configs share: one table for recipe keys and CLI flags.

A learning rate, a temperature, a budget or a share means the same in every section of a recipe,
whichever learner or phase reads it; ``FIELD_RULES`` says once what range each such key must lie
in, ``check_ranges`` checks a recipe section against it when the recipe loads (naming the key and
the section), and the CLI's argparse types (``roadmap.app.cli_checks``) are built from the same ``Rule``s.
A negative learning rate is then refused at load, not when (or if) the learn phase starts.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from roadmap.core.errors import ConfigError

__all__ = ["Rule", "FIELD_RULES", "check_ranges", "POSITIVE_INT", "NONNEGATIVE_INT", "POSITIVE", "NONNEGATIVE",
           "FRACTION", "PROBABILITY", "UNIT"]


@dataclass(frozen=True)
class Rule:
    """A range: ``ok(value)`` says whether a number lies in it; ``text`` says it ("a number > 0")."""

    text: str
    ok: Callable[[Any], bool]


POSITIVE_INT = Rule("an integer >= 1", lambda v: v >= 1)
NONNEGATIVE_INT = Rule("an integer >= 0", lambda v: v >= 0)
POSITIVE = Rule("a number > 0", lambda v: 0 < v < math.inf)
NONNEGATIVE = Rule("a number >= 0", lambda v: 0 <= v < math.inf)
FRACTION = Rule("a number in [0, 1)", lambda v: 0 <= v < 1)
PROBABILITY = Rule("a number in [0, 1]", lambda v: 0 <= v <= 1)
UNIT = Rule("a number in (0, 1]", lambda v: 0 < v <= 1)

#: recipe key -> its range, whatever the section (learn, search, prm, ...) and the learner
FIELD_RULES: dict[str, Rule] = {
    "learning_rate": POSITIVE, "temperature": NONNEGATIVE, "top_p": UNIT, "epochs": POSITIVE,
    "max_minutes": POSITIVE, "weight_decay": NONNEGATIVE, "max_grad_norm": POSITIVE, "beta": NONNEGATIVE,
    "epsilon": POSITIVE, "epsilon_high": POSITIVE, "prm_weight": NONNEGATIVE,
    "warmup_fraction": FRACTION, "eval_fraction": FRACTION, "margin": FRACTION, "decay_fraction": UNIT,
    "negative_weight": PROBABILITY, "retire_pass_rate": PROBABILITY, "min_step_score": PROBABILITY,
    "batch_size": POSITIVE_INT, "budget": POSITIVE_INT, "width": POSITIVE_INT, "samples": POSITIVE_INT,
    "rollouts": POSITIVE_INT, "shard_size": POSITIVE_INT, "problems": POSITIVE_INT, "num_problems": POSITIVE_INT,
    "reference_mix": NONNEGATIVE_INT, "thinking_unit": POSITIVE_INT, "chunk": POSITIVE_INT,
    "thinking_budget": POSITIVE_INT, "hidden_size": POSITIVE_INT, "num_layers": POSITIVE_INT,
    "num_heads": POSITIVE_INT, "intermediate_size": POSITIVE_INT, "max_position_embeddings": POSITIVE_INT,
    "bpe_vocab_size": POSITIVE_INT,
    # roadmap.app.quickstart.QuickstartConfig
    "sft_steps": POSITIVE_INT, "n_eval": POSITIVE_INT, "majority_samples": POSITIVE_INT, "n_majority": POSITIVE_INT,
    "loop_budget": POSITIVE_INT, "loop_problems": NONNEGATIVE_INT, "loop_temperature": NONNEGATIVE,
    "minutes": POSITIVE, "loop_learning_rate": POSITIVE, "loop_epochs": POSITIVE,
}


def check_ranges(values: Mapping[str, Any], where: str = "") -> None:
    """Raise ``ConfigError`` for the first number in ``values`` outside its ``FIELD_RULES`` range (NaN included),
    naming ``where`` + the key ("learn.learning_rate=-1e-05 must be a number > 0"). None and keys without a
    rule pass; types are checked elsewhere."""
    for key, value in values.items():
        rule = FIELD_RULES.get(key)
        if rule is None or value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if not rule.ok(value):
            raise ConfigError(f"{where}{key}={value!r} must be {rule.text}")
