"""The write guard (issue 26): an output is never an input, a file or folder the library did not write is
never replaced, an unwritable --out fails before the work, and the run lock answers in one line."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from roadmap.app import cli
from roadmap.app.cli import main
from roadmap.core import io
from roadmap.core.outputs import (
    MARKER_NAME,
    OutputExistsError,
    StagedOutput,
    check_output_file,
    check_overlap,
    claim_output_dir,
    owned_payload,
    read_marker,
)


@pytest.fixture
def policy(tiny_dir, tmp_path) -> Path:
    """A copy of the tiny policy that a failing guard may damage without harming other tests."""
    return Path(shutil.copytree(tiny_dir, tmp_path / "A"))


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _no_work(monkeypatch):
    """Fail the test if a command gets past its checks into the work."""
    def work(*a, **k):
        raise AssertionError("the command started its work before the guard refused it")

    for target in ("roadmap.app.evaluate.evaluate", "policy_init.sft.warm_start", "rewards.train_prm",
                   "rewards.load_labels", "roadmap.app.loop._Run.run"):
        monkeypatch.setattr(target, work)


def _last_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.strip().splitlines()[-1]


# ---------------------------------------------------------------------- the five data-loss cases
def test_eval_out_inside_the_policy_is_refused_and_the_config_kept(policy, monkeypatch, capsys):
    before = _snapshot(policy)
    _no_work(monkeypatch)
    assert main(["eval", "--policy", str(policy), "--n", "2", "--out", str(policy / "config.json")]) == 2
    line = _last_line(capsys)
    assert "lies inside the input --policy folder" in line and "config.json" in line
    assert _snapshot(policy) == before


def test_run_refuses_a_users_folder_and_resumes_its_own(policy, tmp_path, monkeypatch, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"policy: {policy}\niterations: 1\n")
    user = tmp_path / "U"
    user.mkdir()
    (user / "report.md").write_text("my report")
    (user / "metrics.json").write_text('{"mine": 1}')
    _no_work(monkeypatch)
    assert main(["run", str(recipe), "--out", str(user)]) == 2
    line = _last_line(capsys)
    assert "did not write" in line and "metrics.json" in line and "report.md" in line
    assert (user / "report.md").read_text() == "my report" and (user / "metrics.json").read_text() == '{"mine": 1}'
    assert sorted(p.name for p in user.iterdir()) == ["metrics.json", "report.md"]  # no lock, no marker left

    # the library's own run folder (one from before markers: config.yaml and iter_0) is resumed
    ran = []
    monkeypatch.setattr("roadmap.app.loop._Run.run", lambda self: ran.append(self.dir) or {"iterations": []})
    mine = tmp_path / "R"
    assert main(["run", str(recipe), "--out", str(mine)]) == 0
    assert read_marker(mine)["kind"] == "run" and (mine / "config.yaml").exists()
    (mine / MARKER_NAME).unlink()
    (mine / "iter_0").mkdir()
    assert main(["run", str(recipe), "--out", str(mine)]) == 0  # legacy folder: accepted, marker added
    assert read_marker(mine)["kind"] == "run" and len(ran) == 2


def test_train_prm_never_writes_over_its_labels(tmp_path, policy, monkeypatch, capsys):
    labels = tmp_path / "L"
    labels.mkdir()
    (labels / "data-00000-of-00001.arrow").write_bytes(b"labels")
    _no_work(monkeypatch)
    for out in (labels, labels / "prm"):
        assert main(["train-prm", "--labels", str(labels), "--init", str(policy), "--out", str(out),
                     "--overwrite"]) == 2
        assert "the input --labels folder" in _last_line(capsys)
    assert (labels / "data-00000-of-00001.arrow").read_bytes() == b"labels"
    assert not (labels / "prm").exists()


def test_sft_never_replaces_its_own_policy(policy, monkeypatch, capsys):
    before = _snapshot(policy)
    _no_work(monkeypatch)
    assert main(["sft", "--policy", str(policy), "--out", str(policy), "--overwrite", "--max-steps", "1"]) == 2
    assert "is the input --policy folder" in _last_line(capsys)
    assert _snapshot(policy) == before


def test_run_with_the_policy_as_out_or_inside_it_is_refused(policy, tmp_path, monkeypatch, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("policy: nowhere\niterations: 1\n")
    before = _snapshot(policy)
    _no_work(monkeypatch)
    for out in (policy, policy / "run", policy.parent):
        assert main(["run", str(recipe), "--policy", str(policy), "--out", str(out)]) == 2
        assert "the input --policy folder" in _last_line(capsys)
    recipe.write_text(f"policy: {policy}\niterations: 1\n")  # the policy named only in the recipe
    for out in (policy, policy / "run"):
        assert main(["run", str(recipe), "--out", str(out)]) == 2
        assert f"the input --policy folder {str(policy)!r}" in _last_line(capsys)
    assert _snapshot(policy) == before
    assert not list(policy.glob("iter_*")) and not (policy / io.LOCK_NAME).exists()


# ---------------------------------------------------------------------- the rule, through every path
def test_overlap_sees_through_symlinks_and_dotdot(tmp_path):
    src = tmp_path / "policy"
    src.mkdir()
    (tmp_path / "link").symlink_to(src)
    for out in (tmp_path / "link", tmp_path / "x" / ".." / "policy", tmp_path / "link" / "sub"):
        with pytest.raises(OutputExistsError, match="the input policy"):
            check_overlap({"--out": out}, {"policy": src})
    check_overlap({"--out": tmp_path / "other"}, {"policy": src, "hub": "owner/model-on-the-hub"})


def test_staged_output_refuses_to_write_over_an_input(tmp_path):
    src = tmp_path / "policy"
    src.mkdir()
    (src / "config.json").write_text("{}")
    with pytest.raises(OutputExistsError, match="is the input policy_dir"):
        with StagedOutput(src, "policy", overwrite=True, inputs={"policy_dir": src}):
            pass
    assert (src / "config.json").read_text() == "{}"


def test_a_data_file_is_an_input_too(policy, tmp_path, monkeypatch, capsys):
    data = tmp_path / "d"
    data.mkdir()
    (data / "train.jsonl").write_text('{"question": "1+1?", "answer": "#### 2"}\n')
    _no_work(monkeypatch)
    assert main(["eval", "--policy", str(policy), "--task", "gsm8k", "--task-arg", f"source={data}",
                 "--out", str(data / "report.json")]) == 2
    assert "--task-arg source" in _last_line(capsys)


def test_an_output_file_the_library_did_not_write_is_never_replaced(policy, tmp_path, monkeypatch, capsys):
    notes = tmp_path / "notes.json"
    notes.write_text('{"my": "notes"}')
    _no_work(monkeypatch)
    for extra in ([], ["--overwrite"]):
        assert main(["eval", "--policy", str(policy), "--n", "2", "--out", str(notes), *extra]) == 2
        assert "did not write" in _last_line(capsys)
    assert notes.read_text() == '{"my": "notes"}'
    # the library's own report (marked, or from before the mark) is replaced by a rerun
    own = tmp_path / "own.json"
    own.write_text(json.dumps(owned_payload({"accuracy": 0.5}, "eval")))
    check_output_file(own, "eval")
    with pytest.raises(OutputExistsError, match="`roadmap fit` did not write"):
        check_output_file(own, "fit")
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"task": "arith", "method": "greedy", "accuracy": 0.5}))
    check_output_file(old, "eval", legacy_keys=("task", "method", "accuracy"))


def test_fit_never_replaces_a_users_fit_json(tmp_path, capsys):
    points = tmp_path / "p.json"
    points.write_text(json.dumps([{"compute": c, "accuracy": a} for c, a in ((1, .1), (10, .3), (100, .5), (1e3, .6))]))
    out = tmp_path / "fit"
    out.mkdir()
    (out / "fit.json").write_text("my own fit")
    assert main(["fit", str(points), "--out", str(out)]) == 2
    assert "fit.json" in _last_line(capsys) and (out / "fit.json").read_text() == "my own fit"
    (out / "fit.json").unlink()
    assert main(["fit", str(points), "--out", str(out)]) == 0
    assert main(["fit", str(points), "--out", str(out)]) == 0  # its own fit.json is replaced


def test_an_unwritable_out_fails_before_the_eval(policy, tmp_path, monkeypatch, capsys):
    _no_work(monkeypatch)
    real_touch = Path.touch

    def touch(self, *a, **k):  # a read-only folder (chmod does not stop root, so the refusal is simulated)
        if self.name.startswith(".o1-roadmap-probe"):
            raise PermissionError(13, "Permission denied", str(self))
        return real_touch(self, *a, **k)

    monkeypatch.setattr(Path, "touch", touch)
    assert main(["eval", "--policy", str(policy), "--n", "2", "--out", str(tmp_path / "ro" / "r.json")]) == 2
    line = _last_line(capsys)
    assert "cannot be written" in line and "Permission denied" in line
    assert not list(tmp_path.glob("**/.o1-roadmap-probe*"))


def test_claim_refuses_another_kind_and_a_garbled_marker(tmp_path):
    claim_output_dir(tmp_path / "r", "run")
    with pytest.raises(OutputExistsError, match="'run' output, not a 'bench' one"):
        claim_output_dir(tmp_path / "r", "bench")
    (tmp_path / "g").mkdir()
    (tmp_path / "g" / MARKER_NAME).write_text("garbage")
    with pytest.raises(OutputExistsError, match=MARKER_NAME):
        claim_output_dir(tmp_path / "g", "run")


# ---------------------------------------------------------------------- the run lock, through the CLI
@pytest.mark.parametrize("lock, named", [
    ({"pid": 1, "host": "another-host"}, "in use by process 1 on another-host"),
    ("{not json", "is unreadable"),
    ({"pid": os.getpid(), "host": __import__("socket").gethostname()}, f"in use by process {os.getpid()}"),
], ids=["another-host", "garbled", "this-process"])  # ids without the pid: pytest-xdist workers must collect alike
def test_a_held_or_garbled_lock_is_one_line(policy, tmp_path, monkeypatch, capsys, lock, named):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"policy: {policy}\niterations: 1\n")
    out = tmp_path / "run"
    out.mkdir()
    (out / io.LOCK_NAME).write_text(lock if isinstance(lock, str) else json.dumps(lock))
    monkeypatch.setattr(io.time, "sleep", lambda s: None)
    _no_work(monkeypatch)
    assert main(["run", str(recipe), "--out", str(out)]) == 2
    line = _last_line(capsys)
    assert line.startswith("roadmap run: error:") and named in line and io.LOCK_NAME in line
    assert (out / io.LOCK_NAME).exists()  # another's lock is never taken


# ---------------------------------------------------------------------- bugs look like bugs
def test_an_error_that_is_not_the_librarys_keeps_its_traceback_and_says_bug(tmp_path, monkeypatch):
    def bug(args):
        raise ValueError("an internal invariant broke")

    monkeypatch.setitem(cli.COMMANDS, "fit", bug)
    with pytest.raises(ValueError, match="internal invariant") as info:
        main(["fit", str(tmp_path)])
    assert any("this is a bug in o1-roadmap" in note for note in info.value.__notes__)


@pytest.mark.parametrize("command", [
    ["search", "--method", "bon", "--budget", "2", "--n", "2"],
    ["bench", "test-time", "--methods", "greedy", "--budgets", "1", "--seeds", "0", "--n", "2"],
])
def test_search_and_bench_refuse_a_users_folder_before_loading_a_model(command, tiny_dir, tmp_path, monkeypatch,
                                                                       capsys):
    user = tmp_path / "mine"
    user.mkdir()
    (user / "summary.json").write_text("my summary")
    monkeypatch.setattr("roadmap.app.cli._policy", lambda *a, **k: pytest.fail("a model was loaded"))
    assert main([*command, "--policy", str(tiny_dir), "--out", str(user), "--overwrite"]) == 2
    assert "did not write (summary.json)" in _last_line(capsys)
    assert (user / "summary.json").read_text() == "my summary" and sorted(os.listdir(user)) == ["summary.json"]


def test_a_search_folder_from_before_markers_is_resumed_and_then_marked(tmp_path):
    from roadmap.app.train_search import legacy_search_dir

    old = tmp_path / "search"
    (old / "shards").mkdir(parents=True)
    (old / "trees.jsonl").write_text("")
    claim_output_dir(old, "search", legacy=legacy_search_dir)
    assert read_marker(old)["kind"] == "search"
    (old / "notes.txt").write_text("mine")  # once marked, the folder is the library's: resumed as such
    claim_output_dir(old, "search", legacy=legacy_search_dir)
    (old / MARKER_NAME).unlink()
    with pytest.raises(OutputExistsError, match="notes.txt"):
        claim_output_dir(old, "search", legacy=legacy_search_dir)


def test_run_loop_itself_refuses_a_run_folder_inside_its_policy(policy, monkeypatch):
    from roadmap.app.loop import LoopConfig, run_loop

    _no_work(monkeypatch)
    config = LoopConfig(policy=str(policy), iterations=1)
    for out in (policy, policy / "run"):
        with pytest.raises(OutputExistsError, match="the input policy"):
            run_loop(config, out, say=lambda _: None)
    assert not (policy / "run").exists() and not (policy / io.LOCK_NAME).exists()


def test_quickstart_never_deletes_a_users_loop_folder(tmp_path, monkeypatch, capsys):
    from roadmap.app.quickstart import QuickstartConfig, run_quickstart

    user = tmp_path / "mine"
    (user / "loop").mkdir(parents=True)
    (user / "loop" / "thesis.tex").write_text("keep")
    with pytest.raises(OutputExistsError, match="thesis.tex"):  # the library refuses before its work
        run_quickstart(QuickstartConfig(out=str(user)), say=lambda s: None)
    monkeypatch.setattr("roadmap.app.quickstart.run_quickstart", lambda *a, **k: pytest.fail("the quickstart ran"))
    assert main(["quickstart", "--out", str(user)]) == 2
    assert "did not write (loop/thesis.tex)" in _last_line(capsys)
    assert (user / "loop" / "thesis.tex").read_text() == "keep"
