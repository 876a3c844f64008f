"""Reward shaping: dense step rewards from sparse outcomes, and shaping terms for TRL trainers.

- Potential-based shaping (Ng, Harada and Russell, 1999): r'_t = r_t + gamma * Phi(s_{t+1}) - Phi(s_t)
  leaves the optimal policy unchanged for any potential Phi; here Phi is a PRM's or value
  model's score of the partial solution (arXiv 2412.14135, Section 4.3).
- Implicit PRM (PRIME, arXiv 2502.01456): the step reward is beta * log(pi(step) / pi_ref(step)),
  so a policy trained on outcomes alone yields process rewards for free.
- Format and length shaping as TRL reward functions built by ``get_x_reward`` factories: a
  format reward, and DAPO's soft overlong punishment (arXiv 2503.14476, Section 3.4).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from rewards.verifier import completion_text
from roadmap.core.errors import ConfigError, MissingColumnError
from roadmap.core.types import Problem, StepScorer

__all__ = [
    "potential_shaping",
    "scorer_potentials",
    "implicit_step_rewards",
    "get_format_reward",
    "get_soft_overlong_reward",
    "get_scorer_reward",
]


def potential_shaping(
    rewards: Sequence[float], potentials: Sequence[float], gamma: float = 1.0, *, terminal: bool = True
) -> list[float]:
    """Shaped step rewards r'_t = r_t + gamma * Phi(s_{t+1}) - Phi(s_t).

    Args:
        rewards: r_0..r_{T-1}, the reward of each step (usually 0 except the outcome at the end).
        potentials: Phi(s_0)..Phi(s_T), the potential before any step and after each step.
        gamma: discount.
        terminal: when True, s_T ends the episode and its potential counts as 0, which keeps
            the shaped return equal to the original return minus Phi(s_0) (policy invariance).
    """
    if len(potentials) != len(rewards) + 1:
        raise ValueError(
            f"got {len(rewards)} rewards and {len(potentials)} potentials; pass one potential per state, "
            "i.e. len(rewards) + 1 (the state before the first step included)"
        )
    phi = [float(p) for p in potentials]
    if any(math.isnan(p) for p in phi):
        raise ValueError(f"potentials contain NaN: {phi}; check the value model or PRM that produced them")
    if terminal:
        phi[-1] = 0.0
    return [float(r) + gamma * phi[t + 1] - phi[t] for t, r in enumerate(rewards)]


def scorer_potentials(scorer, task, problem: Problem, steps: Sequence[str], initial: float = 0.0) -> list[float]:
    """Phi(s_0)..Phi(s_T) from a ``StepScorer``: its score of every step prefix of ``steps``.

    ``initial`` is Phi(s_0), the potential of the bare prompt, which a PRM cannot score. Use a
    PRMScorer with ``aggregation="last"`` so that Phi(s_t) is the PRM's value of step t.
    """
    delim = task.step_delimiter
    prefixes = [delim.join(steps[: t + 1]) + delim for t in range(len(steps))]
    return [float(initial), *scorer.score(problem, prefixes)] if prefixes else [float(initial)]


def implicit_step_rewards(
    policy, reference, prompt: str, steps: Sequence[str], *, delimiter: str = "\n", beta: float = 0.05
) -> list[float]:
    """PRIME's implicit process reward of each step: beta * (log pi(step) - log pi_ref(step)).

    ``policy`` and ``reference`` are ``Policy`` objects (e.g. the RL-trained policy and its SFT
    start); each step is scored given the prompt and the steps before it, delimiter included.
    """
    if not steps:
        return []
    prefixes = [prompt + "".join(s + delimiter for s in steps[:t]) for t in range(len(steps))]
    continuations = [s + delimiter for s in steps]
    lp = policy.logprobs(prefixes, continuations)
    lp_ref = reference.logprobs(prefixes, continuations)
    return [beta * (a - b) for a, b in zip(lp, lp_ref)]


class _FormatReward:
    def __init__(self, task, reward: float, penalty: float) -> None:
        self.task, self.reward, self.penalty = task, reward, penalty
        self.__name__ = f"format_{task.name}"

    def __call__(self, prompts, completions, **kwargs) -> list[float]:
        # a Task's split_steps and extract_answer never raise on garbage (they return [] / None),
        # so an exception here is a bug in the task and is not hidden
        out = []
        for c in completions:
            text = completion_text(c)
            ok = bool(self.task.split_steps(text)) and self.task.extract_answer(text) is not None
            out.append(self.reward if ok else self.penalty)
        return out


def get_format_reward(task, reward: float = 1.0, penalty: float = 0.0):
    """TRL reward: ``reward`` when a completion has steps and a parsable final answer, else ``penalty``."""
    return _FormatReward(task, reward, penalty)


class _OverlongReward:
    def __init__(self, max_length: int, cache_length: int) -> None:
        self.max_length, self.cache_length = max_length, cache_length
        self.__name__ = "soft_overlong"

    def __call__(self, prompts, completions, completion_ids=None, **kwargs) -> list[float]:
        lengths = [len(ids) for ids in completion_ids] if completion_ids is not None else [
            len(completion_text(c)) for c in completions
        ]
        start = self.max_length - self.cache_length
        out = []
        for n in lengths:
            if n <= start:
                out.append(0.0)
            elif n <= self.max_length:
                out.append((start - n) / self.cache_length)
            else:
                out.append(-1.0)
        return out


def get_soft_overlong_reward(max_completion_length: int, soft_cache_length: int):
    """DAPO's soft overlong punishment as a TRL reward.

    0 up to ``max_completion_length - soft_cache_length`` tokens, then falling linearly to -1 at
    ``max_completion_length``, and -1 beyond. Lengths come from TRL's ``completion_ids``
    (tokens); without them, from the completion's characters.
    """
    if not 0 < soft_cache_length <= max_completion_length:
        raise ConfigError(
            f"soft_cache_length={soft_cache_length} must lie in (0, max_completion_length={max_completion_length}]"
        )
    return _OverlongReward(max_completion_length, soft_cache_length)


class _ScorerReward:
    def __init__(self, scorer, task, answer_column: str | None, question_column: str | None) -> None:
        self.scorer, self.task = scorer, task
        self.answer_column, self.question_column = answer_column, question_column
        self.__name__ = f"scorer_{task.name}"

    def _column(self, name: str | None, kwargs, n: int) -> list[str]:
        if name is None:
            return [""] * n
        if name not in kwargs:
            raise MissingColumnError(
                f"the scorer reward reads the dataset column {name!r}, but the columns passed were "
                f"{sorted(k for k in kwargs if not k.startswith(('trainer_', 'log_')))}; add that column "
                "(learning.data.grpo_rows writes 'question' and 'answer') or pass question_column=None / "
                "answer_column=None to get_scorer_reward"
            )
        return ["" if v is None else str(v) for v in kwargs[name]]

    def __call__(self, prompts, completions, **kwargs) -> list[float | None]:
        questions = self._column(self.question_column, kwargs, len(completions))
        answers = self._column(self.answer_column, kwargs, len(completions))
        problems = [Problem(id=str(i), question=q, answer=a) for i, (q, a) in enumerate(zip(questions, answers))]
        # one batched call: a PRM scores every completion of the batch in one pass
        scores = self.scorer.score_batch(problems, [[completion_text(c)] for c in completions])
        return [None if math.isnan(s[0]) else float(s[0]) for s in scores]


def get_scorer_reward(scorer: StepScorer, task, answer_column: str | None = "answer",
                      question_column: str | None = "question"):
    """TRL reward from any ``StepScorer`` (a PRM aggregated over steps, an ORM): its score of each completion.

    The scorer sees each completion under its row's problem, built from the dataset columns
    ``question_column`` (a PRM builds its prompt from the question) and ``answer_column`` (a
    verifier checks against it); a named column that is missing is an error, None leaves that
    field empty. NaN scores become None so TRL skips them rather than training on them.
    """
    if not isinstance(scorer, StepScorer):
        raise TypeError(f"scorer={scorer!r} is not a StepScorer (score and score_batch); subclass "
                        "roadmap.core.StepScorer")
    return _ScorerReward(scorer, task, answer_column, question_column)
