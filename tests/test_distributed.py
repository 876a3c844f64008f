"""Sharding on Ray (roadmap.core.distributed): 2 actors give the bytes of 1 worker for search and labels; a
killed worker or a worker that raises stops the run naming the shard, keeps every finished shard, and a rerun
redoes only the unfinished one; bad --ray-address / --workers / a missing Ray are refused naming the fix.

One local Ray session (2 CPUs) serves the whole module: Ray starts in seconds, not per test."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from roadmap.core.distributed import ShardError, Workers, ray_installed
from roadmap.core.errors import ConfigError
from roadmap.core.tasks import ArithTask

needs_ray = pytest.mark.skipif(not ray_installed(), reason="ray is not installed: pip install -e '.[dev,ray]'")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def one_thread_like_a_worker(monkeypatch):
    """Byte-identity holds at equal threads per worker (a 2-thread matmul sums in another order):
    the in-process ``--workers 1`` run gets the one thread each Ray actor has, whatever CI sets."""
    import torch

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)




class KillingTask(ArithTask):
    """Arith whose worker SIGKILLs itself (once: a flag file remembers) when it writes the prompt of ``victim``."""

    def __init__(self, victim: str, flag: str, action: str = "kill"):
        super().__init__()
        self.victim, self.flag, self.action = victim, flag, action

    def plain_prompt(self, problem):
        if problem.id == self.victim and not Path(self.flag).exists():
            Path(self.flag).write_text("done")
            if self.action == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            raise ValueError(f"scripted failure on problem {problem.id}")
        return super().plain_prompt(problem)


def _cli(*argv: str) -> int:
    from roadmap.app.cli import main

    return main(list(argv))


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*.json*"))
            if p.name != "summary.json" and not p.name.startswith(".")}


@needs_ray
def test_search_with_two_workers_gives_the_bytes_of_one(ray_session, tiny_dir, tmp_path):
    common = ["search", "--policy", str(tiny_dir), "--n", "4", "--shard-size", "1", "--method", "mcts",
              "--budget", "2", "--width", "2", "--max-new-tokens", "24", "--rollout-tokens", "16"]
    assert _cli(*common, "--out", str(tmp_path / "one"), "--workers", "1") == 0
    assert _cli(*common, "--out", str(tmp_path / "two"), "--workers", "2") == 0
    one, two = _files(tmp_path / "one"), _files(tmp_path / "two")
    assert len(one) == 5 and one == two  # 4 shards and trees.jsonl, byte for byte


@needs_ray
def test_label_with_two_workers_gives_the_labels_of_one(ray_session, tiny_dir, tmp_path):
    from rewards import load_labels

    common = ["label", "--policy", str(tiny_dir), "--n", "4", "--samples", "2", "--rollouts", "2",
              "--shard-size", "2", "--max-new-tokens", "24", "--rollout-tokens", "12"]
    assert _cli(*common, "--out", str(tmp_path / "one"), "--workers", "1") == 0
    assert _cli(*common, "--out", str(tmp_path / "two"), "--workers", "2") == 0
    one, two = load_labels(tmp_path / "one"), load_labels(tmp_path / "two")
    assert len(one) == 8 and one.to_dict() == two.to_dict()
    arrow = sorted((tmp_path / "one").glob("*.arrow"))
    assert arrow and [p.read_bytes() for p in arrow] == [(tmp_path / "two" / p.name).read_bytes() for p in arrow]
    assert not (tmp_path / ".one.shards").exists()  # the shards are removed once the label set is saved


def _search(task, tiny_dir, out, workers, problems):
    from rewards import VerifierScorer
    from roadmap.app.actors import ModelSpec, workers_for
    from roadmap.app.train_search import TrainSearchConfig, search_train
    from roadmap.core.backends import load_policy

    config = TrainSearchConfig(method="mcts", budget=2, width=2, shard_size=2)
    if workers == 1:
        policy, w = load_policy(tiny_dir, batch_size=32), None
    else:
        policy, w = None, workers_for(ModelSpec(task=task, policy=str(tiny_dir), batch_size=32), workers[0],
                                      retries=workers[1])
    return search_train(policy, task, problems, out, config, verifier=VerifierScorer(task), progress=False, workers=w)


@needs_ray
def test_a_killed_worker_loses_nothing_and_a_rerun_redoes_only_its_shard(ray_session, tiny_dir, tmp_path):
    problems = ArithTask().problems("train", n=4, seed=1)
    _search(ArithTask(), tiny_dir, tmp_path / "ref", 1, problems)
    task = KillingTask(problems[3].id, str(tmp_path / "killed.flag"))
    with pytest.raises(ShardError, match=r"shard 1: its worker died.*finished before it are kept"):
        _search(task, tiny_dir, tmp_path / "run", (2, 0), problems)
    assert (tmp_path / "run/shards/00000.json").read_bytes() == (tmp_path / "ref/shards/00000.json").read_bytes()
    assert not (tmp_path / "run/shards/00001.json").exists()
    again = _search(task, tiny_dir, tmp_path / "run", (2, 0), problems)
    assert again["searched_now"] == 2  # shard 1 only
    assert _files(tmp_path / "run") == _files(tmp_path / "ref")

    # with a retry the shard of the dead worker goes to a fresh one and the run finishes in one go
    task = KillingTask(problems[0].id, str(tmp_path / "killed-again.flag"))
    done = _search(task, tiny_dir, tmp_path / "retried", (2, 1), problems)
    assert done["searched_now"] == 4 and _files(tmp_path / "retried") == _files(tmp_path / "ref")


@needs_ray
def test_a_worker_that_raises_names_the_shard_and_the_cause(ray_session, tiny_dir, tmp_path):
    problems = ArithTask().problems("train", n=4, seed=1)
    task = KillingTask(problems[2].id, str(tmp_path / "raised.flag"), action="raise")
    with pytest.raises(ShardError, match=rf"shard 1 failed on a worker: ValueError: scripted failure on problem "
                                         rf"{problems[2].id}"):
        _search(task, tiny_dir, tmp_path / "run", (2, 0), problems)
    assert (tmp_path / "run/shards/00000.json").exists()  # the other shard finished and was kept


@needs_ray
def test_unreachable_ray_address_is_refused_naming_it(ray_session, tiny_dir, tmp_path, capsys):
    code = _cli("search", "--policy", str(tiny_dir), "--out", str(tmp_path / "s"), "--n", "2",
                "--ray-address", "127.0.0.1:9")
    err = capsys.readouterr().err
    assert code == 2 and "--ray-address '127.0.0.1:9' is unreachable" in err and "ray start --head" in err
    assert not (tmp_path / "s" / "shards" / "00000.json").exists()


def test_workers_zero_is_refused_by_the_parser(tiny_dir, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        _cli("label", "--policy", str(tiny_dir), "--out", str(tmp_path / "l"), "--workers", "0")
    assert exit_.value.code == 2 and "--workers: '0' is not an integer >= 1" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="--workers 0 must be an integer >= 1"):
        Workers(n=0)


def test_workers_without_ray_say_how_to_install_it(monkeypatch):
    import roadmap.core.distributed as distributed

    monkeypatch.setattr(distributed, "ray_installed", lambda: False)
    with pytest.raises(ConfigError, match=r"--workers 2 needs Ray, which is not installed; install it with pip install"):
        Workers(n=2, load=dict)
    assert not Workers(n=1).remote  # one worker runs in this process, Ray or not


def _eval(task, tiny_dir, shards, problems, **kwargs):
    from roadmap.app.actors import ModelSpec, workers_for
    from roadmap.app.evaluate import evaluate_sharded
    from roadmap.core.io import folder_fingerprint
    from roadmap.core.lengths import Lengths

    workers = workers_for(ModelSpec(task=task, policy=str(tiny_dir), batch_size=2), 2)
    return evaluate_sharded(workers, task, problems, method="greedy", batch_size=2, progress=False, shards=shards,
                            lengths=kwargs.pop("lengths", Lengths(max_solution_tokens=24)),
                            inputs={"policy": folder_fingerprint(tiny_dir)}, **kwargs)


@needs_ray
def test_a_killed_eval_redoes_only_its_unfinished_shard_and_reports_the_same(ray_session, tiny_dir, tmp_path):
    import json

    from roadmap.app.evaluate import eval_shards_dir
    from roadmap.core.errors import StaleOutputError
    from roadmap.core.lengths import Lengths

    report = tmp_path / "ref.json"
    assert _cli("eval", "--policy", str(tiny_dir), "--n", "4", "--batch-size", "2", "--max-new-tokens", "24",
                "--workers", "2", "--out", str(report)) == 0
    ref = json.loads(report.read_text())
    assert ref["n"] == 4 and not eval_shards_dir(report).exists()  # removed once the report holds every shard

    problems = ArithTask().problems("test", n=4, seed=0)
    shards = eval_shards_dir(tmp_path / "run.json")
    task = KillingTask(problems[3].id, str(tmp_path / "killed.flag"))
    with pytest.raises(ShardError, match=r"shard 1: its worker died"):
        _eval(task, tiny_dir, shards, problems)
    assert sorted(p.name for p in shards.iterdir()) == ["00000.json"]  # written atomically: no temporary left
    first = (shards / "00000.json").stat().st_mtime_ns
    again = _eval(task, tiny_dir, shards, problems)
    assert (shards / "00000.json").stat().st_mtime_ns == first, "a finished shard was recomputed"
    assert (shards / "00001.json").exists()
    assert again.records == ref["records"] and again.accuracy == ref["accuracy"] and again.usage == ref["usage"]

    # other settings on the same shards are refused before any work, naming the setting; overwrite redoes them
    with pytest.raises(StaleOutputError, match=r"00000.json was made with other settings: lengths="):
        _eval(ArithTask(), tiny_dir, shards, problems, lengths=Lengths(max_solution_tokens=16))
    redone = _eval(ArithTask(), tiny_dir, shards, problems, lengths=Lengths(max_solution_tokens=16), overwrite=True)
    assert redone.n == 4 and (shards / "00000.json").stat().st_mtime_ns != first


@needs_ray
def test_a_budget_forced_eval_on_workers_is_refused_not_run_without_its_budget(ray_session, tiny_dir, tmp_path, capsys):
    code = _cli("eval", "--policy", str(tiny_dir), "--n", "2", "--workers", "2", "--thinking-budget", "8",
                "--out", str(tmp_path / "e.json"))
    assert code == 2 and "--thinking-budget 8 runs in one process" in capsys.readouterr().err
    assert not (tmp_path / "e.json").exists()
