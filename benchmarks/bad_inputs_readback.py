"""Issue 26's second pass of bad inputs for ``benchmarks/bad_inputs.py``: what the library reads back (search
shards and their records, bench cells, a run's phase markers, its recipe as run, output markers), data files
(conflicting answers across files, more problems asked for than held, characters outside the vocabulary),
and more flags and recipe keys of every command."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from bad_inputs import Case, _points, _recipe_case, _write

#: a `roadmap run` recipe that finishes in seconds on the tiny policy P
TINY_RUN = ("policy: P\ntask: arith\niterations: 1\ntrain_problems: 2\neval_problems: 2\nbatch_size: 8\n"
            "search: {method: bon, budget: 2, shard_size: 1}\n"
            "learn: {algorithm: expert_iteration, reference_mix: 4, epochs: 1, batch_size: 4}\n"
            "lengths: {max_solution_tokens: 16}\n")


def _garble(text: str) -> str:
    """One digit changed, so the file stays valid JSON (only its digest can tell)."""
    i = next(i for i, ch in enumerate(text) if ch.isdigit())
    return text[:i] + str((int(text[i]) + 1) % 10) + text[i + 1:]


def _damage(path: str, how: str, also_remove: tuple[str, ...] = ()) -> Callable[[Path], None]:
    """Damage the file ``path`` (under the scratch folder): "empty", "cut" (to half), "garble" (one digit), or
    "line" (a garbled first line of a JSONL file); then remove ``also_remove`` (markers that would skip it)."""
    def setup(ws: Path) -> None:
        p = ws / path
        text = p.read_text(encoding="utf-8")
        if how == "empty":
            p.write_text("")
        elif how == "cut":
            p.write_text(text[: len(text) // 2])
        elif how == "garble":
            p.write_text(_garble(text))
        elif how == "line":
            first, _, rest = text.partition("\n")
            p.write_text(_garble(first) + "\n" + rest)
        elif how == "bytes":
            p.write_bytes(b"\xff\xfe" + text.encode()[2:])
        for name in also_remove:
            (ws / name).unlink(missing_ok=True)

    return setup


def _recipe_as_run(change: Callable[[str], str]) -> Callable[[Path], None]:
    """The tiny run's config.yaml as the first run wrote it (kept aside the first time), then ``change``d."""
    def setup(ws: Path) -> None:
        saved, kept = ws / "run_t" / "config.yaml", ws / "run_t_config.yaml"
        if not kept.exists():
            kept.write_text(saved.read_text())
        saved.write_text(change(kept.read_text()))

    return setup


def _twelve(ws: Path) -> None:
    _write("twelve.jsonl", "".join(json.dumps({"question": f"{i}+1?", "answer": f"#### {i + 1}"}) + "\n"
                                   for i in range(12)))(ws)


def _rows(name: str, rows: list[tuple[str, str]]) -> Callable[[Path], None]:
    """A gsm8k-style JSONL file of (question, answer) rows."""
    return _write(name, "".join(json.dumps({"question": q, "answer": f"so\n#### {a}"}) + "\n" for q, a in rows))


def readback_cases() -> list[Case]:
    """The cases of issue 26's second pass, in order (setup rows marked expect="run")."""
    search = ["search", "--policy", "P", "--out", "srch2", "--method", "bon", "--budget", "2", "--n", "2",
              "--shard-size", "1"]
    bench = ["bench", "test-time", "--policy", "P", "--out", "bench2", "--methods", "greedy,majority", "--budgets",
             "1,2", "--seeds", "0", "--n", "2"]
    run = ["run", "tiny_run.yaml", "--out", "run_t"]
    gsm = ["eval", "--policy", "P", "--max-new-tokens", "4", "--task", "gsm8k", "--task-arg"]
    shard = "srch2/shards/00000.json"
    good = "policy: P\niterations: 1\n"
    return [
        # what the library reads back: search shards (sealed JSON, their provenance inside)
        Case("search: first run (setup of the read-back cases)", search, "", expect="run"),
        Case("search: a finished shard emptied (2 of 3 problems covered, silently, before)", search,
             "00000.json is empty", expect="warn", setup=_damage(shard, "empty")),
        Case("search: a finished shard cut in half", search, "00000.json is not valid JSON", expect="warn",
             setup=_damage(shard, "cut")),
        Case("search: a finished shard garbled into other valid JSON (trusted before)", search,
             "00000.json does not match the sha256", expect="warn", setup=_damage(shard, "garble")),
        Case("search: a finished shard with bytes that are not UTF-8", search, "00000.json is not UTF-8",
             expect="warn",
             setup=_damage(shard, "bytes")),
        Case("search: shards of the layout before 2026-12-07 (NNNNN.jsonl beside NNNNN.provenance.json)", search,
             "in the layout before 2026-12-07", expect="warn",
             setup=lambda ws: ((ws / "srch2/shards/00007.jsonl").write_text("{}\n"),
                               (ws / "srch2/shards/00007.provenance.json").write_text("{}"))),
        # bench cells
        Case("bench: first run (setup of the cell cases)", bench, "", expect="run"),
        Case("bench: a cell in the middle garbled into other valid JSON (trusted before)", bench,
             "line 1 does not match the sha256", expect="warn", setup=_damage("bench2/cells.jsonl", "line")),
        Case("bench: a broken line that is not the last (refused whole before)", bench, "line 1 is not valid JSON",
             expect="warn", setup=lambda ws: (ws / "bench2/cells.jsonl").write_text(
                 "{broken\n" + (ws / "bench2/cells.jsonl").read_text())),
        Case("bench: a line that is JSON but not a cell", bench, "line 1 holds a JSON list", expect="warn",
             setup=lambda ws: (ws / "bench2/cells.jsonl").write_text("[1, 2]\n" + (ws / "bench2/cells.jsonl").read_text())),
        # a run's phase markers and its recipe as run
        Case("run: first run of a tiny recipe (setup of the run cases)", run, "", expect="run",
             setup=_write("tiny_run.yaml", TINY_RUN)),
        Case("run: a phase marker emptied (JSONDecodeError traceback before)", run, "learn.done.json is empty",
             expect="warn", setup=_damage("run_t/iter_1/learn.done.json", "empty")),
        Case("run: a phase marker garbled into other valid JSON (trusted before)", run,
             "search.done.json does not match", expect="warn", setup=_damage("run_t/iter_1/search.done.json", "garble")),
        Case("run: the baseline's marker cut", run, "iter_0/eval.done.json is not valid JSON", expect="warn",
             setup=_damage("run_t/iter_0/eval.done.json", "cut")),
        Case("run: a search shard emptied under an unfinished search phase", run, "00001.json is empty",
             expect="warn", setup=_damage("run_t/iter_1/search/shards/00001.json", "empty",
                                          ("run_t/iter_1/search.done.json",))),
        Case("run: the recipe as run cut, with phases finished ('different recipe' before)", run,
             "config.yaml does not match the sha256", setup=_recipe_as_run(lambda t: t[: len(t) // 2])),
        Case("run: the recipe as run garbled (seed: 0 -> 1), with phases finished", run,
             "config.yaml does not match the sha256", setup=_recipe_as_run(lambda t: t.replace("seed: 0", "seed: 1"))),
        Case("run: the run folder's marker emptied, only a run's files (refused as foreign before)", run,
             ".o1-roadmap.json is damaged", expect="warn",
             setup=lambda ws: (_recipe_as_run(lambda t: t)(ws), _write("run_t/.o1-roadmap.json", "")(ws))),
        Case("run: the policy's marker emptied, learn unfinished ('did not write' before)", run,
             "has a damaged marker", setup=_damage("run_t/iter_1/policy/.o1-roadmap.json", "empty",
                                                    ("run_t/iter_1/learn.done.json",))),
        Case("run: an empty lock file", ["run", "good.yaml", "--out", "run_e"], "is unreadable",
             setup=lambda ws: (_write("good.yaml", good)(ws), _write("run_e/.o1-roadmap.lock", "")(ws))),
        # data files
        Case("gsm8k: the same question with two answers in train and test files (test's kept, silently, before)",
             gsm + ["source=DX", "--n", "2"], "asks the question of",
             setup=lambda ws: (_rows("DX/train.jsonl", [("What is 3+3?", "6"), ("What is 1+1?", "2")])(ws),
                               _rows("DX/test.jsonl", [("What is 3+3?", "7"), ("What is 5+5?", "10")])(ws))),
        Case("math500: the same problem with two answers", ["eval", "--policy", "P", "--task", "math500", "--task-arg",
             "source=m.jsonl", "--n", "2"], "its question is row 0's",
             setup=_write("m.jsonl", "".join(json.dumps({"problem": "Find x.", "answer": a}) + "\n" for a in "34"))),
        Case("gsm8k: characters outside the tokenizer's vocabulary (silent <unk> before)",
             gsm + ["source=euro.jsonl", "--split", "train", "--n", "2"], "outside the vocabulary", expect="warn",
             setup=_rows("euro.jsonl", [(f"Tom pays {i} € for {i} cafés. How much each?", 1) for i in range(12)])),
        Case("search --n 50 over a 12-row file", ["search", "--policy", "P", "--out", "srch3", "--method", "bon",
             "--budget", "2", "--n", "50", "--task", "gsm8k", "--task-arg", "source=twelve.jsonl",
             "--max-new-tokens", "4"], "asked for 50 train problems", expect="warn", setup=_twelve),
        Case("bench --n 50 over a 12-row file", ["bench", "test-time", "--policy", "P", "--out", "bench3", "--methods",
             "greedy", "--budgets", "1", "--seeds", "0", "--n", "50", "--task", "gsm8k", "--task-arg",
             "source=twelve.jsonl", "--max-new-tokens", "4"], "asked for 50 test problems", expect="warn", setup=_twelve),
        Case("gsm8k: an answer without '#### N'", gsm + ["source=nohash.jsonl", "--n", "2"], "nohash.jsonl",
             setup=_write("nohash.jsonl", json.dumps({"question": "1+1?", "answer": "it is two"}) + "\n")),
        Case("gsm8k: a question that is a number", gsm + ["source=numq.jsonl", "--n", "2"], "numq.jsonl",
             setup=_write("numq.jsonl", json.dumps({"question": 12, "answer": "#### 1"}) + "\n")),
        Case("gsm8k: a folder without split files", gsm + ["source=nosplit", "--n", "2"], "nosplit",
             setup=_write("nosplit/readme.md", "x")),
        Case("gsm8k: a garbage .parquet file", gsm + ["source=bad.parquet", "--n", "2"], "bad.parquet",
             setup=_write("bad.parquet", b"PAR1 not really")),
        Case("gsm8k --task-arg test_fraction=1.5", gsm + ["source=twelve.jsonl", "--task-arg", "test_fraction=1.5"],
             "test_fraction=1.5"),
        Case("gsm8k --task-arg on_bad_row=maybe", gsm + ["source=twelve.jsonl", "--task-arg", "on_bad_row=maybe"],
             "on_bad_row='maybe'"),
        # more flags of every command
        Case("eval --split dev", ["eval", "--policy", "P", "--split", "dev"], "--split"),
        Case("eval --seed abc", ["eval", "--policy", "P", "--seed", "abc"], "--seed"),
        Case("eval --samples 4 --method greedy --temperature nan", ["eval", "--policy", "P", "--temperature", "nan"],
             "--temperature"),
        Case("eval --dtype float7", ["eval", "--policy", "P", "--dtype", "float7"], "--dtype"),
        Case("search --method nope", ["search", "--policy", "P", "--out", "s4", "--method", "nope"], "--method"),
        Case("search --width 0", ["search", "--policy", "P", "--out", "s4", "--width", "0"], "--width"),
        Case("bench --seeds a", ["bench", "test-time", "--policy", "P", "--out", "b4", "--seeds", "a"], "--seeds"),
        Case("bench --out <a file>", ["bench", "test-time", "--policy", "P", "--out", "notes.txt", "--n", "2"],
             "notes.txt", setup=_write("notes.txt", "x")),
        Case("label --out <a file>", ["label", "--policy", "P", "--out", "notes.txt", "--n", "2"], "notes.txt",
             setup=_write("notes.txt", "x")),
        Case("label --temperature -1", ["label", "--policy", "P", "--out", "lab4", "--temperature", "-1"],
             "--temperature"),
        Case("train-prm --labels <a policy folder>", ["train-prm", "--labels", "P", "--init", "P", "--out", "prm4"],
             "P is not a label dataset"),
        Case("train-prm --lr -1", ["train-prm", "--labels", "L", "--init", "P", "--out", "prm4", "--lr", "-1"], "--lr",
             setup=_write("L/state.json", "{}")),
        Case("sft --minutes -1", ["sft", "--policy", "P", "--out", "sft4", "--minutes", "-1"], "--minutes"),
        Case("sft --problems 0", ["sft", "--policy", "P", "--out", "sft4", "--problems", "0"], "--problems"),
        Case("tiny --task nope", ["tiny", "--task", "nope", "--out", "t4"], "'nope'"),
        Case("tiny --tokenizer words", ["tiny", "--out", "t4", "--tokenizer", "words"], "--tokenizer"),
        # fit
        Case("fit: an empty list", ["fit", "none.json"], "none.json holds no points", setup=_write("none.json", "[]")),
        Case("fit: negative compute", ["fit", "neg.json"], "neg.json: compute -1.0 (point 0)", setup=_write("neg.json", _points(
            [(-1, 0.1), (10, 0.3), (100, 0.5), (1000, 0.6)]))),
        Case("fit: accuracy 1.5", ["fit", "big.json"], "1.5", setup=_write("big.json", _points(
            [(1, 0.1), (10, 0.3), (100, 1.5), (1000, 0.6)]))),
        # recipe keys
        _recipe_case("run: eval_problems: 0", "ep.yaml", good + "eval_problems: 0\n", "run20", "eval_problems"),
        _recipe_case("run: guide: oracle", "gd.yaml", good + "guide: oracle\n", "run21", "guide"),
        _recipe_case("run: search method: nope", "sm.yaml", good + "search: {method: nope}\n", "run22", "nope"),
        _recipe_case("run: learn algorithm: nope", "la.yaml", good + "learn: {algorithm: nope}\n", "run23", "nope"),
        _recipe_case("run: workers: 0", "wk.yaml", good + "workers: 0\n", "run24", "workers"),
        _recipe_case("run: backend: tpu", "bk.yaml", good + "backend: tpu\n", "run25", "tpu"),
        _recipe_case("run: task: nope", "tk.yaml", good + "task: nope\n", "run26", "nope"),
        _recipe_case("run: train_problems: -3", "tp.yaml", good + "train_problems: -3\n", "run27", "train_problems"),
    ]
