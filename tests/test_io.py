"""roadmap.core.io: atomic writes leave no partial file under the final name; tables line up."""

from __future__ import annotations

import json
import os

import pytest

from roadmap.core.io import atomic_write_text, format_table, replace_dir, save_figure, write_json


def test_atomic_write_creates_parents_and_leaves_no_temporary(tmp_path):
    path = atomic_write_text(tmp_path / "a" / "b.txt", "one")
    assert path.read_text() == "one"
    atomic_write_text(path, "two")
    assert path.read_text() == "two" and os.listdir(path.parent) == ["b.txt"]
    write_json(tmp_path / "x.json", {"k": [1, 2]})
    assert json.loads((tmp_path / "x.json").read_text()) == {"k": [1, 2]}


def test_a_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = atomic_write_text(tmp_path / "r.json", "old")

    def boom(src, dst):
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk gone"):
        atomic_write_text(path, "new")
    assert path.read_text() == "old"  # the final name never holds a partial write


def test_replace_dir_swaps_in_a_finished_folder_and_refuses_a_foreign_one(tmp_path):
    from roadmap.core.outputs import OutputExistsError, write_marker

    def staged(name: str, text: str):
        tmp = tmp_path / name
        tmp.mkdir()
        (tmp / "new.txt").write_text(text)
        write_marker(tmp, "labels")
        return tmp

    replace_dir(staged("a.tmp", "first"), tmp_path / "run")  # no old folder
    replace_dir(staged("b.tmp", "second"), tmp_path / "run")  # the library's own output: replaced
    assert (tmp_path / "run" / "new.txt").read_text() == "second" and not (tmp_path / "b.tmp").exists()
    user = tmp_path / "mine"
    user.mkdir()
    (user / "notes.txt").write_text("keep")
    with pytest.raises(OutputExistsError, match="mine"):
        replace_dir(staged("c.tmp", "third"), user)
    assert sorted(os.listdir(user)) == ["notes.txt"]


def test_save_figure_writes_the_png_atomically(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    path = save_figure(fig, tmp_path / "f.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and os.listdir(tmp_path) == ["f.png"]


def test_tables_plain_and_markdown():
    rows = [{"method": "mcts", "acc": 0.5, "ci": (0.25, 0.75)}, {"method": "bon", "acc": 1 / 3}]
    plain = format_table(rows, ["method", "acc", "ci"])
    assert plain.splitlines() == [
        "method  acc    ci            ",
        "------  -----  --------------",
        "mcts    0.500  [0.250, 0.750]",
        "bon     0.333",
    ]
    md = format_table(rows, ["method", "acc"], markdown=True)
    assert md.splitlines() == ["| method | acc   |", "| ------ | ----- |", "| mcts   | 0.500 |", "| bon    | 0.333 |"]
    assert format_table([], ["a"]).splitlines() == ["a", "-"]
