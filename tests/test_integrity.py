"""roadmap.core.integrity: what the library reads back is checked against what it wrote (issue 26, item 2).

Every reader of the library's own resumable files (eval and label shards, search shards, bench cells, the
loop's phase markers, the recipe as run) names an emptied, cut or garbled file in a warning and redoes its
work; the results equal those of an untouched run. Garbles that stay valid JSON are the case a parser alone
misses: the seals catch them.
"""

from __future__ import annotations

import json

import pytest
from fakes import BanditPolicy, BanditTask, PathScorer

from roadmap.core.integrity import (
    damage,
    digest,
    read_sealed_json,
    read_sealed_line,
    read_sealed_text,
    seal,
    sealed_line,
    sealed_text,
    write_sealed_json,
)


def _garble(text: str) -> str:
    """One digit changed: the file stays valid JSON (or YAML), so only a digest can tell."""
    i = next(i for i, ch in enumerate(text) if ch.isdigit())
    return text[:i] + str((int(text[i]) + 1) % 10) + text[i + 1:]


def test_digest_and_damage_name_each_kind_of_damage(tmp_path):
    path = tmp_path / "f.jsonl"
    path.write_text('{"a": 1}\n{"a": 2}\n')
    record = digest(path)
    assert record == digest(path.read_bytes()) and damage(path, record) is None
    path.write_text('{"a": 1}\n')
    assert damage(path, record) == "is truncated (9 of 18 bytes)"
    path.write_bytes(b"")
    assert damage(path, record) == "is empty (0 of 18 bytes)"
    path.write_text('{"a": 1}\n{"a": 3}\n')
    assert "garbled" in damage(path, record)
    path.unlink()
    assert damage(path, record) == "is missing"


def test_seals_catch_a_changed_value_and_accept_files_written_before_seals(tmp_path):
    payload = {"records": [1, 2], "usage": {"tokens": 12}}
    assert read_sealed_line(sealed_line(payload)) == (payload, None)
    garbled = _garble(sealed_line(payload))
    assert read_sealed_line(garbled)[0] is None and "sha256" in read_sealed_line(garbled)[1]
    assert read_sealed_line(json.dumps(payload)) == (payload, None)  # unsealed: written by an older version
    with pytest.raises(ValueError, match="already has"):
        seal({"sha256": "x"})
    path = tmp_path / "s.json"
    write_sealed_json(path, payload)
    assert read_sealed_json(path) == (payload, None)
    path.write_text(path.read_text()[:20])
    assert read_sealed_json(path)[0] is None and "truncated or garbled" in read_sealed_json(path)[1]
    text = tmp_path / "config.yaml"
    text.write_text(sealed_text("seed: 12\ntask: arith\n"))
    assert read_sealed_text(text) == ("seed: 12\ntask: arith\n", None)
    whole = text.read_text()
    head, body = whole.split("\n", 1)
    for bad in (whole[:-5], whole[:6], head + "\n" + _garble(body), ""):
        text.write_text(bad)
        assert read_sealed_text(text)[0] is None, bad
    text.write_text("seed: 12\n")  # no header: a run folder from before seals
    assert read_sealed_text(text) == ("seed: 12\n", None)


@pytest.mark.parametrize("how", ["empty", "truncate", "garble"])
def test_a_damaged_json_shard_is_named_and_run_again(tmp_path, caplog, how):
    from roadmap.core.distributed import finished_shard

    path = tmp_path / "00000.json"
    write_sealed_json(path, {"provenance": {"a": 1}, "records": [10, 20]})
    assert finished_shard(path, {"a": 1}) == {"provenance": {"a": 1}, "records": [10, 20]}
    text = path.read_text()
    path.write_text({"empty": "", "truncate": text[: len(text) // 2], "garble": _garble(text)}[how])
    assert finished_shard(path, {"a": 1}) is None
    assert f"{path} " in caplog.text and "that shard is run again" in caplog.text


@pytest.mark.parametrize("how", ["empty", "cut", "garble"])
def test_a_damaged_search_shard_is_searched_again_to_the_same_trees(tmp_path, caplog, how):
    from roadmap.app.train_search import TrainSearchConfig, search_train

    task, policy, scorer = BanditTask("LLL"), BanditPolicy(depth=3), PathScorer("LLL")
    problems = [task.problem(i) for i in range(4)]
    config = TrainSearchConfig(method="bon", budget=2, shard_size=2)

    def run(out):
        return search_train(policy, task, problems, out, config, scorer=scorer, progress=False)

    clean = run(tmp_path / "clean")
    out = tmp_path / "damaged"
    run(out)
    shard = out / "shards" / "00001.json"
    text = shard.read_text()
    shard.write_text({"empty": "", "cut": text[: len(text) // 2], "garble": _garble(text)}[how])
    again = run(out)
    assert again["searched_now"] == 2, "only the damaged shard is searched again"
    assert f"{shard} " in caplog.text and "that shard is run again" in caplog.text
    assert (out / "trees.jsonl").read_bytes() == (tmp_path / "clean" / "trees.jsonl").read_bytes()
    assert {k: v for k, v in again.items() if k not in ("wall_seconds", "searched_now")} == \
        {k: v for k, v in clean.items() if k not in ("wall_seconds", "searched_now")}


def test_a_damaged_phase_marker_reruns_the_phase(tmp_path, caplog):
    from roadmap.app.loop import run_phase

    calls = []

    def phase():
        calls.append(1)
        return {"accuracy": 0.25, "n": 8}

    first = run_phase(tmp_path, 1, "eval", phase, lambda _: None)
    marker = tmp_path / "iter_1" / "eval.done.json"
    assert run_phase(tmp_path, 1, "eval", phase, lambda _: None) == first and len(calls) == 1
    for bad in ("", marker.read_text()[:15], _garble(marker.read_text())):
        marker.write_text(bad)
        again = run_phase(tmp_path, 1, "eval", phase, lambda _: None)
        assert {k: v for k, v in again.items() if k != "phase_seconds"} == {"accuracy": 0.25, "n": 8}
        assert f"{marker} " in caplog.text and "the phase is run again" in caplog.text
        caplog.clear()
    assert len(calls) == 4


def test_a_damaged_recipe_as_run_is_rewritten_before_any_phase_and_refused_after(tmp_path, caplog):
    from roadmap.app.loop import RecipeError, saved_recipe

    saved = tmp_path / "config.yaml"
    saved.write_text(sealed_text("seed: 12\n"))
    assert saved_recipe(tmp_path) == "seed: 12\n"
    saved.write_text(saved.read_text()[:-3])
    assert saved_recipe(tmp_path) is None and "no phase had finished" in caplog.text
    (tmp_path / "iter_0").mkdir()
    (tmp_path / "iter_0" / "eval.done.json").write_text("{}")
    with pytest.raises(RecipeError, match=r"config.yaml does not match .*restore that file .*new --out"):
        saved_recipe(tmp_path)


def test_a_damaged_output_marker_is_named_and_never_guessed_at(tmp_path, caplog):
    from roadmap.app.loop import legacy_run_dir
    from roadmap.core.outputs import MARKER_NAME, OutputExistsError, StagedOutput, claim_output_dir, prepare_output

    with StagedOutput(tmp_path / "policy", "policy") as stage:
        (stage.path / "config.json").write_text("{}")
        stage.finish()
    (tmp_path / "policy" / MARKER_NAME).write_text('{"kind": "pol')
    with pytest.raises(OutputExistsError, match=r"'.*policy' has a damaged marker .*none is deleted"):
        prepare_output(tmp_path / "policy", "policy", overwrite=True)
    # a run folder whose files are only a run's: the marker is written again, with a warning naming it
    run = tmp_path / "run"
    claim_output_dir(run, "run", legacy=legacy_run_dir)
    (run / "config.yaml").write_text(sealed_text("policy: P\ntask: arith\niterations: 1\n"))
    (run / "iter_0").mkdir()
    (run / MARKER_NAME).write_text("")
    claim_output_dir(run, "run", legacy=legacy_run_dir)
    assert f"{run / MARKER_NAME} is damaged" in caplog.text
    assert json.loads((run / MARKER_NAME).read_text())["kind"] == "run"
    (run / MARKER_NAME).write_text("")
    (run / "mine.txt").write_text("the user's")
    with pytest.raises(OutputExistsError, match="has a damaged marker .*not only what `roadmap run` writes"):
        claim_output_dir(run, "run", legacy=legacy_run_dir)


def test_a_garbled_label_shard_is_relabelled_to_the_untouched_labels(tiny_policy, arith_task, tmp_path, caplog,
                                                                        monkeypatch):
    from rewards import LabelConfig, label_problems
    from rewards import label_shards as ls
    from roadmap.core.lengths import Lengths

    problems = arith_task.problems("train", n=2, seed=4)
    kwargs = dict(samples=2, config=LabelConfig(rollouts=2, lengths=Lengths(max_solution_tokens=16)), shard_size=1,
                  policy=tiny_policy, progress=False)
    clean, _ = label_problems(arith_task, problems, tmp_path / "clean", **kwargs)
    monkeypatch.setattr(ls.shutil, "rmtree", lambda *a, **k: None)  # keep the shards, as a killed run does
    label_problems(arith_task, problems, tmp_path / "labels", **kwargs)
    monkeypatch.undo()
    shard = ls.shards_dir(tmp_path / "labels") / "00001.json"
    shard.write_text(_garble(shard.read_text()))
    again, _ = label_problems(arith_task, problems, tmp_path / "labels", **kwargs)
    assert f"{shard} does not match the sha256" in caplog.text and "that shard is run again" in caplog.text
    assert again.to_dict() == clean.to_dict()
