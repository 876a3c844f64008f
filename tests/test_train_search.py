"""Train-time search on a real (tiny, random) HFPolicy: trees on disk, resume by shard, determinism, and
shards of other settings refused."""

from __future__ import annotations

import json

import pytest
from fakes import BanditPolicy, BanditTask, PathScorer

from rewards import VerifierScorer
from roadmap.app.train_search import TrainSearchConfig, search_train
from roadmap.core import HFPolicy
from roadmap.core.errors import StaleOutputError
from roadmap.core.integrity import read_sealed_json, write_sealed_json
from roadmap.core.types import Tree
from search import BeamConfig, MCTSConfig, beam_search, mcts
from search.trees import read_trees, row_result, trees_dataset


def test_search_train_writes_trees_and_resumes_by_shard(tiny_dir, arith_task, tmp_path):
    policy = HFPolicy.from_pretrained(tiny_dir, batch_size=32)
    problems = arith_task.problems("train", n=5, seed=3)
    config = TrainSearchConfig(method="mcts", budget=4, width=2, shard_size=2, seed=0)
    verifier = VerifierScorer(arith_task)
    summary = search_train(policy, arith_task, problems, tmp_path, config, verifier=verifier, progress=False)
    assert summary["problems"] == 5 and summary["searched_now"] == 5
    rows = read_trees(tmp_path / "trees.jsonl")
    assert [r["problem_id"] for r in rows] == [p.id for p in problems]
    for row in rows:
        tree = Tree.from_dict(row["tree"])
        assert len(tree.nodes) > 1 and tree.nodes[0].visits >= 2
        assert len(row["candidate_correct"]) == len(row["candidates"])
        assert row_result(row).problem_id == row["problem_id"]
    ds = trees_dataset(rows)
    assert len(ds) == 5 and Tree.from_dict(json.loads(ds[0]["tree"])).problem_id == problems[0].id

    # a killed run: shard 1 and the joined file are missing; only shard 1 is searched again
    (tmp_path / "shards" / "00001.json").unlink()
    (tmp_path / "trees.jsonl").unlink()
    again = search_train(policy, arith_task, problems, tmp_path, config, verifier=verifier, progress=False)
    assert again["searched_now"] == 2
    assert [r["problem_id"] for r in read_trees(tmp_path / "trees.jsonl")] == [p.id for p in problems]

    with pytest.raises(ValueError, match="needs a scorer or a verifier"):
        search_train(policy, arith_task, problems, tmp_path / "x", TrainSearchConfig(method="beam"), progress=False)
    with pytest.raises(FileNotFoundError, match="not a trees file"):
        read_trees(tmp_path / "nope.jsonl")


def test_same_seed_gives_same_trees_with_hf_policy(tiny_dir, arith_task):
    """Determinism on the real model: two fresh policies, the same seed, identical trees."""
    problems = arith_task.problems("test", n=3, seed=5)
    verifier = VerifierScorer(arith_task)

    def run(seed):
        policy = HFPolicy.from_pretrained(tiny_dir, batch_size=32)
        beams = beam_search(policy, arith_task, problems, verifier, BeamConfig(n=4, width=2, seed=seed))
        trees = mcts(policy, arith_task, problems, None, MCTSConfig(simulations=3, k=2, evaluation="rollout",
                                                                     seed=seed), verifier=verifier)
        return [r.to_dict() for r in beams + trees]

    first, second, other = run(0), run(0), run(1)
    assert first == second
    assert first != other


def test_search_train_refuses_shards_of_other_settings(tmp_path):
    task, policy, scorer = BanditTask("LLL"), BanditPolicy(depth=3), PathScorer("LLL")
    problems = [task.problem(i) for i in range(3)]

    def run(overwrite=False, inputs=None, **cfg):
        config = TrainSearchConfig(**{"method": "bon", "budget": 2, "shard_size": 2, **cfg})
        return search_train(policy, task, problems, tmp_path, config, scorer=scorer, progress=False,
                            inputs=inputs or {"policy": "abc"}, overwrite=overwrite)

    assert run()["searched_now"] == 3
    shard, why = read_sealed_json(tmp_path / "shards" / "00000.json")
    record = shard["provenance"]
    assert why is None and record["budget"] == 2 and record["policy"] == "abc" and record["start"] == 0
    assert [r["problem_id"] for r in shard["rows"]] == [p.id for p in problems[:2]]
    assert run()["searched_now"] == 0, "a matching rerun reuses every shard"
    calls = policy.calls
    with pytest.raises(StaleOutputError, match=r"00000.json was made with other settings: budget=2 on disk, 4 now"):
        run(budget=4)
    with pytest.raises(StaleOutputError, match=r"policy='abc' on disk, 'other' now"):
        run(inputs={"policy": "other"})
    assert policy.calls == calls, "refused before any search"
    assert run(budget=4, overwrite=True)["searched_now"] == 3
    # a shard from an older version (no provenance in it) is not trusted either
    old = tmp_path / "shards" / "00001.json"
    write_sealed_json(old, {"rows": read_sealed_json(old)[0]["rows"]})
    with pytest.raises(StaleOutputError, match="00001.json records no provenance"):
        run(budget=4)


def test_shards_of_the_old_layout_are_named_kept_and_searched_again(tmp_path, caplog):
    task, policy, scorer = BanditTask("LLL"), BanditPolicy(depth=3), PathScorer("LLL")
    problems = [task.problem(i) for i in range(3)]
    shards = tmp_path / "shards"
    shards.mkdir()
    (shards / "00000.jsonl").write_text("{}\n")  # NNNNN.jsonl beside NNNNN.provenance.json: before 2026-12-07
    (shards / "00000.provenance.json").write_text("{}")
    config = TrainSearchConfig(method="bon", budget=2, shard_size=2)
    summary = search_train(policy, task, problems, tmp_path, config, scorer=scorer, progress=False)
    assert summary["searched_now"] == 3 and "1 shard(s) in the layout before 2026-12-07" in caplog.text
    assert (shards / "00000.jsonl").read_text() == "{}\n", "kept, not deleted"


@pytest.mark.parametrize("damage", [b"", b'{"problem_id": "x", "tre', b"\xff\xfe not utf-8\n"])
def test_a_damaged_shard_is_named_and_searched_again_not_dropped(tmp_path, caplog, damage):
    task, policy, scorer = BanditTask("LLL"), BanditPolicy(depth=3), PathScorer("LLL")
    problems = [task.problem(i) for i in range(3)]
    config = TrainSearchConfig(method="bon", budget=2, shard_size=2)

    def run():
        return search_train(policy, task, problems, tmp_path, config, scorer=scorer, progress=False)

    first = run()
    (tmp_path / "shards" / "00000.json").write_bytes(damage)  # emptied, cut or garbled after it was written
    again = run()
    assert again["searched_now"] == 2 and again["problems"] == first["problems"] == 3
    assert [r["problem_id"] for r in read_trees(tmp_path / "trees.jsonl")] == [p.id for p in problems]
    assert "00000.json" in caplog.text and "run again" in caplog.text


def test_a_garbled_trees_file_is_named():
    import tempfile
    from pathlib import Path

    from roadmap.core.errors import DataError

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "trees.jsonl"
        path.write_bytes(b'{"a": 1}\n\xff\xfe\n')
        with pytest.raises(DataError, match=r"trees.jsonl is not UTF-8 text"):
            read_trees(path)


def test_verified_steps_right_counts_answer_verified_candidates_whose_errors_cancel_as_unsound(arith_task):
    from roadmap.app.train_search import verified_steps_right

    row = {"problem_id": "p", "question": "72+49-18-84", "reference": "19",
           "candidates": ["72+49=121\n121-18=103\n103-84=19\nAnswer: 19",   # sound
                          "72+49=122\n122-18=103\n103-84=19\nAnswer: 19",   # two slips that cancel: right answer
                          "72+49=121\n121-18=103\n103-84=20\nAnswer: 20"],  # wrong answer: not verified
           "candidate_correct": [True, True, False]}
    assert verified_steps_right(arith_task, [row]) == 0.5
    assert verified_steps_right(arith_task, [{**row, "candidate_correct": [False] * 3}]) is None
    assert verified_steps_right(BanditTask("LLL"), [row]) is None  # a task without a step checker
