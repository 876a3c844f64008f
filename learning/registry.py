"""Learners by name: one name -> (config class, run function) registry, read by the search-and-learn loop.

A learner turns one iteration's inputs (``LearnInputs``: the policy to update, the task, the
trees of this iteration's train-time search, fresh training problems, a PRM scorer when one is
configured) and its own config dataclass into an updated policy in ``LearnInputs.output_dir``,
and returns its metrics. The loop validates a recipe's ``learn:`` section against the learner's
config class before any work, and calls ``run`` in the learn phase. A new learner is one
``register_learner`` entry.

Registered here: ``expert_iteration`` (ReST-EM, arXiv 2312.06585), ``tree_dpo`` (DPO on tree
pairs, arXiv 2305.18290) and ``grpo`` (online RL, arXiv 2402.03300; the ScaleRL knobs of
``learning.rl``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from learning.expert_iteration import ExpertIterationConfig
from learning.rl import RLConfig
from learning.tree_dpo import TreeDPOConfig
from roadmap.core.errors import ConfigError
from roadmap.core.io import write_json
from roadmap.core.types import Problem

__all__ = ["LEARNERS", "Learner", "LearnInputs", "NothingToLearn", "get_learner", "register_learner"]


class NothingToLearn(Exception):  # internal control flow, not an error: the loop catches it (see core/errors.py)
    """Raised by a learner whose inputs hold nothing to learn from; the loop then keeps the policy."""


@dataclass
class LearnInputs:
    """What the loop hands a learner in iteration k.

    Attributes:
        policy_dir: the policy to update (iteration k-1's, saved with ``save_pretrained``).
        output_dir: where the updated policy goes (the learner's config's ``output_dir`` is set to it).
        task: the task (checker, prompts, reference solutions).
        trees: ``trees.jsonl`` of iteration k's train-time search; None for a learner that does
            not search (``Learner.searches`` False).
        problems: builds iteration k's fresh training problems (for learners that sample online).
        scorer: builds the PRM ``StepScorer`` (``prm_dir``, or the PRM trained in iteration k);
            None when the recipe has no PRM.
        state_dir: iteration k's folder, for state a learner carries to the next iteration.
        previous_state_dir: iteration k-1's folder (the state of the last call).
        seed: iteration k's data seed.
    """

    policy_dir: Path
    output_dir: Path
    task: Any
    trees: Path | None
    problems: Callable[[], Sequence[Problem]]
    scorer: Callable[[], Any] | None
    state_dir: Path
    previous_state_dir: Path
    seed: int


@dataclass(frozen=True)
class Learner:
    """One registered learner.

    Attributes:
        name: the ``learn.algorithm`` of a recipe.
        config_class: its config dataclass; a recipe's ``learn:`` keys are its fields (less
            ``output_dir``, which the loop sets).
        run: ``(inputs: LearnInputs, config) -> metrics``; the metrics hold ``train_tokens``.
        searches: True when it learns from this iteration's train-time search (the loop then
            runs the search phase first); False for online learners that sample themselves.
        scorer_field: ``config -> name`` of the config field that asks for a PRM scorer, or None
            when this config needs none (the loop refuses such a recipe without a PRM).
    """

    name: str
    config_class: type
    run: Callable[[LearnInputs, Any], dict[str, Any]]
    searches: bool = True
    scorer_field: Callable[[Any], str | None] = lambda config: None


#: algorithm name -> learner; ``register_learner`` adds to it, ``get_learner`` reads it
LEARNERS: dict[str, Learner] = {}


def register_learner(name: str, config_class: type, *, searches: bool = True,
                     scorer_field: Callable[[Any], str | None] = lambda config: None) -> Callable:
    """Decorator that registers a run function as the learner ``name`` with its ``config_class``.

    Registering a different function under a name already taken raises ValueError.
    """

    def add(run: Callable[[LearnInputs, Any], dict[str, Any]]) -> Callable:
        if name in LEARNERS and LEARNERS[name].run is not run:
            raise ValueError(f"learner {name!r} is already registered to {LEARNERS[name].run.__qualname__}; "
                             "pick another name")
        LEARNERS[name] = Learner(name, config_class, run, searches, scorer_field)
        return run

    return add


def get_learner(name: str) -> Learner:
    """The learner registered as ``name``."""
    if name not in LEARNERS:
        raise ConfigError(f"learn.algorithm={name!r} is unknown; use one of {tuple(LEARNERS)} "
                          "(add one with learning.register_learner)")
    return LEARNERS[name]


def _scorer(inputs: LearnInputs, wanted_by: str | None):
    """The PRM scorer when the config field ``wanted_by`` asks for one, else None."""
    if wanted_by is None:
        return None
    if inputs.scorer is None:
        raise ConfigError(f"{wanted_by} needs a PRM scorer, but LearnInputs.scorer is None; pass one (in a recipe: "
                          "prm_dir, or guide: prm)")
    return inputs.scorer()


def _ei_scorer_field(config: ExpertIterationConfig) -> str | None:
    return "min_step_score" if config.min_step_score is not None else None


def _rl_scorer_field(config: RLConfig) -> str | None:
    return "prm_weight" if config.prm_weight else None


def _rows(inputs: LearnInputs) -> list[dict[str, Any]]:
    from search.trees import read_trees

    if inputs.trees is None:
        raise ConfigError("this learner learns from search trees, but LearnInputs.trees is None; run the search first")
    return read_trees(inputs.trees)


@register_learner("expert_iteration", ExpertIterationConfig, scorer_field=_ei_scorer_field)
def _expert_iteration(inputs: LearnInputs, config: ExpertIterationConfig) -> dict[str, Any]:
    from learning.expert_iteration import expert_iteration_data, expert_iteration_step
    from policy_init.sft import sft_dataset

    rows = _rows(inputs)
    mix = config.reference_mix
    extra = sft_dataset(inputs.task, n=mix, seed=inputs.seed) if mix else None
    scorer = _scorer(inputs, _ei_scorer_field(config))
    data = expert_iteration_data(rows, config, task=inputs.task, extra_dataset=extra, scorer=scorer)
    if len(data) == 0:
        raise NothingToLearn("search verified no solution")
    res = expert_iteration_step(inputs.policy_dir, rows, config, data=data)
    if scorer is not None:
        res["scoring_tokens"] = scorer.prm.scored_tokens  # the PRM filter's forward passes
    return res


@register_learner("tree_dpo", TreeDPOConfig)
def _tree_dpo(inputs: LearnInputs, config: TreeDPOConfig) -> dict[str, Any]:
    from datasets import concatenate_datasets

    from learning.data import exact_value, solution_pairs, step_pairs
    from learning.tree_dpo import tree_dpo_step

    rows = _rows(inputs)
    value = exact_value(inputs.task, inputs.problems()) if config.step_values == "exact" else None
    sol, step = solution_pairs(rows), step_pairs(rows, config.margin, value=value)
    pairs = concatenate_datasets([sol.remove_columns(["level"]),
                                  step.remove_columns(["level", "margin"])]) if len(step) else sol
    if len(pairs) == 0:
        raise NothingToLearn(f"the trees hold no chosen/rejected pair (no verified against unverified solution, "
                             f"no sibling steps whose values differ by more than margin={config.margin})")
    res = tree_dpo_step(inputs.policy_dir, pairs, config)
    return {**res, "solution_pairs": len(sol), "step_pairs": len(step)}


@register_learner("grpo", RLConfig, searches=False, scorer_field=_rl_scorer_field)
def _grpo(inputs: LearnInputs, config: RLConfig) -> dict[str, Any]:
    from learning.rl import rl_step

    # no-positive-resampling across iterations: the prompts retired by the last call stay retired
    retired_path = inputs.previous_state_dir / "retired.json"
    retired = set(json.loads(retired_path.read_text())) if retired_path.exists() else set()
    scorer = _scorer(inputs, _rl_scorer_field(config))
    # a killed learn phase resumes from its last finished step (rl_state/); Adam's moments carry over iterations
    state = Path(inputs.state_dir) / "rl_state"
    state.mkdir(parents=True, exist_ok=True)
    res = rl_step(inputs.policy_dir, inputs.task, inputs.problems(), config, scorer=scorer, retired=retired,
                  checkpoint_dir=state, optimizer_state=inputs.previous_state_dir / "rl_state" / "optimizer.pt")
    write_json(Path(inputs.state_dir) / "retired.json", res["retired"])
    out = dict(res)
    out["rl_steps"] = [{k: s[k] for k in ("step", "reward", "pass_rate", "compute", "sample_seconds", "learn_seconds")}
                       for s in res["steps_log"]]
    out.pop("steps_log")
    return out
