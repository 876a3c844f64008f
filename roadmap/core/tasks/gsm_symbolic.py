"""``gsm_symbolic``: GSM8K-format word problems from symbolic templates, generated offline.

GSM-Symbolic (Mirzadeh et al., arXiv 2410.05229) turns GSM8K problems into templates whose names
and numbers are resampled; reasoning-gym ships generators for them. Each generated entry carries
a worked solution in GSM8K format (``metadata["answer_cot"]``, ending in "#### N"), so the
solution format, answer extraction and checking are those of the ``gsm8k`` task.

Splits are disjoint by construction: a question belongs to the split ``hash_split(question,
test_fraction)`` names, and ``problems`` keeps generating until it has ``n`` of the split asked for.
"""

from __future__ import annotations

from roadmap.core.errors import ConfigError
from roadmap.core.tasks._numeric import extract_numeric_answer, normalize_number, numbers_match, split_hash_solution
from roadmap.core.tasks.base import BadRowError, Task, check_split, hash_split, stable_hash
from roadmap.core.types import Problem

__all__ = ["GSMSymbolicTask"]


class GSMSymbolicTask(Task):
    """Word problems from reasoning-gym's ``gsm_symbolic`` generators; see the module docstring.

    Args:
        test_fraction: share of all possible questions that belong to the test split.
        attempts_per_problem: generation budget; ``problems(split, n)`` gives up after generating
            ``attempts_per_problem * n + 1000`` entries.
    """

    name = "gsm_symbolic"
    step_delimiter = "\n"
    answer_prefix = "#### "

    def __init__(self, test_fraction: float = 0.1, attempts_per_problem: int = 50) -> None:
        if not 0.0 < test_fraction < 1.0:
            raise ConfigError(f"test_fraction={test_fraction} must lie strictly between 0 and 1")
        if attempts_per_problem < 1:
            raise ConfigError(f"attempts_per_problem={attempts_per_problem} must be at least 1")
        self.test_fraction = test_fraction
        self.attempts_per_problem = attempts_per_problem

    def make_problem(self, entry: dict, index: int, rg_seed: int, generator: int | None = None) -> Problem:
        """The problem of one reasoning-gym entry (``question``, ``answer``, ``metadata.answer_cot``)."""
        question = entry["question"].strip()
        cot = entry.get("metadata", {}).get("answer_cot")
        if not isinstance(cot, str):
            raise BadRowError(f"reasoning-gym entry {index} (seed {rg_seed}) has no metadata['answer_cot']")
        steps, cot_answer = split_hash_solution(cot)
        answer = normalize_number(str(entry.get("answer", ""))) or cot_answer
        meta = {"source_index": index, "rg_seed": rg_seed}
        if generator is not None:
            meta["generator"] = generator
        return Problem(
            id=f"gsm_symbolic-{stable_hash(question):016x}",
            question=question,
            answer=answer,
            steps=tuple(steps),
            meta=meta,
        )

    def problems(self, split: str = "train", n: int | None = 1000, seed: int = 0) -> list[Problem]:
        """``n`` distinct problems of ``split`` (1000 when None), deterministic in ``seed``."""
        import reasoning_gym

        check_split(split)
        n = 1000 if n is None else n
        if n < 0:
            raise ConfigError(f"n={n} is negative; pass a count >= 0")
        max_attempts = self.attempts_per_problem * n + 1000
        # reasoning-gym seeds entry i with Random(seed + i), so nearby seeds would share entries.
        rg_seed = stable_hash(f"gsm_symbolic-{seed}") % (2**31)
        # Entries are generated lazily on indexing and the generator choice for entry i does not
        # depend on ``size``, so one large dataset is a stream we read only as far as needed.
        ds = reasoning_gym.create_dataset("gsm_symbolic", size=max_attempts, seed=rg_seed)
        generators = getattr(ds, "task_indices", None)
        seen: set[str] = set()
        out: list[Problem] = []
        for i in range(max_attempts):
            if len(out) >= n:
                break
            entry = ds[i]
            question = entry["question"].strip()
            if question in seen or hash_split(question, self.test_fraction) != split:
                continue
            seen.add(question)
            out.append(self.make_problem(entry, i, rg_seed, generators[i] if generators is not None else None))
        if len(out) < n:
            raise ConfigError(
                f"gsm_symbolic found only {len(out)} distinct {split} problems of the n={n} asked for in "
                f"{max_attempts} generated (test_fraction={self.test_fraction}); ask for fewer, or raise "
                "attempts_per_problem"
            )
        return out

    def extract_answer(self, text: str) -> str | None:
        """The number after the last "####" or in the last ``\\boxed{}`` (normalised), or None; strict,
        see ``extract_numeric_answer``."""
        return extract_numeric_answer(text)

    def answers_match(self, predicted: str, reference: str) -> bool:
        """Numeric equality ("1,234.50" == "1234.5"); math-verify for non-numeric answers."""
        return numbers_match(predicted, reference)
