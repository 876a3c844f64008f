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
from roadmap.core.types import Problem

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
        out = []
        for c in completions:
            text = completion_text(c)
            try:
                ok = bool(self.task.split_steps(text)) and self.task.extract_answer(text) is not None
            except Exception:  # garbage output is simply badly formatted
                ok = False
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
        raise ValueError(
            f"soft_cache_length={soft_cache_length} must lie in (0, max_completion_length={max_completion_length}]"
        )
    return _OverlongReward(max_completion_length, soft_cache_length)


class _ScorerReward:
    def __init__(self, scorer, task, answer_column: str, question_column: str | None) -> None:
        self.scorer, self.task = scorer, task
        self.answer_column, self.question_column = answer_column, question_column
        self.__name__ = f"scorer_{task.name}"

    def __call__(self, prompts, completions, **kwargs) -> list[float | None]:
        answers = kwargs.get(self.answer_column) or [""] * len(completions)
        questions = kwargs.get(self.question_column) if self.question_column else None
        out: list[float | None] = []
        for i, c in enumerate(completions):
            question = questions[i] if questions else ""
            problem = Problem(id=str(i), question=str(question), answer=str(answers[i] or ""))
            score = self.scorer.score(problem, [completion_text(c)])[0]
            out.append(None if math.isnan(score) else float(score))
        return out


def get_scorer_reward(scorer, task, answer_column: str = "answer", question_column: str | None = "question"):
    """TRL reward from any ``StepScorer`` (a PRM aggregated over steps, an ORM): its score of each completion.

    The scorer builds the prompt from the ``question_column``; NaN scores become None so TRL
    skips them rather than training on them.
    """
    return _ScorerReward(scorer, task, answer_column, question_column)
