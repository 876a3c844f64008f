"""Every length limit of the library in one place: ``Lengths``.

Search, evaluation, labelling, the benchmark, train-time search and every trainer take one
``Lengths`` and read their limits from it, so a user who brings a chat model sets them once
(``roadmap run``: a top-level ``lengths:`` recipe key; the CLI: ``--max-new-tokens`` and friends).
An output that a limit cut (neither EOS nor a stop string: ``Completion.truncated``) is counted
as truncated in every report.

The defaults fit the embedded tiny char-level policy on arith (a step is a line of a dozen
characters, a solution a few lines). With a real chat model (Qwen2.5-Math-1.5B-Instruct,
Llama-3.2-1B-Instruct) on GSM8K or MATH-500, raise them as search-and-learn does (its beam
search samples up to 2048 tokens and 40 steps): for example ``Lengths(max_step_tokens=512,
max_steps=40, max_solution_tokens=2048, rollout_tokens=2048, train_max_length=3072,
rl_completion_tokens=2048)``. A MATH paragraph step runs to ~100 tokens and GSM8K solutions to
~300, so the tiny defaults would cut most of them (each cut is reported as truncated).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from roadmap.core.errors import ConfigError

__all__ = ["Lengths"]


@dataclass(frozen=True)
class Lengths:
    """The length limits, in tokens (or steps), shared by search, evaluation, labelling and training.

    Attributes:
        max_step_tokens: longest step of a stepwise search (beam, DVTS, MCTS); a step that runs
            past it without the task's delimiter ends the solution and is counted truncated.
            Chat model: 256 to 512.
        max_steps: most steps of one solution in a stepwise search; a solution still open after
            that many steps is cut (counted truncated). Chat model: 40 (search-and-learn).
        max_solution_tokens: longest whole solution sampled in one call: greedy and majority
            evaluation, best-of-N, the solutions sampled for labelling. Chat model: 2048.
        rollout_tokens: longest completion of a partial solution: MCTS rollouts and the greedy
            completion of its picked path, labelling rollouts. Chat model: 2048.
        train_max_length: longest training sequence (prompt + solution) of SFT and expert
            iteration, tree-DPO and PRM/ORM training; longer rows are cut from the end. Chat
            model: at least prompt + max_solution_tokens, e.g. 3072.
        rl_completion_tokens: longest completion sampled by online RL (GRPO's
            ``max_completion_length``; DAPO's overlong reward falls over its last quarter).
            Chat model: 1024 to 2048.
    """

    max_step_tokens: int = field(default=64, metadata={
        "help": "Longest step of a stepwise search, in tokens (chat models: 256-512)."})
    max_steps: int = field(default=12, metadata={
        "help": "Most steps per solution in a stepwise search (chat models: 40)."})
    max_solution_tokens: int = field(default=192, metadata={
        "help": "Longest solution sampled in one call: greedy, majority, best-of-N, labelling (chat models: 2048)."})
    rollout_tokens: int = field(default=192, metadata={
        "help": "Longest completion of a partial solution: MCTS rollouts, label rollouts (chat models: 2048)."})
    train_max_length: int = field(default=256, metadata={
        "help": "Longest prompt + solution trained on by SFT, expert iteration, DPO and PRM training "
                "(chat models: prompt + max_solution_tokens, e.g. 3072)."})
    rl_completion_tokens: int = field(default=96, metadata={
        "help": "Longest completion sampled by online RL (GRPO max_completion_length; chat models: 1024-2048)."})

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"lengths.{f.name}={value!r} must be a positive number of "
                                  f"{'steps' if f.name == 'max_steps' else 'tokens'}, e.g. {f.default}")

    def to_dict(self) -> dict[str, int]:
        """The limits by name (what provenance records and a recipe's ``lengths:`` holds)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}
