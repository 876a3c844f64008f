"""roadmap.core.distributed.ShardedJob: the resumable engine of the JSON-sharded phases (evaluation, labels).

A rerun reuses every finished shard and runs none again; a shard made with other settings is refused naming the
setting unless overwrite redoes it; a damaged shard file is run again, the others kept."""

from __future__ import annotations

import hashlib
import json

import pytest

from roadmap.core.distributed import ShardedJob, Workers
from roadmap.core.errors import StaleOutputError
from roadmap.core.types import Problem

CALLS: list[int] = []


def square_shard(resources, payload):
    """A shard function as the phases write one: module-level, JSON-able result."""
    start, values = payload
    CALLS.append(start)
    return {"squares": [v * v for v in values], "offset": resources.get("offset", 0)}


def _problems(n: int) -> list[Problem]:
    return [Problem(id=f"p{i}", question=str(i), answer=str(i * i)) for i in range(n)]


def _run(folder, base, problems, overwrite=False):
    job = ShardedJob(square_shard, base, folder=folder, overwrite=overwrite, desc="squares")
    return job.run(problems, 3, lambda start, part: (start, [int(p.question) for p in part]), Workers(),
                   local={"offset": 7}, extra=lambda start: {"seed": 100 + start}, progress=False)


def test_a_rerun_reuses_finished_shards_and_refuses_other_settings(tmp_path):
    CALLS.clear()
    problems = _problems(7)
    rows = _run(tmp_path, {"setting": 1}, problems)
    assert CALLS == [0, 3, 6]  # shards of 3, 3 and 1 problems, each run once
    assert [v for r in rows for v in r["squares"]] == [i * i for i in range(7)]
    assert [r["provenance"]["seed"] for r in rows] == [100, 103, 106] and rows[0]["offset"] == 7
    assert sorted(p.name for p in tmp_path.iterdir()) == ["00000.json", "00001.json", "00002.json"]

    CALLS.clear()
    assert _run(tmp_path, {"setting": 1}, problems) == rows and CALLS == []  # all reused, the same rows

    with pytest.raises(StaleOutputError, match="setting=1 on disk, 2 now"):
        _run(tmp_path, {"setting": 2}, problems)
    assert CALLS == []
    assert [v for r in _run(tmp_path, {"setting": 2}, problems, overwrite=True) for v in r["squares"]][-1] == 36
    assert CALLS == [0, 3, 6]


def test_the_shard_file_format_is_the_one_earlier_runs_wrote(tmp_path):
    """Pinned: a shard's provenance keys and problems' fingerprint, so evaluation and label shards written before
    ShardedJob (same keys, same sha256 of canonical JSON) still resume."""
    _run(tmp_path, {"task": "t", "method": "greedy"}, _problems(2))
    row = json.loads((tmp_path / "00000.json").read_text())
    row = row.get("payload", row)  # the sealed envelope, if any
    assert row["provenance"] == {"task": "t", "method": "greedy", "shard": 0, "start": 0, "seed": 100,
                                 "problems": "d34f4a95e0ae5d52"}
    canonical = '[["p0", "0", "0"], ["p1", "1", "1"]]'  # (id, question, answer) per problem, as JSON
    assert hashlib.sha256(canonical.encode()).hexdigest()[:16] == "d34f4a95e0ae5d52"
    assert row["squares"] == [0, 1]


def test_a_damaged_shard_is_run_again_and_the_others_kept(tmp_path):
    CALLS.clear()
    problems = _problems(7)
    rows = _run(tmp_path, {}, problems)
    (tmp_path / "00001.json").write_text(json.dumps({"provenance": {}, "squares": [0]})[:20])  # torn write
    CALLS.clear()
    assert _run(tmp_path, {}, problems) == rows and CALLS == [3]
