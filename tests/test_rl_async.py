"""learning.rl_async: the sampler and the learner as two Ray actors at once, with a tiny model and fake rewards.

Samples past max_lag are never trained on; the sampler takes up each new version of the weights for the next
batch it samples; a dead sampler is restarted and samples its lost batch again (the run ends with the weights of
an unbroken run), or, its restarts spent, the run stops naming it and a rerun resumes from the checkpoint
without sampling a finished step again; so does a run whose learner was SIGKILLed; bad settings are refused
naming the key.

One local Ray session (2 CPUs: one for each role) serves the whole module."""

from __future__ import annotations

import os
import signal
import zlib
from pathlib import Path

import pytest

from learning.rl import RLConfig
from learning.rl_loop import run_rl
from roadmap.core import Lengths
from roadmap.core.distributed import ray_installed

needs_ray = pytest.mark.skipif(not ray_installed(), reason="ray is not installed: pip install -e '.[dev,ray]'")

ROOT = Path(__file__).resolve().parents[1]




class CountingReward:
    """A verifier fake: 1 or 0 by a hash of the completion, so groups have variance and the weights move.

    Every call (one per sampled batch, in the sampler's process) appends a line to ``calls``; call
    number ``die_at`` kills its process as SIGKILL would, once (the file ``flag`` remembers)."""

    __name__ = "counting"

    def __init__(self, calls: Path, die_at: int | None = None, flag: Path | None = None) -> None:
        self.calls, self.die_at, self.flag = calls, die_at, flag

    def __call__(self, prompts, completions, **kwargs):
        done = len(self.calls.read_text().splitlines()) if self.calls.exists() else 0
        if self.die_at == done + 1 and not self.flag.exists():
            self.flag.write_text("died")
            os.kill(os.getpid(), signal.SIGKILL)
        with self.calls.open("a") as f:
            f.write("call\n")
        return [float(zlib.crc32(c.encode()) % 2) for c in completions]


class LearnerKillingReward(CountingReward):
    """``CountingReward`` that, on call ``kill_at``, SIGKILLs the learner actor's process (the title Ray gives
    it names its class), once; the sampler itself lives on."""

    def __init__(self, calls: Path, kill_at: int, flag: Path) -> None:
        super().__init__(calls)
        self.kill_at, self.flag = kill_at, flag

    def __call__(self, prompts, completions, **kwargs):
        done = len(self.calls.read_text().splitlines()) if self.calls.exists() else 0
        if self.kill_at == done + 1 and not self.flag.exists():
            self.flag.write_text("killed")
            for proc in Path("/proc").glob("[0-9]*"):
                try:
                    title = (proc / "cmdline").read_bytes()
                except OSError:
                    continue
                if title.startswith(b"ray::LearnerActor"):
                    os.kill(int(proc.name), signal.SIGKILL)
        return super().__call__(prompts, completions, **kwargs)


def _config(**overrides) -> RLConfig:
    base = dict(loss_type="cispo", num_generations=4, prompts_per_step=2, max_steps=4, max_lag=1, async_sampler=True,
                learning_rate=1e-2, lengths=Lengths(rl_completion_tokens=8))
    return RLConfig(**{**base, **overrides})


def _run(tiny_dir, arith_task, config, reward, checkpoint_dir=None):
    from roadmap.core.precision import load_trainable_lm

    tok, model, _ = load_trainable_lm(tiny_dir)
    log = run_rl(model, tok, arith_task, arith_task.problems("train", n=8, seed=0), config, [reward], [1.0],
                 checkpoint_dir=checkpoint_dir)
    return log, float(sum(p.detach().double().sum() for p in model.parameters()))


@pytest.fixture(scope="module")
def unbroken(ray_session, tiny_dir, arith_task, tmp_path_factory):
    """A 4-step async run that nothing interrupts: the reference for the restarted and the resumed runs."""
    tmp = tmp_path_factory.mktemp("unbroken")
    return _run(tiny_dir, arith_task, _config(), CountingReward(tmp / "calls"), tmp / "ckpt")


@needs_ray
def test_the_sampler_picks_up_new_weights_within_one_version(unbroken):
    log, _ = unbroken
    steps = log["steps_log"]
    assert [s["step"] for s in steps] == [1, 2, 3, 4] and all(s["groups"] == 2 for s in steps)
    # batch s+1 is asked for before step s is learned; it samples with the newest weights sent, one version behind
    assert [s["sampler_version"] for s in steps] == [0, 0, 1, 2]
    assert [s["lag"] for s in steps] == [0, 1, 1, 1]
    # and they are those weights, not only their number: the sampler's weights equal the learner's after that step
    learner_after = [s["checksum"] for s in steps]
    assert len(set(learner_after)) == 4  # the weights moved at every step (else the comparison proves nothing)
    assert steps[0]["sampler_checksum"] == steps[1]["sampler_checksum"] != learner_after[0]
    assert steps[2]["sampler_checksum"] == learner_after[0] and steps[3]["sampler_checksum"] == learner_after[1]
    assert len({s["sampler_pid"] for s in steps}) == 1 and log["sampler_restarts"] == 0


@needs_ray
def test_samples_beyond_max_lag_are_dropped_counted_and_never_trained_on(ray_session, tiny_dir, arith_task, tmp_path):
    # weights reach the sampler every 3 steps only, so batches 3 and 4 were sampled 2 versions behind
    log, _ = _run(tiny_dir, arith_task, _config(max_steps=6, weight_sync_every=3), CountingReward(tmp_path / "c"))
    steps = log["steps_log"]
    assert [s["groups"] for s in steps] == [2, 2, 0, 0, 2, 2]
    assert log["stale_dropped"] == 4 and [s["stale_dropped"] for s in steps] == [0, 0, 2, 4, 4, 4]
    trained = [s for s in steps if s["groups"]]
    # what the learner's own process trained on: never a group more than max_lag versions behind it
    assert max(s["learner_version"] - s["oldest_version"] for s in trained) == 1
    # a batch dropped whole sends the weights at once: the sampler catches up
    assert [s["sampler_version"] for s in steps] == [0, 0, 0, 0, 2, 2]


@needs_ray
def test_a_dead_sampler_is_restarted_and_samples_its_lost_batch_again(unbroken, ray_session, tiny_dir, arith_task,
                                                                      tmp_path):
    reward = CountingReward(tmp_path / "calls", die_at=2, flag=tmp_path / "flag")
    log, final = _run(tiny_dir, arith_task, _config(sampler_restarts=1), reward)
    assert (tmp_path / "flag").exists() and log["sampler_restarts"] == 1
    pids = [s["sampler_pid"] for s in log["steps_log"]]
    assert pids[0] != pids[1] and len(set(pids)) == 2  # batch 2 came from the restarted process
    # the restarted sampler got the weights of the batch it lost, so the run is the unbroken one's
    assert final == unbroken[1]
    assert [s["reward"] for s in log["steps_log"]] == [s["reward"] for s in unbroken[0]["steps_log"]]


@needs_ray
def test_a_sampler_that_dies_past_its_restarts_stops_the_run_and_a_rerun_resumes(unbroken, ray_session, tiny_dir,
                                                                                 arith_task, tmp_path):
    from learning.rl_async import RLActorError

    reward = CountingReward(tmp_path / "calls", die_at=3, flag=tmp_path / "flag")
    config = _config(sampler_restarts=0)
    with pytest.raises(RLActorError, match=r"the sampler actor died sampling step 3 .*sampler_restarts=0 are spent; "
                                           r"the checkpoint of step 2 .* is kept, rerun to resume from it"):
        _run(tiny_dir, arith_task, config, reward, tmp_path / "ckpt")
    assert len((tmp_path / "calls").read_text().splitlines()) == 2  # batches 1 and 2 were sampled
    log, final = _run(tiny_dir, arith_task, config, reward, tmp_path / "ckpt")
    assert [s["step"] for s in log["steps_log"]] == [1, 2, 3, 4]
    assert len((tmp_path / "calls").read_text().splitlines()) == 4  # only batches 3 and 4 sampled again
    assert final == unbroken[1]  # the resumed run ends where the unbroken one did


@needs_ray
def test_a_killed_learner_stops_the_run_naming_it_and_a_rerun_resumes(unbroken, ray_session, tiny_dir, arith_task,
                                                                       tmp_path):
    import re

    from learning.rl_async import RLActorError

    reward = LearnerKillingReward(tmp_path / "calls", kill_at=3, flag=tmp_path / "flag")
    with pytest.raises(RLActorError, match=r"the learner actor died in \w+ .*rerun to resume from it") as err:
        _run(tiny_dir, arith_task, _config(), reward, tmp_path / "ckpt")
    assert (tmp_path / "flag").exists()
    kept = int(re.search(r"the checkpoint of step (\d)", str(err.value)).group(1))
    sampled = len((tmp_path / "calls").read_text().splitlines())
    log, final = _run(tiny_dir, arith_task, _config(), reward, tmp_path / "ckpt")
    assert [s["step"] for s in log["steps_log"]] == [1, 2, 3, 4]
    # the rerun samples only the batches of the steps after the checkpoint
    assert len((tmp_path / "calls").read_text().splitlines()) - sampled == 4 - kept
    assert final == unbroken[1]


def test_each_loop_refuses_the_others_checkpoint_naming_async_sampler(tiny_dir, arith_task, tmp_path):
    import torch

    from roadmap.core.errors import ConfigError

    (tmp_path / "alt").mkdir()
    torch.save({"step": 1}, tmp_path / "alt" / "rl_checkpoint.pt")  # the alternating loop's (no mode)
    with pytest.raises(ConfigError, match="written by the alternating loop \\(async_sampler: false\\)"):
        _run(tiny_dir, arith_task, _config(), CountingReward(tmp_path / "c"), tmp_path / "alt")
    (tmp_path / "async").mkdir()
    torch.save({"step": 1, "mode": "async"}, tmp_path / "async" / "rl_checkpoint.pt")
    with pytest.raises(ValueError, match="written by the asynchronous loop \\(async_sampler: true\\)"):
        _run(tiny_dir, arith_task, _config(async_sampler=False), CountingReward(tmp_path / "c"), tmp_path / "async")


def test_bad_async_settings_are_refused_naming_the_key():
    with pytest.raises(ValueError, match="max_lag=-1 must be >= 0"):
        RLConfig(async_sampler=True, max_lag=-1)
    with pytest.raises(ValueError, match="async_sampler=True with max_lag=0.*set max_lag: 1 or more"):
        RLConfig(async_sampler=True, max_lag=0)
    with pytest.raises(ValueError, match="weight_sync_every=0"):
        RLConfig(async_sampler=True, max_lag=1, weight_sync_every=0)
    with pytest.raises(ValueError, match="sampler_restarts=-1"):
        RLConfig(sampler_restarts=-1)
    with pytest.raises(ValueError, match="async_sampler=True runs on trainer='own'"):
        RLConfig(async_sampler=True, max_lag=1, trainer="trl")
    assert RLConfig().async_sampler is False  # the alternating loop stays the default
