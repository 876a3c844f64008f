"""The bad-input table: every input of the issue-18 audit list (and more) through the CLI.

Each case runs ``python -m roadmap.app.cli ...`` as a subprocess in a scratch folder, with a tiny
policy built first, and records the exit code, whether stderr holds a traceback, and the last
line of stderr. A case passes when the outcome is the expected one (refused with exit 2, or run
with a warning) and the message names the input. Writes ``docs/bad_inputs.md``.

    python benchmarks/bad_inputs.py     (run it alone: it starts ~80 short CLI processes)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Case:
    """One bad input: the arguments, what should happen, and the text the message must hold."""

    label: str
    argv: list[str]
    needle: str  # the input named in the message
    expect: str = "refuse"  # "refuse": exit 2, one line; "warn": exit 0 and a warning; "run": exit 0
    setup: Callable[[Path], None] | None = field(default=None, repr=False)


def _write(name: str, content: str | bytes) -> Callable[[Path], None]:
    def setup(ws: Path) -> None:
        (ws / name).parent.mkdir(parents=True, exist_ok=True)
        (ws / name).write_bytes(content if isinstance(content, bytes) else content.encode())

    return setup


def _recipe_case(label: str, recipe: str, text: str, out: str, needle: str) -> Case:
    """A ``roadmap run`` of the recipe file ``recipe`` holding ``text``, into ``out``: refused naming ``needle``."""
    return Case(label, ["run", recipe, "--out", out], needle, setup=_write(recipe, text))


def _points(pairs) -> str:
    return json.dumps([{"compute": c, "accuracy": a} for c, a in pairs])


def _torn_cells(ws: Path) -> None:
    path = ws / "bench" / "cells.jsonl"
    text = path.read_text()
    path.write_text(text[: len(text) - 40])  # cut the last cell mid-line, as a full disk did


def _standin(family: str, name: str, remote_code: bool = False) -> Callable[[Path], None]:
    def setup(ws: Path) -> None:
        from policy_init.standins import build_standin

        if not (ws / name).exists():
            build_standin(family, ws / name)
        if remote_code:  # a folder that ships its own modelling code, as Qwen2.5-Math-PRM does
            cfg = json.loads((ws / name / "config.json").read_text())
            cfg["auto_map"] = {"AutoModelForCausalLM": "modeling_own.OwnForCausalLM"}
            (ws / name / "config.json").write_text(json.dumps(cfg))

    return setup


def cases() -> list[Case]:
    """The inputs tried; ``P`` is the tiny policy folder, relative to the scratch folder."""
    ev = ["eval", "--policy", "P", "--max-new-tokens", "8"]
    gsm = ev + ["--task", "gsm8k", "--task-arg"]
    bench = ["bench", "test-time", "--policy", "P", "--out", "bench", "--methods", "greedy,majority", "--budgets", "1",
             "--seeds", "0", "--n", "2"]
    search = ["search", "--policy", "P", "--out", "srch", "--method", "bon", "--budget", "2", "--n", "2",
              "--shard-size", "1"]
    good = "policy: P\niterations: 1\n"
    return [
        Case("eval --n 0", ev + ["--n", "0"], "--n"),
        Case("eval --n -5", ev + ["--n", "-5"], "--n"),
        Case("eval --n abc", ev + ["--n", "abc"], "--n"),
        Case("eval --samples 0", ev + ["--samples", "0"], "--samples"),
        Case("eval --budget 0", ev + ["--budget", "0"], "--budget"),
        Case("eval --temperature -1", ev + ["--temperature", "-1"], "--temperature"),
        Case("eval --max-new-tokens 0", ["eval", "--policy", "P", "--max-new-tokens", "0"], "--max-new-tokens"),
        Case("eval --batch-size 0", ev + ["--batch-size", "0"], "--batch-size"),
        Case("eval --task nope", ev + ["--task", "nope", "--n", "2"], "'nope'"),
        Case("eval --task-arg digits=abc", ev + ["--n", "2", "--task-arg", "digits=abc"], "digits='abc'"),
        Case("eval --task-arg digits=0", ev + ["--n", "2", "--task-arg", "digits=0"], "digits=0"),
        Case("eval --task-arg digits=2.5", ev + ["--n", "2", "--task-arg", "digits=2.5"], "digits=2.5"),
        Case("eval --task-arg bogus=1", ev + ["--n", "2", "--task-arg", "bogus=1"], "bogus"),
        Case("eval --task-arg digits (no =)", ev + ["--task-arg", "digits"], "'digits'"),
        Case("eval --policy ./missing (relative)", ["eval", "--policy", "./missing"], "./missing"),
        Case("eval --policy missing_name", ["eval", "--policy", "missing_name"], "missing_name"),
        Case("eval --policy a/b/c", ["eval", "--policy", "a/b/c"], "a/b/c"),
        Case("eval --policy <a file>", ["eval", "--policy", "notes.txt"], "notes.txt", setup=_write("notes.txt", "x")),
        Case("eval --policy <folder without config.json>", ["eval", "--policy", "emptydir"], "emptydir",
             setup=lambda ws: (ws / "emptydir").mkdir(exist_ok=True)),
        Case("eval --method beam without --prm", ev + ["--n", "2", "--method", "beam"], "--prm"),
        Case("eval --prm ./missing", ev + ["--method", "beam", "--prm", "./nope_prm"], "nope_prm"),
        Case("eval --prm <a policy folder>", ev + ["--n", "2", "--method", "beam", "--prm", "P"], "not a reward model"),
        Case("eval --out <a folder> (after the eval, before)", ev + ["--n", "2", "--out", "P"], "'P'"),
        Case("eval --out under a file", ev + ["--n", "2", "--out", "notes.txt/r.json"], "notes.txt",
             setup=_write("notes.txt", "x")),
        Case("gsm8k: non-UTF-8 data file", gsm + ["source=latin1.jsonl", "--n", "2"], "latin1.jsonl",
             setup=_write("latin1.jsonl", b'{"question": "caf\xe9", "answer": "#### 1"}\n')),
        Case("gsm8k: empty data file (accuracy 0 before)", gsm + ["source=empty.jsonl", "--n", "2"], "empty.jsonl",
             setup=_write("empty.jsonl", "")),
        Case("gsm8k: invalid JSON line", gsm + ["source=broken.jsonl", "--n", "2"], "broken.jsonl",
             setup=_write("broken.jsonl", '{"question": "a", "answer": "#### 1"}\n{oops\n')),
        Case("gsm8k: invalid .json file", gsm + ["source=broken.json", "--n", "2"], "broken.json",
             setup=_write("broken.json", '[{"question": "a",]')),
        Case("gsm8k: rows that are not objects", gsm + ["source=nums.json", "--n", "2"], "nums.json",
             setup=_write("nums.json", "[1, 2]")),
        Case("gsm8k: row without an answer", gsm + ["source=noans.jsonl", "--n", "2"], "noans.jsonl",
             setup=_write("noans.jsonl", '{"question": "a"}\n')),
        Case("gsm8k: missing data file", gsm + ["source=./nope.jsonl", "--n", "2"], "nope.jsonl"),
        Case("gsm8k: wrong suffix", gsm + ["source=data.txt", "--n", "2"], "data.txt", setup=_write("data.txt", "x")),
        Case("search --n 0", search[:-6] + ["--n", "0"], "--n"),
        Case("search --budget 0", search[:-6] + ["--budget", "0"], "--budget"),
        Case("search --shard-size 0", search[:-2] + ["--shard-size", "0"], "--shard-size"),
        Case("search --out <a file>", ["search", "--policy", "P", "--out", "notes.txt", "--n", "2"], "notes.txt",
             setup=_write("notes.txt", "x")),
        Case("search: first run (setup of the next case)", search, "", expect="run"),
        Case("search: rerun with another --budget (stale shards before)", search[:-6] + ["--budget", "3"] + search[-4:],
             "budget=2 on disk, 3 now"),
        Case("search: rerun with another --policy", ["search", "--policy", "P2"] + search[3:], "policy="),
        Case("bench --n 0", bench[:-2] + ["--n", "0"], "--n"),
        Case("bench --budgets 0,1", bench[:9] + ["0,1"], "--budgets"),
        Case("bench --budgets a", bench[:9] + ["a"], "--budgets"),
        Case("bench --methods bogus", bench[:7] + ["bogus"] + bench[8:], "bogus"),
        Case("bench: first run (setup of the next cases)", bench, "", expect="run"),
        Case("bench: rerun with another --temperature (stale cells before)", bench + ["--temperature", "0.5"],
             "temperature=1.0 on disk, 0.5 now"),
        Case("bench: torn last line of cells.jsonl (JSONDecodeError before)", bench, "torn last line", expect="warn",
             setup=_torn_cells),
        Case("label --rollouts 0", ["label", "--policy", "P", "--out", "lab", "--rollouts", "0"], "--rollouts"),
        Case("label --samples 0", ["label", "--policy", "P", "--out", "lab", "--samples", "0"], "--samples"),
        Case("train-prm --init ./missing", ["train-prm", "--labels", "P", "--init", "./nope", "--out", "prm"], "./nope"),
        Case("train-prm --labels missing", ["train-prm", "--labels", "no_labels", "--init", "P", "--out", "prm"],
             "no_labels"),
        Case("train-prm --epochs 0", ["train-prm", "--labels", "P", "--init", "P", "--out", "prm", "--epochs", "0"],
             "--epochs"),
        Case("sft --policy ./missing", ["sft", "--policy", "./nope", "--out", "sft"], "./nope"),
        Case("sft --max-steps 0", ["sft", "--policy", "P", "--out", "sft", "--max-steps", "0"], "--max-steps"),
        Case("sft --lr 0", ["sft", "--policy", "P", "--out", "sft", "--lr", "0"], "--lr"),
        Case("run: missing recipe", ["run", "nope.yaml", "--out", "run1"], "nope.yaml"),
        Case("run: invalid YAML", ["run", "bad.yaml", "--out", "run2"], "bad.yaml", setup=_write("bad.yaml", "a: [1\n")),
        Case("run: recipe top level is a list", ["run", "list.yaml", "--out", "run3"], "list.yaml",
             setup=_write("list.yaml", "- a\n- b\n")),
        Case("run: iterations: three", ["run", "it.yaml", "--out", "run4"], "three",
             setup=_write("it.yaml", "policy: P\niterations: three\n")),
        Case("run: task_args is a list", ["run", "ta.yaml", "--out", "run5"], "task_args",
             setup=_write("ta.yaml", good + "task_args: [1]\n")),
        Case("run: unknown key", ["run", "uk.yaml", "--out", "run6"], "search_budget",
             setup=_write("uk.yaml", good + "search_budget: 3\n")),
        Case("run: non-UTF-8 recipe", ["run", "latin1.yaml", "--out", "run7"], "latin1.yaml",
             setup=_write("latin1.yaml", b"policy: caf\xe9\n")),
        Case("run --iterations -1", ["run", "r.yaml", "--out", "run8", "--iterations", "-1"], "--iterations"),
        Case("run: recipe's policy ./missing", ["run", "mp.yaml", "--out", "run9"], "missing",
             setup=_write("mp.yaml", "policy: ./missing\niterations: 1\n")),
        Case("fit: missing file", ["fit", "nope.json"], "nope.json"),
        Case("fit: invalid JSON", ["fit", "bad.json"], "bad.json", setup=_write("bad.json", "{bad")),
        Case("fit: CSV without an accuracy column", ["fit", "p.csv"], "p.csv",
             setup=_write("p.csv", "compute,acc\n1,0.2\n2,0.3\n4,0.4\n")),
        Case("fit: CSV with a non-number", ["fit", "q.csv"], "q.csv",
             setup=_write("q.csv", "compute,accuracy\n1,high\n")),
        Case("fit: metrics.json without train_compute (KeyError before)", ["fit", "metrics.json"], "metrics.json",
             setup=_write("metrics.json", json.dumps({"iterations": [{"accuracy": 0.1}]}))),
        Case("fit: JSON object that is not a list", ["fit", "obj.json"], "obj.json",
             setup=_write("obj.json", json.dumps({"a": 1}))),
        Case("fit: non-UTF-8 file", ["fit", "latin1.csv"], "latin1.csv",
             setup=_write("latin1.csv", b"compute,accuracy\n1,0.\xe9\n")),
        Case("fit: accuracy in percent (A=1.0, R0=10 before)", ["fit", "pct.json"], "divide percentages by 100",
             setup=_write("pct.json", _points([(1, 10), (2, 20), (4, 30), (8, 35)]))),
        Case("fit: falling curve (A=0.51 +- 0.0000 before)", ["fit", "fall.json"], "falls as compute grows",
             expect="warn", setup=_write("fall.json", _points([(1, 0.6), (2, 0.55), (4, 0.5), (8, 0.45)]))),
        Case("fit: two points", ["fit", "two.json"], "at least 3",
             setup=_write("two.json", _points([(1, 0.1), (2, 0.2)]))),
        Case("fit: zero compute", ["fit", "zero.json"], "zero.json: compute 0.0 (point 0) must be a positive",
             setup=_write("zero.json", _points([(0, 0.1), (2, 0.2), (4, 0.3)]))),
        Case("fit --warmup 1.5", ["fit", "fall.json", "--warmup", "1.5"], "--warmup"),
        Case("fit --r0 10", ["fit", "fall.json", "--r0", "10"], "--r0"),
        # real models (issue 13): prompt formats, lengths, remote code, PRM formats, the --config file
        Case("eval --prompt-format chat, tokenizer without a chat template", ["eval", "--policy", "GPT2", "--n", "2",
             "--prompt-format", "chat"], "--prompt-format plain", setup=_standin("gpt2", "GPT2")),
        Case("eval --prm <a policy folder> (no PRM format)", ev + ["--n", "2", "--method", "beam", "--prm", "P"],
             "--prm-format"),
        Case("eval --policy <folder with auto_map>, no --trust-remote-code", ["eval", "--policy", "OWN", "--n", "2"],
             "--trust-remote-code", setup=_standin("qwen2", "OWN", remote_code=True)),
        Case("eval --task mypkg.missing:MyTask", ev + ["--n", "2", "--task", "mypkg.missing:MyTask"], "mypkg.missing"),
        Case("eval --shots 2 under --prompt-format plain", ev + ["--n", "2", "--shots", "2"], "shots"),
        Case("eval --max-step-tokens 0", ev + ["--max-step-tokens", "0"], "--max-step-tokens"),
        Case("eval --device cpu --device-map auto", ev + ["--n", "2", "--device", "cpu", "--device-map", "auto"],
             "device_map"),
        Case("eval --backend vllm without vLLM installed", ev + ["--n", "2", "--backend", "vllm"], "vllm"),
        Case("eval --config <file with an unknown flag>", ev + ["--config", "cfg.yaml"], "--max-new-token",
             setup=_write("cfg.yaml", "command: eval\nmax_new_token: 8\n")),
        Case("eval --config <a recipe for another command>", ev + ["--config", "cfg2.yaml"], "roadmap bench",
             setup=_write("cfg2.yaml", "command: bench\nn: 2\n")),
        Case("run: lengths: {max_steps: 0}", ["run", "ln.yaml", "--out", "run10"], "max_steps",
             setup=_write("ln.yaml", good + "lengths: {max_steps: 0}\n")),
        Case("run: prompt: {kind: chatty}", ["run", "pk.yaml", "--out", "run11"], "chatty",
             setup=_write("pk.yaml", good + "prompt: {kind: chatty}\n")),
    ]


def all_cases(only: str | None = None) -> list[Case]:
    """Every case in table order (or the family ``only``): issue 18's (``cases``), then issue 26's first pass and
    second pass."""
    from bad_inputs_issue26 import issue26_cases
    from bad_inputs_readback import readback_cases

    families = {"issue18": cases, "issue26": issue26_cases, "readback": readback_cases}
    return [c for name, make in families.items() if only in (None, name) for c in make()]


def run_case(case: Case, ws: Path, env: dict[str, str], timeout: float) -> dict:
    """Run one case in ``ws``; the outcome, the message (last stderr line) and whether it passed."""
    if case.setup is not None:
        case.setup(ws)
    t0 = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, "-m", "roadmap.app.cli", *case.argv], cwd=ws, env=env,
                              capture_output=True, text=True, timeout=timeout)
        code, err = proc.returncode, proc.stderr
    except subprocess.TimeoutExpired:
        code, err = None, f"timed out after {timeout:.0f} s"
    wall = time.perf_counter() - t0
    lines = [x for x in err.splitlines() if x.strip() and "it/s]" not in x and not x.startswith("Loading")]
    traceback = "Traceback (most recent call last)" in err
    wanted = [x for x in lines if case.needle and case.needle in x]
    message = (wanted or lines or [""])[-1].strip().replace(str(ws.resolve()), "<scratch>").replace(str(ws), "<scratch>")
    if traceback:
        outcome = "TRACEBACK"
    elif code is None:
        outcome = "TIMEOUT"
    elif code == 0:
        outcome = "warned" if case.expect == "warn" and wanted else ("ran" if case.expect == "run" else "SILENT")
    elif code == 2:
        outcome = "refused" if wanted else "refused, input NOT named"
    else:
        outcome = f"exit {code}"
    ok = {"refuse": "refused", "warn": "warned", "run": "ran"}[case.expect] == outcome
    return {"input": case.label, "argv": " ".join(case.argv), "exit": code, "outcome": outcome, "ok": ok,
            "traceback": traceback, "message": message, "seconds": round(wall, 2)}


def write_table(rows: list[dict], path: Path) -> None:
    """``docs/bad_inputs.md``: the summary counts, then one row per input."""
    bad = [r for r in rows if not r["ok"]]
    tried = [r for r in rows if r["outcome"] != "ran"]
    lines = [
        "# Bad inputs and what the CLI says",
        "",
        "Regenerated by `benchmarks/bad_inputs.py` (issues 18 and 26): each input runs `roadmap ...` as a subprocess in a",
        "scratch folder (`P` is a tiny policy built there, `P2` a second one). *refused*: exit code 2 and one line",
        "`roadmap <command>: error: ...` that names the input; *warned*: the command ran and warned; *SILENT*: it",
        "ran with no complaint; *TRACEBACK*: a raw traceback. Rows marked *ran* only set up the next rows.",
        "Files the library reads back (shards and their records, bench cells, a run's phase markers, the recipe as",
        "run) carry a size and sha256, or a seal over their JSON (roadmap/core/integrity.py): an emptied, cut or",
        "garbled one is named in a warning and redone, or refused where redoing could be wrong.",
        "",
        f"Inputs tried: {len(tried)}. Refused naming the input: {sum(r['outcome'] == 'refused' for r in rows)}. "
        f"Warned: {sum(r['outcome'] == 'warned' for r in rows)}. "
        f"Silent wrong results: {sum(r['outcome'] == 'SILENT' for r in rows)}. "
        f"Raw tracebacks: {sum(r['traceback'] for r in rows)}. "
        f"Not as expected: {len(bad)}{' (' + '; '.join(r['input'] for r in bad) + ')' if bad else ''}.",
        "",
        "| input | command | exit | outcome | message |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        msg = r["message"].replace("|", "\\|")
        msg = msg if len(msg) <= 220 else msg[:217] + "..."
        lines.append(f"| {r['input']} | `roadmap {r['argv']}` | {r['exit']} | {r['outcome']} | {msg} |")
    injected = ROOT / "benchmarks" / "results" / "fault_injection.md"
    if injected.exists():  # written by benchmarks/fault_injection.py --record
        lines += ["", "## Fault injection", "",
                  "`roadmap run` of a tiny recipe killed with SIGKILL at random points, the newest non-hidden file",
                  "under its run folder truncated after each kill, then resumed (benchmarks/fault_injection.py; a",
                  "2-kill version runs in tests/test_fault_injection.py). *next_start_said*: the warning the next",
                  "start gave about the damage (empty when it needed none: the file was rewritten whole).", "",
                  injected.read_text().strip()]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "bad_inputs.md"))
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per case")
    parser.add_argument("--only", choices=("issue18", "issue26", "readback"), default=None,
                        help="run one family of cases and print them, without writing the table")
    args = parser.parse_args(argv)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bad_inputs_") as tmp:
        ws = Path(tmp)
        for name, seed in (("P", "0"), ("P2", "1")):
            subprocess.run([sys.executable, "-m", "roadmap.app.cli", "tiny", "--out", name, "--seed", seed], cwd=ws,
                           env=env, check=True, capture_output=True)
        for case in all_cases(args.only):
            row = run_case(case, ws, env, args.timeout)
            rows.append(row)
            print(f"{row['outcome']:<10} {row['seconds']:6.1f}s  {case.label}: {row['message'][:110]}", flush=True)
    if args.only is None:
        write_table(rows, Path(args.out))
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
