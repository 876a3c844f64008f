"""Issue 26's first pass of bad inputs for ``benchmarks/bad_inputs.py``: an output is never an input, the
library's write targets are guarded, lock and model-folder errors are one line, fit refuses what it cannot
fit, recipe ranges are checked at load, and data files."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from bad_inputs import Case, _points, _recipe_case, _write


def _copy_policy(name: str, damage: Callable[[Path], None] | None = None) -> Callable[[Path], None]:
    """A copy of the tiny policy P named ``name``, then ``damage(folder)`` done to it."""
    def setup(ws: Path) -> None:
        import shutil

        if (ws / name).exists():
            shutil.rmtree(ws / name)
        shutil.copytree(ws / "P", ws / name)
        if damage is not None:
            damage(ws / name)

    return setup


def _truncate(folder: Path) -> None:
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1000])


def _garble_header(folder: Path) -> None:
    (folder / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not a header!!}")


def _lost_shard(folder: Path) -> None:
    (folder / "model.safetensors").rename(folder / "model-00001-of-00002.safetensors")
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {
        "a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}))


def _lock(folder: str, holder: dict | str) -> Callable[[Path], None]:
    """A run folder ``folder`` whose lock file holds ``holder`` (a dict as JSON, or raw text), written just now."""
    def setup(ws: Path) -> None:
        (ws / folder).mkdir(exist_ok=True)
        (ws / folder / ".o1-roadmap.lock").write_text(holder if isinstance(holder, str) else json.dumps(holder))
        _write("good.yaml", "policy: P\niterations: 1\n")(ws)

    return setup


def _live_lock(folder: str) -> Callable[[Path], None]:
    def setup(ws: Path) -> None:
        import socket

        _lock(folder, {"pid": os.getpid(), "host": socket.gethostname()})(ws)  # this script: alive

    return setup


def _files(files: dict[str, str]) -> Callable[[Path], None]:
    """Files under the scratch folder, by relative path ("U/report.md") -> content."""
    def setup(ws: Path) -> None:
        for name, content in files.items():
            (ws / name).parent.mkdir(parents=True, exist_ok=True)
            (ws / name).write_text(content)

    return setup


def _symlink(link: str, target: str) -> Callable[[Path], None]:
    def setup(ws: Path) -> None:
        if not (ws / link).is_symlink():
            (ws / link).symlink_to(target)

    return setup


def _prm_with_a_big_tokenizer(ws: Path) -> None:
    """A PRM from P whose tokenizer was swapped for one with 300 more tokens than its embeddings."""
    prm = ws / "PRMBIG"
    if prm.exists():
        return
    from transformers import AutoTokenizer

    from rewards import ProcessRewardModel

    ProcessRewardModel.from_policy(str(ws / "P")).save_pretrained(prm)
    tokenizer = AutoTokenizer.from_pretrained(prm)
    tokenizer.add_tokens([f"<extra_{i}>" for i in range(300)])
    tokenizer.save_pretrained(prm)


def _other_run(ws: Path) -> None:
    """A run folder (from before markers) started with train_problems: 7."""
    (ws / "run_d" / "iter_0").mkdir(parents=True, exist_ok=True)
    (ws / "run_d" / "config.yaml").write_text("policy: P\ntask: arith\niterations: 1\ntrain_problems: 7\n")
    _write("good.yaml", "policy: P\niterations: 1\n")(ws)


def _recipe_in_out(ws: Path) -> None:
    _write("U2/r.yaml", "policy: P\niterations: 1\n")(ws)


def issue26_cases() -> list[Case]:
    """Issue 26: an output is never an input, the library's write targets are guarded, lock and model-folder
    errors are one line, fit refuses what it cannot fit, and recipe ranges are checked at load."""
    ev = ["eval", "--policy", "P", "--max-new-tokens", "8", "--n", "2"]
    good = "policy: P\niterations: 1\n"
    pts = _points
    return [
        # an output is never an input (the data-loss cases and their kin)
        Case("eval --out P/config.json (inside the policy; exit 0 and a lost config before)",
             ev + ["--out", "P/config.json"], "lies inside the input --policy folder"),
        Case("eval --out <symlink to P>/config.json", ev + ["--out", "PL/config.json"], "lies inside the input --policy",
             setup=_symlink("PL", "P")),
        Case("eval --out x/../P/r.json", ev + ["--out", "x/../P/r.json"], "lies inside the input --policy folder"),
        Case("eval --out <the data folder>/r.json", ["eval", "--policy", "P", "--task", "gsm8k", "--task-arg",
             "source=D", "--out", "D/r.json"], "the input --task-arg source",
             setup=_files({"D/train.jsonl": '{"question": "1+1?", "answer": "#### 2"}\n'})),
        Case("run --out U holding the user's report.md and metrics.json (overwritten before)",
             ["run", "good.yaml", "--out", "U"], "did not write",
             setup=lambda ws: (_write("good.yaml", good)(ws), _files({"U/report.md": "mine", "U/metrics.json": "{}"})(ws))),
        Case("run --policy P --out P (copied P into itself before)", ["run", "good.yaml", "--policy", "P", "--out", "P"],
             "is the input --policy folder", setup=_write("good.yaml", good)),
        Case("run --out P/run (recipe's policy P)", ["run", "good.yaml", "--out", "P/run"],
             "lies inside the input --policy folder", setup=_write("good.yaml", good)),
        Case("run U2/r.yaml --out U2 (the recipe inside the run folder)", ["run", "U2/r.yaml", "--out", "U2"],
             "contains the input recipe", setup=_recipe_in_out),
        Case("train-prm --labels L --out L --overwrite (deleted its labels before)",
             ["train-prm", "--labels", "L", "--init", "P", "--out", "L", "--overwrite"], "is the input --labels folder",
             setup=_files({"L/state.json": "{}"})),
        Case("train-prm --init P --out P/prm", ["train-prm", "--labels", "L", "--init", "P", "--out", "P/prm"],
             "lies inside the input --init policy folder", setup=_files({"L/state.json": "{}"})),
        Case("sft --policy P --out P --overwrite (replaced its input before)",
             ["sft", "--policy", "P", "--out", "P", "--overwrite"], "is the input --policy folder"),
        Case("label --policy P --out P", ["label", "--policy", "P", "--out", "P"], "is the input --policy folder"),
        Case("search --policy P --out P", ["search", "--policy", "P", "--out", "P", "--n", "2"],
             "is the input --policy folder"),
        Case("bench --out P", ["bench", "test-time", "--policy", "P", "--out", "P", "--n", "2"],
             "is the input --policy folder"),
        # a file or folder the library did not write is never replaced
        Case("eval --out <the user's notes.json> --overwrite", ev + ["--out", "notes.json", "--overwrite"],
             "did not write", setup=_write("notes.json", '{"my": "notes"}')),
        Case("fit --out <folder with the user's fit.json>", ["fit", "rise.json", "--out", "F"], "fit.json",
             setup=lambda ws: (_write("rise.json", pts([(1, .1), (10, .3), (100, .5), (1e3, .6)]))(ws),
                               _files({"F/fit.json": "my fit"})(ws))),
        Case("search --out <the user's folder with summary.json>",
             ["search", "--policy", "P", "--out", "US", "--n", "2", "--overwrite"], "did not write (summary.json)",
             setup=_files({"US/summary.json": "mine"})),
        Case("bench --out <the user's folder>", ["bench", "test-time", "--policy", "P", "--out", "UB", "--n", "2"],
             "did not write (results.csv)", setup=_files({"UB/results.csv": "mine"})),
        Case("tiny --out <a search folder>", ["tiny", "--out", "srch", "--overwrite"], "holds a 'search' folder"),
        Case("run: resume with another recipe (said only 'different recipe')", ["run", "good.yaml", "--out", "run_d"],
             "train_problems=7 in its config.yaml", setup=_other_run),
        # the run lock
        Case("run: another host's lock (traceback before)", ["run", "good.yaml", "--out", "run_h"],
             "in use by process 1 on another-host", setup=_lock("run_h", {"pid": 1, "host": "another-host"})),
        Case("run: a garbled lock (traceback, 'keeps taking it' before)", ["run", "good.yaml", "--out", "run_g"],
             "is unreadable", setup=_lock("run_g", "{garbage")),
        Case("run: a live run's lock (traceback before)", ["run", "good.yaml", "--out", "run_l"], "in use by process",
             setup=_live_lock("run_l")),
        # model folders that cannot work
        Case("eval --policy <truncated model.safetensors> (traceback before)", ["eval", "--policy", "PT", "--n", "2"],
             "model.safetensors is truncated", setup=_copy_policy("PT", _truncate)),
        Case("eval --policy <garbled safetensors header>", ["eval", "--policy", "PG", "--n", "2"],
             "header is not the JSON", setup=_copy_policy("PG", _garble_header)),
        Case("eval --policy <a cut config.json>", ["eval", "--policy", "PC", "--n", "2"], "config.json is not valid JSON",
             setup=_copy_policy("PC", lambda f: (f / "config.json").write_text('{"model_type": "llama", '))),
        Case("eval --policy <an index naming a missing shard>", ["eval", "--policy", "PS", "--n", "2"],
             "are missing", setup=_copy_policy("PS", _lost_shard)),
        Case("eval --policy <no tokenizer.json> ('install sentencepiece' before)", ["eval", "--policy", "PN", "--n", "2"],
             "has no tokenizer", setup=_copy_policy("PN", lambda f: (f / "tokenizer.json").unlink())),
        Case("eval --prm <PRM whose tokenizer outgrows its embeddings> (IndexError before)",
             ev + ["--method", "beam", "--budget", "2", "--prm", "PRMBIG"], "embeddings",
             setup=_prm_with_a_big_tokenizer),
        # fit refuses what it cannot fit
        Case("fit: one compute value (A, B, C_mid printed before)", ["fit", "one.json"], "1 distinct compute value",
             setup=_write("one.json", pts([(5, 0.1), (5, 0.2), (5, 0.3)]))),
        Case("fit: two compute values", ["fit", "twoc.json"], "2 distinct compute value",
             setup=_write("twoc.json", pts([(1, 0.1), (1, 0.2), (8, 0.3), (8, 0.4)]))),
        Case("fit: a flat curve", ["fit", "flat.json"], "accuracy is flat",
             setup=_write("flat.json", pts([(1, 0.4), (10, 0.4), (100, 0.4), (1000, 0.4)]))),
        Case("fit: B at its bound (printed as a fit before)", ["fit", "jump.json"], "stopped at the bound", expect="warn",
             setup=_write("jump.json", pts([(1, 0.1), (2, 0.1), (4, 0.1), (8, 0.9), (16, 0.9)]))),
        # recipe ranges at load, whatever the learner
        _recipe_case("run: learn.learning_rate: -1.0e-4 (accepted until the learn phase before)", "lr.yaml", good + "learn: {learning_rate: -1.0e-4}\n", "run12", "learn.learning_rate=-0.0001"),
        _recipe_case("run: tree_dpo margin: 1.5", "mg.yaml", good + "learn: {algorithm: tree_dpo, margin: 1.5}\n", "run13", "learn.margin=1.5"),
        _recipe_case("run: grpo max_grad_norm: .nan", "gn.yaml", good + "learn: {algorithm: grpo, max_grad_norm: .nan}\n", "run14", "learn.max_grad_norm=nan"),
        _recipe_case("run: search temperature: -0.5", "st.yaml", good + "search: {method: mcts, temperature: -0.5}\n", "run15", "search.temperature=-0.5"),
        _recipe_case("run: prm temperature: -1.0 (guide: prm)", "pt.yaml", good + "guide: prm\nprm: {temperature: -1.0}\n", "run16", "prm.temperature=-1.0"),
        Case("eval --config <missing file>", ev + ["--config", "nope_cfg.yaml"], "nope_cfg.yaml"),
        # data files
        Case("gsm8k: the same question with two answers", ["eval", "--policy", "P", "--task", "gsm8k", "--task-arg",
             "source=twice.jsonl", "--n", "2"], "its question is row 0's", setup=_write("twice.jsonl", "".join(
                 json.dumps(r) + "\n" for r in ({"question": "2+2?", "answer": "#### 4"},
                                                {"question": "3+3?", "answer": "#### 6"},
                                                {"question": "2+2?", "answer": "#### 5"})))),
        Case("gsm8k: --n 50 over a 12-row file (silently fewer before)", ["eval", "--policy", "P", "--max-new-tokens",
             "4", "--task", "gsm8k", "--task-arg", "source=three.jsonl", "--split", "train", "--n", "50"], "asked for 50 train problems",
             expect="warn", setup=_write("three.jsonl", "".join(json.dumps({"question": f"{i}+1?", "answer": f"#### {i + 1}"})
                                                               + "\n" for i in range(12)))),
    ]
