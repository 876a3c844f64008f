"""Lifted search: solve a smaller problem, lift its steps into the start of the problem's solution, continue.

A task that declares a decomposition (``Task.sub_problem`` and ``Task.lift_solution``; arith: the chain without
its last term) lets a policy reach one rung past what it can do alone. For each problem the policy samples ``n``
solutions of the sub-problem; each is lifted (arith's carry lines also carry the left-out term) and the policy
continues that start once, at the same temperature, writing what the sub-problem left out. The result is ``n``
candidate solutions of the problem, each the policy's own text apart from the task's rewrite, checked later by the
outcome verifier like any sample. No worked solution and no step checker is read.

This is the ladder's foothold past its demonstrations (``LadderConfig.lift``): a policy trained on chains of up to
4 operands copies a 5-operand prompt wrong on its first line, so plain sampling at 5 operands almost never lands,
while its 4-operand solutions, lifted, do.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from roadmap.core.types import Problem, SearchResult

__all__ = ["lifted_candidates", "can_lift"]


def can_lift(task) -> bool:
    """Whether ``task`` declares a decomposition (overrides ``Task.sub_problem``)."""
    from roadmap.core.tasks.base import Task

    return type(task).sub_problem is not Task.sub_problem


def _fits(policy, prefix: str) -> bool:
    """Whether ``policy`` can continue ``prefix``: it is shorter than the model's context (a policy that exposes
    ``max_length`` and ``encode_prefix``, as ``HFPolicy`` does; any other is trusted)."""
    limit, encode = getattr(policy, "max_length", None), getattr(policy, "encode_prefix", None)
    return not limit or encode is None or len(encode(prefix)) < limit


def lifted_candidates(policy, task, problems: Sequence[Problem], n: int, *, temperature: float, seed: int,
                      max_new_tokens: int, top_p: float = 1.0) -> list[SearchResult]:
    """``n`` lifted candidates per problem as ``SearchResult`` rows (no answer chosen), with their compute.

    A problem without a sub-problem, a sub-problem sample that lifts to nothing, or a lifted start that fills the
    policy's context (a long, garbled sample one rung up) gives fewer candidates. Both sampling calls are batched
    over every problem; ``usage`` shares each call's prefill by generated tokens."""
    before = policy.usage.copy()
    subs = [task.sub_problem(p) for p in problems]
    with_sub = [i for i, s in enumerate(subs) if s is not None]
    outs = policy.sample([task.prompt(subs[i]) for i in with_sub], n=n, max_new_tokens=max_new_tokens,
                         temperature=temperature, top_p=top_p, seed=seed) if with_sub else []
    starts: list[tuple[int, str]] = []  # (problem index, lifted start)
    generated = [0] * len(problems)
    sequences = [0] * len(problems)  # the sub-problem's samples, then one continuation per lifted start
    for i, row in zip(with_sub, outs):
        generated[i] += sum(c.num_tokens for c in row)
        sequences[i] += len(row)
        for c in row:
            start = task.lift_solution(problems[i], c.text)
            if start is not None and _fits(policy, task.prompt(problems[i]) + start):
                starts.append((i, start))
    conts = policy.sample([task.prompt(problems[i]) + start for i, start in starts], n=1,
                          max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
                          seed=seed + 1) if starts else []
    candidates: list[list[str]] = [[] for _ in problems]
    truncated = [0] * len(problems)
    for (i, start), row in zip(starts, conts):
        candidates[i].append(start + row[0].text)
        generated[i] += row[0].num_tokens
        sequences[i] += 1
        truncated[i] += row[0].truncated
    shares = (policy.usage - before).split(generated)
    return [SearchResult(problem_id=p.id, answer=None, candidates=cands,
                         usage=dataclasses.replace(share, generated_tokens=gen, sampled_sequences=seqs),
                         truncated=trunc)
            for p, cands, gen, seqs, share, trunc in zip(problems, candidates, generated, sequences, shares, truncated)]
