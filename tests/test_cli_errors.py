"""The CLI's error boundary: bad input ends as one line naming it (exit 2), never a traceback or a
silent wrong result; plus the checks that run before any work and the thread settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from roadmap.app import cli
from roadmap.app.cli import main
from roadmap.core.errors import ConfigError, MissingPathError
from roadmap.core.threads import configure_threads

ROOT = Path(__file__).resolve().parents[1]


def _write(path: Path, content: str | bytes) -> str:
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return str(path)


CASES = {
    # name: (argv builder(tmp, tiny), what the message must name)
    "task-arg not a number": (lambda t, d: ["eval", "--policy", d, "--n", "2", "--task-arg", "digits=abc"],
                              "digits='abc'"),
    "task-arg unknown": (lambda t, d: ["eval", "--policy", d, "--n", "2", "--task-arg", "digitz=2"], "digitz"),
    "task-arg not KEY=VALUE": (lambda t, d: ["eval", "--policy", d, "--task-arg", "digits"], "'digits'"),
    "out is a folder": (lambda t, d: ["eval", "--policy", d, "--n", "2", "--out", str(t)], "{t}"),
    "missing policy": (lambda t, d: ["eval", "--policy", "./no/such/policy"], "./no/such/policy"),
    "missing prm": (lambda t, d: ["eval", "--policy", d, "--method", "beam", "--prm", str(t / "nope")], "nope"),
    "search method without prm": (lambda t, d: ["eval", "--policy", d, "--n", "2", "--method", "beam"], "--prm"),
    "non-UTF-8 data file": (lambda t, d: ["eval", "--policy", d, "--task", "gsm8k", "--task-arg",
                                          "source=" + _write(t / "latin1.jsonl", b'{"question": "caf\xe9"}\n')],
                            "latin1.jsonl"),
    "empty data file": (lambda t, d: ["eval", "--policy", d, "--task", "gsm8k", "--task-arg",
                                      "source=" + _write(t / "empty.jsonl", "")], "empty.jsonl"),
    "same question, two answers": (lambda t, d: ["eval", "--policy", d, "--task", "gsm8k", "--task-arg",
                                                 "source=" + _write(t / "twice.jsonl", "".join(json.dumps(r) + "\n" for r in (
                                                     {"question": "2+2?", "answer": "#### 4"},
                                                     {"question": "3+3?", "answer": "#### 6"},
                                                     {"question": " 2+2? ", "answer": "#### 5"})))],
                                   "row 2 is unusable: its question is row 0's, but its answer '5'"),
    "invalid YAML recipe": (lambda t, d: ["run", _write(t / "bad.yaml", "policy: [x\n"), "--out", str(t / "r")],
                            "bad.yaml"),
    "recipe is a list": (lambda t, d: ["run", _write(t / "list.yaml", "- a\n- b\n"), "--out", str(t / "r")],
                         "list.yaml"),
    "missing recipe": (lambda t, d: ["run", "recipes/nope.yaml", "--out", str(t / "r")], "recipes/nope.yaml"),
    "fit invalid JSON": (lambda t, d: ["fit", _write(t / "p.json", "{bad")], "p.json"),
    "fit CSV without accuracy": (lambda t, d: ["fit", _write(t / "p.csv", "compute,acc\n1,0.2\n")], "p.csv"),
    "fit CSV not a number": (lambda t, d: ["fit", _write(t / "q.csv", "compute,accuracy\n1,high\n")], "q.csv"),
    "fit metrics.json without train_compute": (
        lambda t, d: ["fit", _write(t / "metrics.json", json.dumps({"iterations": [{"accuracy": 0.1}]}))],
        "metrics.json"),
    "fit percentages": (lambda t, d: ["fit", _write(t / "pct.json", json.dumps(
        [{"compute": c, "accuracy": a} for c, a in ((1, 10), (2, 20), (4, 30))]))], "divide percentages by 100"),
    "fit one compute value": (lambda t, d: ["fit", _write(t / "one.json", json.dumps(
        [{"compute": 5, "accuracy": a} for a in (0.1, 0.2, 0.3)]))], "1 distinct compute value"),
    "fit two compute values": (lambda t, d: ["fit", _write(t / "two.json", json.dumps(
        [{"compute": c, "accuracy": a} for c, a in ((1, 0.1), (1, 0.2), (8, 0.3), (8, 0.4))]))], "at least 3"),
    "fit flat curve": (lambda t, d: ["fit", _write(t / "flat.json", json.dumps(
        [{"compute": c, "accuracy": 0.4} for c in (1, 10, 100, 1000)]))], "accuracy is flat"),
    "bench out is a file": (lambda t, d: ["bench", "test-time", "--policy", d, "--n", "2",
                                          "--out", _write(t / "file.txt", "x")], "file.txt"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_one_line_naming_it(name, tmp_path, tiny_dir, capsys):
    build, named = CASES[name]
    assert main(build(tmp_path, str(tiny_dir))) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "Traceback" not in "\n".join(err)
    assert err[-1].startswith("roadmap ") and ": error: " in err[-1]
    assert named.format(t=tmp_path) in err[-1]


@pytest.mark.parametrize("argv, flag", [
    (["eval", "--policy", "p", "--n", "0"], "--n"),
    (["eval", "--policy", "p", "--n", "-5"], "--n"),
    (["eval", "--policy", "p", "--samples", "0"], "--samples"),
    (["search", "--policy", "p", "--out", "o", "--n", "0"], "--n"),
    (["bench", "test-time", "--policy", "p", "--out", "o", "--n", "0"], "--n"),
    (["bench", "test-time", "--policy", "p", "--out", "o", "--budgets", "1,0"], "--budgets"),
    (["label", "--policy", "p", "--out", "o", "--rollouts", "0"], "--rollouts"),
    (["eval", "--policy", "p", "--temperature", "-1"], "--temperature"),
    (["fit", "p.json", "--warmup", "1.5"], "--warmup"),
])
def test_bad_numbers_are_refused_by_the_parser(argv, flag, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert f"argument {flag}" in capsys.readouterr().err


def test_out_folder_is_refused_before_the_eval_runs(tmp_path, tiny_dir, monkeypatch):
    ran = []
    monkeypatch.setattr("roadmap.app.evaluate.evaluate", lambda *a, **k: ran.append(1))
    assert main(["eval", "--policy", str(tiny_dir), "--n", "2", "--out", str(tmp_path)]) == 2
    assert ran == []


def test_fit_warns_on_a_falling_curve(tmp_path, capsys):
    points = _write(tmp_path / "fall.json", json.dumps(
        [{"compute": c, "accuracy": a} for c, a in ((1, 0.6), (2, 0.55), (4, 0.5), (8, 0.45))]))
    assert main(["fit", points, "--out", str(tmp_path / "fit")]) == 0
    err = capsys.readouterr().err
    assert "WARNING" in err and "fall.json: accuracy falls as compute grows" in err
    assert "FALLS" in json.loads((tmp_path / "fit" / "fit.json").read_text())["sigmoid"]["warning"]


def test_debug_shows_the_traceback_and_bugs_still_raise(tmp_path, capsys, monkeypatch):
    assert main(["--debug", "fit", str(tmp_path / "nope.json")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith("roadmap fit: error:")

    def bug(args):
        raise TypeError("a genuine bug")

    monkeypatch.setitem(cli.COMMANDS, "fit", bug)
    with pytest.raises(TypeError, match="genuine bug"):
        main(["fit", str(tmp_path)])


def test_missing_relative_policy_errors_locally_and_fast(tmp_path):
    """No HF_HUB_OFFLINE: a typo must not reach the Hub (the audit saw 53 s of retries)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))}
    env["PYTHONPATH"] = str(ROOT)
    for policy in ("./runs/sft", "runs_sft", "a/b/c"):
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "roadmap.app.cli", "eval", "--policy", policy, "--n", "2"],
                              capture_output=True, text=True, cwd=tmp_path, env=env)
        assert time.perf_counter() - t0 < 2.0
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        assert f"--policy folder {policy!r} does not exist" in proc.stderr


def test_library_loaders_check_paths_before_the_hub(monkeypatch):
    from rewards import ProcessRewardModel, train_prm
    from roadmap.core.policy import HFPolicy

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    t0 = time.perf_counter()
    with pytest.raises(MissingPathError, match="policy folder './nope' does not exist"):
        HFPolicy.from_pretrained("./nope")
    with pytest.raises(MissingPathError, match="reward model folder 'nope/prm/x' does not exist"):
        ProcessRewardModel.from_pretrained("nope/prm/x")
    with pytest.raises(FileNotFoundError, match="init='no_init' does not exist"):
        train_prm([], "no_init")
    assert time.perf_counter() - t0 < 2.0


def test_empty_test_split_is_refused(tmp_path, tiny_dir, capsys):
    # one row: the hash split puts it in train or test, so one of the two splits is empty
    source = _write(tmp_path / "one.jsonl", json.dumps({"question": "1+1?", "answer": "x\n#### 2"}) + "\n")
    codes = [main(["eval", "--policy", str(tiny_dir), "--task", "gsm8k", "--task-arg", f"source={source}",
                   "--split", split, "--n", "3", "--max-new-tokens", "4"]) for split in ("train", "test")]
    assert sorted(codes) == [0, 2]
    assert "has no" in capsys.readouterr().err


def test_configure_threads_uses_affinity_and_respects_the_user():
    env: dict[str, str] = {}
    assert configure_threads(env) == len(os.sched_getaffinity(0))
    assert env == {"OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": str(len(os.sched_getaffinity(0)))}
    env = {"OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "ACTIVE"}
    assert configure_threads(env) is None and env == {"OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "ACTIVE"}


def test_sft_overwrite_replaces_another_kind_of_library_output_and_never_a_users_folder(tiny_dir, tmp_path):
    # the folder holds a tiny model (the library's output of another kind): refused, then replaced with --overwrite
    from policy_init.tiny import TinyConfig, create_tiny
    from roadmap.core.outputs import read_marker
    from roadmap.core.tasks import ArithTask

    out = tmp_path / "sft"
    create_tiny(ArithTask(), out, TinyConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64))
    argv = ["sft", "--policy", str(tiny_dir), "--out", str(out), "--max-steps", "1", "--problems", "64"]
    assert main(argv) == 2
    assert main([*argv, "--overwrite"]) == 0
    assert read_marker(out)["kind"] == "policy"
    user = tmp_path / "mine"
    user.mkdir()
    (user / "thesis.tex").write_text("keep")
    assert main(["sft", "--policy", str(tiny_dir), "--out", str(user), "--max-steps", "1", "--problems", "64",
                 "--overwrite"]) == 2
    assert (user / "thesis.tex").read_text() == "keep"


# ---------------------------------------------------------------------- model folders that cannot work (issue 26)
def _copy_model(tiny_dir, dst: Path) -> Path:
    import shutil

    return Path(shutil.copytree(tiny_dir, dst))


def test_truncated_weights_are_one_line_naming_the_file(tiny_dir, tmp_path, capsys):
    folder = _copy_model(tiny_dir, tmp_path / "cut")
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1000])
    assert main(["eval", "--policy", str(folder), "--n", "2"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "model.safetensors is truncated or damaged" in err.strip().splitlines()[-1]
    weights.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not a header!!}")  # a garbled header
    assert main(["eval", "--policy", str(folder), "--n", "2"]) == 2
    assert "header is not the JSON" in capsys.readouterr().err
    (folder / "config.json").write_text('{"model_type": "llama", ')  # a cut config (a traceback, as a bug, else)
    assert main(["eval", "--policy", str(folder), "--n", "2"]) == 2
    assert "config.json is not valid JSON" in capsys.readouterr().err


def test_a_missing_tokenizer_is_named_not_sentencepiece(tiny_dir, tmp_path, capsys):
    folder = _copy_model(tiny_dir, tmp_path / "notok")
    (folder / "tokenizer.json").unlink()
    assert main(["eval", "--policy", str(folder), "--n", "2"]) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert "has no tokenizer" in line and "tokenizer.json" in line and "sentencepiece" not in line


def test_a_prm_whose_tokenizer_outgrows_its_embeddings_is_refused(tiny_dir, tmp_path, capsys):
    from transformers import AutoTokenizer

    from rewards import ProcessRewardModel

    prm = tmp_path / "prm"
    ProcessRewardModel.from_policy(tiny_dir).save_pretrained(prm)
    tokenizer = AutoTokenizer.from_pretrained(prm)
    tokenizer.add_tokens([f"<extra_{i}>" for i in range(300)])  # a bigger tokenizer copied in from elsewhere
    tokenizer.save_pretrained(prm)
    with pytest.raises(ConfigError, match=r"tokenizer has \d+ tokens but the model only \d+ embeddings"):
        ProcessRewardModel.from_pretrained(prm)
    assert main(["eval", "--policy", str(tiny_dir), "--n", "2", "--method", "beam", "--budget", "2",
                 "--prm", str(prm)]) == 2
    assert "embeddings" in capsys.readouterr().err.strip().splitlines()[-1]


def test_fit_reports_parameters_at_their_bounds_not_as_a_fit(tmp_path, capsys):
    jump = _write(tmp_path / "jump.json", json.dumps(  # a step between two points: B runs to its bound
        [{"compute": c, "accuracy": a} for c, a in ((1, 0.1), (2, 0.1), (4, 0.1), (8, 0.9), (16, 0.9))]))
    assert main(["fit", jump, "--out", str(tmp_path / "fit")]) == 0
    out, err = capsys.readouterr()
    assert "(at bound)" in out and "n/a (at bounds)" in out and "B = " not in out
    assert "B=20 (upper bound)" in err and "not estimates" in err
    assert json.loads((tmp_path / "fit" / "fit.json").read_text())["sigmoid"]["at_bounds"] == ["B=20 (upper bound)"]
    rising = _write(tmp_path / "ok.json", json.dumps(
        [{"compute": c, "accuracy": a} for c, a in ((1, 0.1), (10, 0.3), (100, 0.5), (1000, 0.6))]))
    assert main(["fit", rising]) == 0
    out, err = capsys.readouterr()
    assert "at bound" not in out + err and "B = " in out


def test_n_above_the_rows_warns_with_the_count_used(tmp_path, tiny_dir, caplog):
    rows = [{"question": f"{i}+1?", "answer": f"#### {i + 1}"} for i in range(6)] + [
        {"question": "0+1?", "answer": "#### 1.0"}]  # a duplicate with the same answer is kept
    source = _write(tmp_path / "six.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    from roadmap.core.tasks import get_task

    task = get_task("gsm8k", source=source)
    available = len(task.problems("test"))
    assert main(["eval", "--policy", str(tiny_dir), "--task", "gsm8k", "--task-arg", f"source={source}",
                 "--split", "test", "--n", "50", "--max-new-tokens", "4"]) == 0
    # the task warns itself (for `roadmap run` and library callers too), once, naming the file and the count used
    assert caplog.text.count("asked for 50 test problems") == 1
    assert f"{source}: asked for 50 test problems (--n, or a recipe's *_problems) but it holds {available}; using " \
           f"those {available}" in caplog.text
