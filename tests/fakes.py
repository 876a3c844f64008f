"""Fakes shared by tests: a bandit-tree policy whose best leaf is known, its task and scorer; arith rows."""

from __future__ import annotations

import hashlib
import math
import random

from roadmap.core.types import Completion, Problem, StepScorer, Usage


class BanditTask:
    """Prompt "Q\\n"; steps "L\\n"/"R\\n"; after ``depth`` steps the policy writes "Answer: <path>"."""

    name = "bandit"
    step_delimiter = "\n"

    def __init__(self, best: str = "LLLLL") -> None:
        self.best = best

    def problem(self, i: int = 0) -> Problem:
        return Problem(id=f"bandit-{i}", question="Q", answer=self.best)

    def prompt(self, problem: Problem) -> str:
        return "Q\n"

    def extract_answer(self, text: str) -> str | None:
        for line in reversed(text.strip().split("\n")):
            if line.startswith("Answer: "):
                return line[len("Answer: "):].strip()
        return None

    def answers_match(self, predicted: str, reference: str) -> bool:
        return predicted == reference

    def split_steps(self, text: str) -> list[str]:
        return [s for s in text.split("\n") if s.strip()]

    def is_correct(self, problem: Problem, text: str) -> bool:
        a = self.extract_answer(text)
        return a is not None and a == problem.answer


class BanditPolicy:
    """At each of ``depth`` levels it writes "L" with probability ``p_best`` and "R" otherwise;
    then "Answer: <the path>". Samples are a pure function of (seed, prefix, sample index)."""

    def __init__(self, depth: int = 5, p_best: float = 0.3) -> None:
        self.depth, self.p_best = depth, p_best
        self.usage = Usage()
        self.calls = 0

    def sample(self, prefixes, n=1, *, stop=None, max_new_tokens=256, temperature=1.0, top_p=1.0, seed=None):
        self.calls += 1
        out = []
        for prefix in prefixes:
            path = "".join(s for s in prefix[2:].split("\n") if s in ("L", "R"))
            row = []
            for j in range(n):
                h = hashlib.sha1(f"{seed}|{prefix}|{j}".encode()).digest()
                rng = random.Random(int.from_bytes(h[:8], "big"))
                text, lp, p = "", 0.0, path
                while True:
                    if len(p) >= self.depth:
                        text += f"Answer: {p}"
                        row.append(Completion(text, len(text), lp, finished=True))
                        break
                    step = "L" if rng.random() < self.p_best else "R"
                    lp += math.log(self.p_best if step == "L" else 1 - self.p_best)
                    text += step + "\n"
                    p += step
                    if stop == "\n":
                        row.append(Completion(text, len(text), lp, finished=False, stopped=True))
                        break
            self.usage.generated_tokens += sum(c.num_tokens for c in row)
            self.usage.sampled_sequences += len(row)
            self.usage.prefill_tokens += len(prefix)
            self.usage.forward_passes += 1
            out.append(row)
        return out

    def logprobs(self, prefixes, continuations):
        return [0.0] * len(prefixes)


class PathScorer(StepScorer):
    """A perfect PRM for the bandit: 1.0 while the path agrees with the best one, else 0.0."""

    def __init__(self, best: str = "LLLLL") -> None:
        self.best = best
        self.calls = 0

    def score(self, problem, texts):
        self.calls += 1
        out = []
        for t in texts:
            path = "".join(s for s in t.split("\n") if s in ("L", "R"))
            answer = next((s[8:] for s in t.split("\n") if s.startswith("Answer: ")), None)
            ok = self.best.startswith(path) and (answer is None or answer == self.best)
            out.append(1.0 if ok else 0.0)
        return out


def hit_rate(method, seeds=60):
    """Share of seeds on which ``method(task, seed)`` answers the bandit's best path."""
    task = BanditTask()
    return sum(method(task, seed)[0].answer == task.best for seed in range(seeds)) / seeds


def arith_rows(arith_task, n=4):
    """Trees rows (no tree) of ``n`` arith problems: the reference solution, right, and a wrong copy."""
    rows = []
    for p in arith_task.problems("train", n=n, seed=11):
        good = arith_task.reference_solution(p)
        bad = good.replace("Answer: ", "Answer: 1")
        rows.append({"problem_id": p.id, "question": p.question, "reference": p.answer, "prompt": arith_task.prompt(p),
                     "candidates": [good, bad], "candidate_correct": [True, False], "scores": [], "tree": None,
                     "usage": {}})
    return rows


def likelihood_margin(policy_dir, rows):
    """Mean log-likelihood of the right candidates, and mean margin of right over wrong, under a saved policy."""
    from roadmap.core import HFPolicy

    pol = HFPolicy.from_pretrained(policy_dir)
    good = pol.logprobs([r["prompt"] for r in rows], [r["candidates"][0] for r in rows])
    bad = pol.logprobs([r["prompt"] for r in rows], [r["candidates"][1] for r in rows])
    return sum(good) / len(rows), sum(g - b for g, b in zip(good, bad)) / len(rows)
