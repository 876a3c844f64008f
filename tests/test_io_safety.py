"""roadmap.core.io and roadmap.core.outputs under faults: atomic writes, owned output folders, run locks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

from roadmap.core import io
from roadmap.core.io import RunLockedError, atomic_write_text, clean_stale_temps, run_lock, save_figure, temp_sibling
from roadmap.core.outputs import (
    MARKER_NAME,
    OutputExistsError,
    StagedOutput,
    folder_hash,
    prepare_output,
    read_marker,
    replace_dir,
)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _library_output(folder, kind="policy", files=("config.json",)):
    with StagedOutput(folder, kind) as stage:
        for name in files:
            (stage.path / name).write_text(name)
        stage.finish()
    return folder


# ---------------------------------------------------------------------- atomic writes
@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_failed_atomic_write_leaves_no_tmp_and_the_old_file(tmp_path, monkeypatch, failing):
    target = tmp_path / "report.md"
    target.write_text("old")

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(io.os, failing, boom)
    with pytest.raises(OSError, match="No space left"):
        atomic_write_text(target, "new " * 1000)
    monkeypatch.undo()
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.md"]


def test_atomic_write_fsyncs_the_file_and_then_its_folder(tmp_path, monkeypatch):
    synced = []
    real = os.fsync

    def spy(fd):
        synced.append(os.path.isdir(f"/proc/self/fd/{fd}"))
        return real(fd)

    monkeypatch.setattr(io.os, "fsync", spy)
    atomic_write_text(tmp_path / "a.txt", "x")
    assert synced == [False, True]  # the file before the rename, the folder after it


def test_temporaries_are_unique_and_stale_ones_of_dead_pids_are_cleaned(tmp_path):
    target = tmp_path / "cells.jsonl"
    a, b = temp_sibling(target), temp_sibling(target)
    assert a != b and str(os.getpid()) in a.name and a.parent == tmp_path
    dead = tmp_path / f".cells.jsonl.tmp-{_dead_pid()}-0123abcd"
    dead.write_text("half a line")
    live = tmp_path / f".cells.jsonl.tmp-{os.getppid()}-0123abcd"  # a live process writing right now
    live.write_text("in progress")
    other = tmp_path / ".cells.jsonl.notes"  # not a library temporary
    other.write_text("mine")
    atomic_write_text(target, "{}\n")
    assert not dead.exists() and live.exists() and other.exists()
    assert clean_stale_temps(target) == []


def test_save_figure_uses_a_unique_temporary_and_cleans_it_on_failure(tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, _ = plt.subplots()
    save_figure(fig, tmp_path / "acc.png")
    assert (tmp_path / "acc.png").read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["acc.png"]

    fig, _ = plt.subplots()
    seen = []

    def torn(path, **kwargs):  # half a PNG, then the disk is full
        seen.append(path)
        open(path, "wb").write(b"\x89PNG half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fig, "savefig", torn)
    with pytest.raises(OSError, match="No space left"):
        save_figure(fig, tmp_path / "acc.png")
    assert str(os.getpid()) in seen[0].name and seen[0].name != "acc.tmp.png"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["acc.png"]
    assert (tmp_path / "acc.png").read_bytes()[:8] != b"\x89PNG hal"


# ---------------------------------------------------------------------- output folders
def test_a_users_folder_is_refused_even_with_overwrite(tmp_path):
    out = tmp_path / "thesis"
    out.mkdir()
    (out / "notes.txt").write_text("my notes")
    for overwrite in (False, True):
        with pytest.raises(OutputExistsError, match="notes.txt.*never deleted"):
            prepare_output(out, "policy", overwrite=overwrite)
    staged = tmp_path / "new"
    staged.mkdir()
    (staged / "config.json").write_text("{}")
    with pytest.raises(OutputExistsError, match="thesis"):
        replace_dir(staged, out, kind="policy", overwrite=True)
    assert (out / "notes.txt").read_text() == "my notes" and sorted(os.listdir(out)) == ["notes.txt"]


def test_missing_or_empty_folders_and_reruns_of_the_same_kind_are_fine(tmp_path):
    assert prepare_output(tmp_path / "nothing", "policy") == tmp_path / "nothing"
    (tmp_path / "empty").mkdir()
    prepare_output(tmp_path / "empty", "policy")
    out = _library_output(tmp_path / "p", files=("config.json", "model.safetensors"))
    marker = read_marker(out)
    assert marker["kind"] == "policy" and marker["files"] == ["config.json", "model.safetensors"]
    assert marker["completed"] is True and marker["library"] == "o1-roadmap"
    _library_output(out, files=("config.json",))  # a rerun replaces it whole
    assert sorted(os.listdir(out)) == [MARKER_NAME, "config.json"]


def test_another_kind_needs_overwrite_and_then_only_library_files_go(tmp_path):
    out = _library_output(tmp_path / "o", kind="prm", files=("reward_model.json",))
    with pytest.raises(OutputExistsError, match="'prm' output, not a 'policy' one.*overwrite"):
        _library_output(out, kind="policy")
    with StagedOutput(out, "policy", overwrite=True) as stage:
        (stage.path / "config.json").write_text("{}")
        stage.finish()
    assert read_marker(out)["kind"] == "policy" and sorted(os.listdir(out)) == [MARKER_NAME, "config.json"]
    # a file the user dropped into a library output: refused even with overwrite, and it survives
    (out / "notes.txt").write_text("mine")
    with pytest.raises(OutputExistsError, match="notes.txt"):
        with StagedOutput(out, "prm", overwrite=True) as stage:
            stage.finish()
    assert (out / "notes.txt").read_text() == "mine" and (out / "config.json").exists()


def test_a_file_dropped_in_during_the_run_survives_the_swap(tmp_path):
    out = _library_output(tmp_path / "p")
    with pytest.raises(OutputExistsError, match="late.txt"):
        with StagedOutput(out, "policy") as stage:
            (stage.path / "config.json").write_text("new")
            (out / "late.txt").write_text("written while training ran")
            stage.finish()
    assert (out / "late.txt").exists() and (out / "config.json").read_text() == "config.json"
    assert not list(tmp_path.glob(".p.*"))  # neither the staged nor the old folder is left


def test_a_failed_stage_leaves_nothing_and_the_old_output_whole(tmp_path):
    out = _library_output(tmp_path / "p")
    with pytest.raises(RuntimeError, match="killed"):
        with StagedOutput(out, "policy") as stage:
            (stage.path / "config.json").write_text("half")
            raise RuntimeError("killed")
    assert (out / "config.json").read_text() == "config.json" and not list(tmp_path.glob(".p.*"))


def test_stale_staging_folders_of_dead_runs_are_cleaned_on_the_next_start(tmp_path):
    dead = tmp_path / f".p.tmp-{_dead_pid()}-0badf00d"
    (dead / "trainer").mkdir(parents=True)
    old = tmp_path / f".p.old-{_dead_pid()}-0badf00d"
    old.mkdir()
    live = tmp_path / f".p.tmp-{os.getppid()}-0badf00d"
    live.mkdir()
    _library_output(tmp_path / "p")
    assert not dead.exists() and not old.exists() and live.exists()


def test_marker_records_inputs_and_an_incomplete_run(tmp_path):
    src = _library_output(tmp_path / "src", kind="tiny")
    with StagedOutput(tmp_path / "out", "policy", config={"lr": 1e-3}, inputs={"policy_dir": src}) as stage:
        stage.finish({"completed": False, "stopped_by": "time_cap", "steps": 3}, "sft_result.json")
    marker = read_marker(tmp_path / "out")
    assert marker["completed"] is False and marker["stopped_by"] == "time_cap" and marker["config"] == {"lr": 1e-3}
    assert marker["inputs"]["policy_dir"]["sha256"] == folder_hash(src)
    assert json.loads((tmp_path / "out" / "sft_result.json").read_text())["config"] == {"lr": 1e-3}
    (src / "config.json").write_text("changed")
    assert folder_hash(src) != marker["inputs"]["policy_dir"]["sha256"]


# ---------------------------------------------------------------------- run lock
def test_a_second_run_on_a_locked_folder_is_refused_naming_the_holder(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            from roadmap.core.io import run_lock
            with run_lock({str(tmp_path)!r}):
                print("locked", flush=True)
                time.sleep(60)
        """)],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunLockedError, match=f"in use by process {holder.pid}"):
            with run_lock(tmp_path):
                pass
    finally:
        holder.kill()
        holder.wait()
    # the holder died without releasing: its lock is stale and is taken over
    with run_lock(tmp_path) as lock:
        assert json.loads(lock.read_text())["pid"] == os.getpid()
        with pytest.raises(RunLockedError, match=str(os.getpid())):
            with run_lock(tmp_path):
                pass
    assert not lock.exists()


def test_a_lock_is_released_when_the_run_fails(tmp_path):
    with pytest.raises(ValueError):
        with run_lock(tmp_path):
            raise ValueError("phase failed")
    with run_lock(tmp_path):
        pass


def test_an_empty_lock_being_written_is_not_taken_over_at_once(tmp_path, monkeypatch):
    (tmp_path / io.LOCK_NAME).write_text("")  # created by O_EXCL, its pid not yet written
    monkeypatch.setattr(io.time, "sleep", lambda s: None)
    t0 = time.perf_counter()
    with pytest.raises(RunLockedError, match="is unreadable.*delete the lock file"):
        with run_lock(tmp_path):
            pass
    assert time.perf_counter() - t0 < 2


# ---------------------------------------------------------------------- shards read back (issue 26)
@pytest.mark.parametrize("damage", [b"", b'{"provenance": {"a": 1}, "rec', b"\xff\xfe", b"[1, 2]"])
def test_an_unreadable_json_shard_is_named_and_run_again(tmp_path, caplog, damage):
    from roadmap.core.distributed import finished_shard

    path = tmp_path / "00000.json"
    path.write_text(json.dumps({"provenance": {"a": 1}, "records": [1, 2]}))
    assert finished_shard(path, {"a": 1})["records"] == [1, 2]
    path.write_bytes(damage)
    assert finished_shard(path, {"a": 1}) is None
    assert "00000.json " in caplog.text and "that shard is run again" in caplog.text
