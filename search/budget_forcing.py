"""Thinking budgets at test time: budget forcing (s1, arXiv 2501.19393).

A policy that thinks in long chains of thought spends test-time compute sequentially: one text
that checks and revises itself, instead of many independent samples (Snell et al., arXiv
2408.03314, compare the two). ``budget_forced`` gives each solution a budget of thinking tokens.
A solution that writes its final answer within the budget is kept as it is; one that runs out is
either left without an answer (``mode="stop"``) or cut back to its last complete step and made to
answer (``mode="force"``): the task's final-answer cue (the text of ``Task.format_answer`` before
the answer, e.g. "Answer: ") is appended and at most ``answer_tokens`` more tokens are decoded
greedily, up to the step delimiter. Token counts include the forced answer and the tokens of the
cut partial step (they were generated).
"""

from __future__ import annotations

from collections.abc import Sequence

from roadmap.core.errors import ConfigError
from roadmap.core.types import Completion

__all__ = ["BUDGET_MODES", "budget_forced", "answer_cue"]

#: what happens when the thinking budget runs out
BUDGET_MODES = ("force", "stop")

_MARK = "\x00"


def answer_cue(task) -> tuple[str, str]:
    """The task's final-answer step split around the answer: ("Answer: ", "") in the plain format
    (and for a duck-typed task without ``format_answer``)."""
    fmt = getattr(task, "format_answer", lambda answer: f"Answer: {answer}")
    head, _, tail = fmt(_MARK).partition(_MARK)
    return head, tail


def budget_forced(policy, task, prefixes: Sequence[str], budget: int, *, mode: str = "force", n: int = 1,
                  temperature: float = 0.0, top_p: float = 1.0, seed: int | None = None,
                  answer_tokens: int = 16) -> list[list[Completion]]:
    """``n`` solutions of each prefix, each thinking at most ``budget`` tokens (see the module docstring).

    Returns ``result[i][j]`` like ``Policy.sample``; a forced solution's text is the cut thinking,
    the answer cue and the forced answer, and its ``num_tokens`` all tokens generated for it.
    """
    if mode not in BUDGET_MODES:
        raise ConfigError(f"budget mode={mode!r} is unknown; use one of {BUDGET_MODES}")
    if budget < 1:
        raise ConfigError(f"thinking budget={budget} must be at least 1 token")
    outs = policy.sample(list(prefixes), n, max_new_tokens=budget, temperature=temperature, top_p=top_p, seed=seed)
    if mode == "stop":
        return outs
    head, tail = answer_cue(task)
    delim = task.step_delimiter
    todo: list[tuple[int, int, str]] = []
    for i, comps in enumerate(outs):
        for j, c in enumerate(comps):
            if task.extract_answer(c.text) is None and not c.finished:
                cut = c.text[: c.text.rfind(delim) + len(delim)] if delim in c.text else ""
                todo.append((i, j, cut + head))
    if not todo:
        return outs
    stops = [s for s in (delim, tail.strip()) if s]
    forced = policy.sample([prefixes[i] + text for i, _, text in todo], 1, stop=stops, max_new_tokens=answer_tokens,
                           temperature=0.0, seed=seed)
    result = [list(comps) for comps in outs]
    for (i, j, text), (answer,) in zip(todo, forced):
        spent = result[i][j]
        result[i][j] = Completion(text=text + answer.text, num_tokens=spent.num_tokens + answer.num_tokens,
                                  logprob=spent.logprob + answer.logprob, finished=True, stopped=answer.stopped)
    return result
