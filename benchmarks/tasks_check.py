"""The gsm_symbolic, gsm8k and math500 tasks load, format, extract and check answers, row by row.

For each task this loads both splits and checks, on every problem:

* overlap: no question is in both train and test (and no id repeats);
* reference correct: the reference solution (``task.reference_solution``) round-trips into the
  problem's steps plus one final-answer step, ``extract_answer`` gives back the normalised answer
  and ``is_correct`` accepts it. It is also checked against the source: the answer agrees with
  reasoning-gym's own entry (gsm_symbolic), with an independent parse of the row's "#### N" line
  and the row's own worked solution (gsm8k), and with the last ``\\boxed{}`` of the row's own
  solution (math500);
* equivalent forms accepted: the answer spelt differently in the final step ("1,600", "1600.0",
  "$1600", "1600."; for math500 a per-row list such as "0.5", "\\dfrac{1}{2}", "\\frac12");
* wrong answers rejected: answer+1, ten times the answer, the negated answer (numbers), a per-row
  list of wrong forms (math500), and a solution whose right answer is followed by a wrong final one;
* garbage handled: text with no parsable final answer gives ``extract_answer(...) is None`` and
  ``is_correct(...) is False`` without raising.

gsm_symbolic problems come straight from reasoning-gym. The gsm8k and math500 problems come from
``benchmarks/data/gsm8k_sample.jsonl`` and ``benchmarks/data/math500_sample.jsonl``: small files in
the exact column schema of openai/gsm8k and HuggingFaceH4/MATH-500. A few rows are well-known
public GSM8K / MATH-500 rows; the others were written for this check, to cover tricky answers
(thousands separators, negatives, decimals, money, fractions, radicals, intervals, tuples,
matrices, degrees, text and multiple-choice answers). Their ``unique_id``s follow MATH-500's
pattern but are not MATH-500's ids. Point ``--gsm8k`` / ``--math500`` at a downloaded copy of
the real datasets to run the same checks on them (the per-row lists then apply to no row).

    python benchmarks/tasks_check.py [--gsm-symbolic-n 200] [--out benchmarks/out/tasks_check.json]

Prints a markdown table, writes the details as JSON and exits non-zero when any check failed,
listing the failed rows.
"""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Iterable  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from decimal import Decimal  # noqa: E402
from pathlib import Path  # noqa: E402

from roadmap.core.io import format_table, write_json  # noqa: E402
from roadmap.core.tasks import GSM8KTask, GSMSymbolicTask, Math500Task, Task  # noqa: E402
from roadmap.core.tasks._numeric import ANSWER_MARK, normalize_number  # noqa: E402
from roadmap.core.tasks._source import read_file  # noqa: E402
from roadmap.core.types import Problem  # noqa: E402

HERE = Path(__file__).resolve().parent
GSM8K_SAMPLE = HERE / "data" / "gsm8k_sample.jsonl"
MATH500_SAMPLE = HERE / "data" / "math500_sample.jsonl"
COLUMNS = ["task", "source", "train", "test", "overlap", "reference correct", "equivalent forms accepted",
           "wrong answers rejected", "garbage handled", "seconds"]
CHECKS = ("reference", "equivalent", "wrong", "garbage")

from answer_forms import BOXED_ENDINGS, BOXED_GARBAGE, BOXED_NONSENSE, HASH_GARBAGE, MATH500_FORMS  # noqa: E402


@dataclass
class Result:
    """Counters of one task's checks, and what failed."""

    task: str
    source: str
    train: int = 0
    test: int = 0
    overlap: int = 0
    passed: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CHECKS, 0))
    total: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CHECKS, 0))
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def check(self, kind: str, ok: bool, where: str, what: str) -> None:
        self.total[kind] += 1
        if ok:
            self.passed[kind] += 1
        else:
            self.failures.append(f"{self.task} [{kind}] {where}: {what}")

    def row(self) -> dict:
        cell = {k: f"{self.passed[k]}/{self.total[k]}" for k in CHECKS}
        return {"task": self.task, "source": self.source, "train": self.train, "test": self.test,
                "overlap": self.overlap, "reference correct": cell["reference"],
                "equivalent forms accepted": cell["equivalent"], "wrong answers rejected": cell["wrong"],
                "garbage handled": cell["garbage"], "seconds": f"{self.seconds:.1f}"}

    def to_json(self) -> dict:
        return {"task": self.task, "source": self.source, "train": self.train, "test": self.test,
                "overlap": self.overlap, "passed": self.passed, "total": self.total,
                "seconds": round(self.seconds, 3), "ok": not self.failures, "failures": self.failures}


def safe(fn: Callable, *args):
    """``fn(*args)``, or the exception it raised (a check must never crash on garbage)."""
    try:
        return fn(*args)
    except Exception as err:  # reported as a failed check
        return err


def where(p: Problem) -> str:
    meta = p.meta
    loc = meta.get("unique_id") or (f"row {meta['row']}" if "row" in meta else f"entry {meta.get('source_index')}")
    return f"{loc} ({p.id}, answer {p.answer!r})"


def check_splits(res: Result, train: list[Problem], test: list[Problem]) -> None:
    res.train, res.test = len(train), len(test)

    def key(p: Problem) -> str:
        return " ".join(p.question.split())

    shared = {key(p) for p in train} & {key(p) for p in test}
    res.overlap = len(shared)
    for q in sorted(shared)[:5]:
        res.failures.append(f"{res.task} [overlap] question in both splits: {q[:80]!r}")
    ids = [p.id for p in train + test]
    if len(set(ids)) != len(ids):
        res.failures.append(f"{res.task} [overlap] {len(ids) - len(set(ids))} repeated problem id(s)")
    if not train or not test:
        res.failures.append(f"{res.task} [overlap] a split is empty (train {len(train)}, test {len(test)})")


def reference_problems(task: Task, p: Problem) -> list[str]:
    """What is wrong with ``p``'s reference solution (nothing, when it formats into the steps plus one
    final-answer step, extracts back to the answer and is accepted)."""
    ref = task.reference_solution(p)
    steps = task.split_steps(ref)
    extracted = safe(task.extract_answer, ref)
    ok = (
        steps[:-1] == list(p.steps)
        and steps[-1] == task.format_answer(p.answer)
        and p.question in task.prompt(p)
        and extracted == p.answer
        and safe(task.is_correct, p, ref) is True
    )
    return [] if ok else [f"reference solution not accepted (extracted {extracted!r}): {ref[-120:]!r}"]


def accepts(task: Task, p: Problem, answer: str) -> bool | Exception:
    return safe(task.is_correct, p, task.format_solution(p.steps, answer))


def check_garbage(res: Result, task: Task, problems: list[Problem], texts: Iterable[str], nonsense=()) -> None:
    for text in texts:
        extracted = safe(task.extract_answer, text)
        bad = [p for p in problems if safe(task.is_correct, p, text) is not False]
        res.check("garbage", extracted is None and not bad, f"text {text[:40]!r}",
                  f"extract_answer gave {extracted!r}, is_correct not False on {len(bad)} problem(s)")
    for text in nonsense:
        bad = [p for p in problems if safe(task.is_correct, p, text) is not False]
        res.check("garbage", not bad, f"text {text[:40]!r}", f"is_correct not False on {len(bad)} problem(s)")


# --- numeric ("#### N") tasks -----------------------------------------------------------------


def numeric_spellings(answer: str) -> list[str]:
    """Other ways to write the number ``answer`` (canonical, e.g. "-1600" or "2.5")."""
    value = Decimal(answer)
    sign, digits = ("-", answer[1:]) if answer.startswith("-") else ("", answer)
    whole, _, frac = digits.partition(".")
    grouped = f"{int(whole):,}" + (f".{frac}" if frac else "")
    padded = digits + (".0" if not frac else "0")
    forms = [f"{sign}{padded}", f"{sign}{digits}.", f"{sign}${digits}", f" {answer} "]
    if not sign:
        forms.append(f"+{answer}")
    if abs(value) >= 1000:
        forms += [f"{sign}{grouped}", f"{sign}${grouped}", f"{sign}{grouped}.00" if not frac else f"{sign}{grouped}0"]
    if sign:
        forms += [f"${sign}{digits}"]  # "$-5" as well as "-$5"
    return forms


def numeric_wrongs(answer: str) -> list[str]:
    value = Decimal(answer)
    wrongs = {value + 1, value * 10 if value else Decimal(1), -value if value else Decimal(-1), value - Decimal("0.01")}
    return [normalize_number(str(w)) for w in sorted(wrongs)]


def check_hash_problem(res: Result, task: Task, p: Problem, raw: dict | None, wrong_refs: list[str]) -> None:
    """All checks of one problem of a "#### N" task; ``wrong_refs`` are problems already found with it."""
    wrong_refs = wrong_refs + reference_problems(task, p)
    if normalize_number(p.answer) != p.answer:
        wrong_refs.append("answer is not in canonical form")
    if raw is not None:  # the row as stored in the file: an independent parse of its final "#### N" line
        solution = raw["answer"]
        final = solution[solution.rfind(ANSWER_MARK) + len(ANSWER_MARK):].strip()
        expected = Decimal(final.replace(",", ""))
        if Decimal(p.answer) != expected:
            wrong_refs.append(f"the file's final line says {final!r}")
        if safe(task.is_correct, p, solution) is not True:
            wrong_refs.append("the row's own worked solution is not accepted")
        if final not in (p.answer,):
            res.check("equivalent", accepts(task, p, final) is True, where(p), f"file spelling {final!r} rejected")
    res.check("reference", not wrong_refs, where(p), "; ".join(wrong_refs))
    for form in numeric_spellings(p.answer):
        res.check("equivalent", accepts(task, p, form) is True, where(p), f"equivalent spelling {form!r} rejected")
    for form in (p.answer, *numeric_spellings(p.answer)[:2]):
        for ending in BOXED_ENDINGS:  # the answer as a chat model writes it
            text = "\n\n".join([*p.steps, ending.format(form)])
            res.check("equivalent", safe(task.is_correct, p, text) is True, where(p), f"boxed {ending.format(form)!r} rejected")
    for wrong in numeric_wrongs(p.answer):
        res.check("wrong", accepts(task, p, wrong) is False, where(p), f"wrong answer {wrong!r} accepted")
    late_wrong = task.format_solution([*p.steps, task.format_answer(p.answer)], numeric_wrongs(p.answer)[-1])
    res.check("wrong", safe(task.is_correct, p, late_wrong) is False, where(p),
              "right answer followed by a wrong final answer was accepted")


def run_gsm_symbolic(n: int) -> Result:
    import reasoning_gym

    res = Result("gsm_symbolic", "reasoning-gym (generated)")
    t0 = time.perf_counter()
    task = GSMSymbolicTask()
    train, test = task.problems("train", n=n), task.problems("test", n=n)
    check_splits(res, train, test)
    # the answer agrees with reasoning-gym's own entry, regenerated from (seed, index)
    datasets: dict[int, object] = {}
    for p in train + test:
        seed, index = p.meta["rg_seed"], p.meta["source_index"]
        if seed not in datasets:
            size = max(q.meta["source_index"] for q in train + test if q.meta["rg_seed"] == seed) + 1
            datasets[seed] = reasoning_gym.create_dataset("gsm_symbolic", size=size, seed=seed)
        entry = datasets[seed][index]
        same = entry["question"].strip() == p.question and Decimal(str(entry["answer"])) == Decimal(p.answer)
        check_hash_problem(res, task, p, None, [] if same else [f"reasoning-gym's entry says {entry['answer']!r}"])
    check_garbage(res, task, train + test, HASH_GARBAGE + BOXED_GARBAGE)
    res.seconds = time.perf_counter() - t0
    return res


def run_gsm8k(source: Path) -> Result:
    res = Result("gsm8k", display(source))
    t0 = time.perf_counter()
    task = GSM8KTask(source=source)
    train, test = task.problems("train"), task.problems("test")
    check_splits(res, train, test)
    rows = read_file(source) if source.is_file() else None
    for p in train + test:
        check_hash_problem(res, task, p, rows[p.meta["row"]] if rows is not None else None, [])
    check_garbage(res, task, train + test, HASH_GARBAGE + BOXED_GARBAGE)
    res.seconds = time.perf_counter() - t0
    return res


# --- math500 ------------------------------------------------------------------------------------


def run_math500(source: Path) -> Result:
    res = Result("math500", display(source))
    t0 = time.perf_counter()
    task = Math500Task(source=source)
    train, test = task.problems("train"), task.problems("test")
    check_splits(res, train, test)
    rows = read_file(source) if source.is_file() else None
    for p in train + test:
        wrong_refs = reference_problems(task, p)
        if rows is not None and p.answer != str(rows[p.meta["row"]]["answer"]).strip():
            wrong_refs.append("answer differs from the file's answer column")
        own = "\n\n".join(p.steps)  # the row's own solution: its last \boxed{} must hold the answer
        if safe(task.is_correct, p, own) is not True:
            wrong_refs.append(f"the row's own solution ends in \\boxed{{{safe(task.extract_answer, own)}}}")
        res.check("reference", not wrong_refs, where(p), "; ".join(wrong_refs))
        squeezed = "".join(p.answer.split())
        equivalents, wrongs = MATH500_FORMS.get(p.meta.get("unique_id"), ([], []))
        if normalize_number(p.answer) is not None:  # a plain number: perturb it too
            wrongs = wrongs + numeric_wrongs(normalize_number(p.answer))
        for form in dict.fromkeys([squeezed, *equivalents]):
            res.check("equivalent", accepts(task, p, form) is True, where(p), f"equivalent form {form!r} rejected")
        for wrong in wrongs:
            res.check("wrong", accepts(task, p, wrong) is False, where(p), f"wrong form {wrong!r} accepted")
        if wrongs:
            late_wrong = task.format_solution([*p.steps, task.format_answer(p.answer)], wrongs[0])
            res.check("wrong", safe(task.is_correct, p, late_wrong) is False, where(p),
                      "right answer followed by a wrong final answer was accepted")
        elif source.resolve() == MATH500_SAMPLE.resolve():
            res.check("wrong", False, where(p), "no wrong forms to test: add the row to MATH500_FORMS")
    check_garbage(res, task, train + test, BOXED_GARBAGE, BOXED_NONSENSE)
    res.seconds = time.perf_counter() - t0
    return res


def display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gsm-symbolic-n", type=int, default=200, help="gsm_symbolic problems per split")
    parser.add_argument("--gsm8k", type=Path, default=GSM8K_SAMPLE, help="gsm8k source: local file or folder")
    parser.add_argument("--math500", type=Path, default=MATH500_SAMPLE, help="math500 source: local file or folder")
    parser.add_argument("--out", type=Path, default=HERE / "out" / "tasks_check.json")
    args = parser.parse_args(argv)

    runs = [("gsm_symbolic", "reasoning-gym (generated)", lambda: run_gsm_symbolic(args.gsm_symbolic_n)),
            ("gsm8k", display(args.gsm8k), lambda: run_gsm8k(args.gsm8k)),
            ("math500", display(args.math500), lambda: run_math500(args.math500))]
    results = []
    for name, source, run in runs:
        try:
            results.append(run())
        except Exception as err:  # a task that cannot even load is a failed row of the table, not a crash
            res = Result(name, f"{source} (LOAD FAILED)")
            res.failures.append(f"{name} [load] {type(err).__name__}: {err}")
            results.append(res)
    print(format_table([r.row() for r in results], COLUMNS, markdown=True))
    failures = [f for r in results for f in r.failures]
    write_json(args.out, {
        "args": {"gsm_symbolic_n": args.gsm_symbolic_n, "gsm8k": display(args.gsm8k), "math500": display(args.math500)},
        "ok": not failures,
        "tasks": [r.to_json() for r in results],
    })
    print(f"\nwrote {display(args.out)}")
    if failures:
        print(f"\n{len(failures)} check(s) FAILED:", file=sys.stderr)
        for f in failures:
            print(f"  {f}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
