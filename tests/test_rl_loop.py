"""learning.rl_losses / rl_roles / rl_loop: the sampler-learner loop's rules, with fakes and a tiny model."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from learning.rl import RLConfig, rl_rewards, rl_step, scalerl_config
from learning.rl_loop import PromptPool
from learning.rl_losses import aggregation_weights, group_advantages, policy_loss
from learning.rl_roles import RLLearner, RolloutBuffer, RolloutGroup, Sampler, _completion_logps, combine_rewards
from roadmap.core import HFPolicy, Lengths

ROOT = Path(__file__).resolve().parents[1]


def _group(version: int, pid: str = "p") -> RolloutGroup:
    return RolloutGroup(problem_id=pid, prompt="1+1\n", prompt_ids=[1, 2], completion_ids=[[3], [4]],
                        behaviour_logps=[[-1.0], [-1.0]], sampler_logprob=[-1.0, -1.0], rewards=[0.0, 1.0],
                        correct=[0.0, 1.0], finished=[True, True], version=version)


def test_importance_ratio_is_one_on_policy(tiny_dir, arith_task):
    policy = HFPolicy.from_pretrained(tiny_dir, prefix_cache_tokens=0, batch_size=64)
    rewards, weights = rl_rewards(arith_task, RLConfig())
    sampler = Sampler(policy, arith_task, rewards, weights, group_size=4, temperature=1.0, max_new_tokens=12)
    groups = sampler.rollouts(arith_task.problems("train", n=3, seed=0), seed=0)
    rows = [(g, j) for g in groups for j in range(4) if g.exact[j]]
    assert len(rows) >= 4  # a random model may write a special token; such samples are not trained on
    seqs = [g.prompt_ids + g.completion_ids[j] for g, j in rows]
    policy.model.train()  # the learner's mode
    lp, mask = _completion_logps(policy.model, [len(g.prompt_ids) for g, _ in rows], seqs, policy.pad_id,
                                 temperature=1.0, fp32_head=True, device="cpu")
    beh = torch.zeros_like(lp)
    for r, (g, j) in enumerate(rows):
        beh[r, : len(g.behaviour_logps[j])] = torch.tensor(g.behaviour_logps[j])
    _, stats = policy_loss(lp, beh, torch.ones(len(rows)), mask, "cispo")
    assert stats["max_abs_log_ratio"] < 1e-5 and stats["mean_ratio"] == pytest.approx(1.0, abs=1e-5)
    # and the decode loop's own sums agree with the learner's forward
    sums = (lp * mask).sum(1).tolist()
    assert max(abs(a - g.sampler_logprob[j]) for a, (g, j) in zip(sums, rows)) < 1e-3


@pytest.mark.parametrize("loss_type", ["grpo", "dapo", "cispo", "gspo", "dr_grpo"])
def test_zero_variance_groups_carry_no_gradient(loss_type):
    rewards = torch.tensor([[1.0, 1.0, 1.0], [0.0, 1.0, 0.0]])  # group 0: all equal
    adv, keep = group_advantages(rewards, "batch", zero_variance_filter=True)
    assert keep.tolist() == [False, True] and adv[0].abs().sum() == 0
    logp = torch.randn(6, 5, requires_grad=True)
    mask = torch.ones(6, 5) * keep.repeat_interleave(3)[:, None]
    loss, _ = policy_loss(logp, logp.detach(), adv.flatten(), mask, loss_type)
    loss.backward()
    assert logp.grad[:3].abs().sum() == 0 and logp.grad[3:].abs().sum() > 0
    # filtered groups leave the normaliser too: the loss equals the loss of the live group alone
    alone, _ = policy_loss(logp[3:], logp[3:].detach(), adv[1], torch.ones(3, 5), loss_type)
    assert float(loss) == pytest.approx(float(alone), abs=1e-6)


def test_prompt_level_aggregation_weights_prompts_equally_whatever_their_lengths():
    mask = torch.zeros(4, 10)
    mask[0, :10] = mask[1, :10] = 1  # prompt 0: long completions
    mask[2, :1] = mask[3, :2] = 1  # prompt 1: short ones
    group = torch.tensor([0, 0, 1, 1])
    w = aggregation_weights(mask, "prompt", group)
    per_prompt = [float(w[:2].sum()), float(w[2:].sum())]
    assert per_prompt == pytest.approx([0.5, 0.5])
    tok = aggregation_weights(mask, "token")
    assert float(tok[:2].sum()) == pytest.approx(20 / 23)  # token-level: the long prompt dominates


def test_a_stale_group_beyond_max_lag_is_never_used():
    buf = RolloutBuffer(max_lag=2)
    buf.put([_group(0, "a"), _group(1, "b"), _group(2, "c"), _group(3, "d")])
    got = buf.take(learner_version=4, n=10)
    assert [g.problem_id for g in got] == ["c", "d"] and buf.stale_dropped == 2
    on_policy = RolloutBuffer(max_lag=0)
    on_policy.put([_group(3), _group(4)])
    assert [g.version for g in on_policy.take(4, 10)] == [4]
    with pytest.raises(ValueError, match="max_lag=-1"):
        RolloutBuffer(-1)


def test_no_positive_resampling_retires_prompts_at_the_pass_rate(arith_task):
    problems = arith_task.problems("train", n=4, seed=0)
    pool = PromptPool(problems, seed=0, retire_pass_rate=0.9)
    solved, almost = problems[0].id, problems[1].id
    pool.record(solved, 1.0)
    pool.record(almost, 7 / 8)  # below 0.9: stays
    drawn = [p.id for _ in range(5) for p in pool.draw(3)]
    assert solved not in drawn and almost in drawn and pool.retired == {solved}
    for p in problems:
        pool.record(p.id, 1.0)
    with pytest.raises(ValueError, match="every training problem is retired"):
        pool.draw(10)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="loss_type='ppo'"):
        RLConfig(loss_type="ppo")
    with pytest.raises(ValueError, match="max_lag=-1"):
        RLConfig(max_lag=-1)
    with pytest.raises(ValueError, match="num_generations=1"):
        RLConfig(num_generations=1)
    with pytest.raises(ValueError, match="group size >= 2"):
        group_advantages(torch.tensor([[1.0], [0.0]]))
    with pytest.raises(ValueError, match="beta"):
        RLConfig(beta=0.1)  # the own trainer has no reference model

    def nan_reward(prompts, completions, **kw):
        return [float("nan")] * len(prompts)

    def partial(prompts, completions, **kw):
        return [None, 2.0]

    def verifier(prompts, completions, **kw):
        return [1.0, 0.0]

    with pytest.raises(ValueError, match="'nan_reward' returned nan for completion 0"):
        combine_rewards([verifier, nan_reward], [1.0, 1.0], ["a", "b"], ["x", "y"])
    total, first, terms = combine_rewards([verifier, partial], [1.0, 0.5], ["a", "b"], ["x", "y"])
    assert total == [1.0, 1.0] and first == [1.0, 0.0] and terms == {"verifier": 0.5, "partial": 2.0}
    with pytest.raises(ValueError, match="returned 1 rewards for 2"):
        combine_rewards([lambda p, c, **k: [1.0]], [1.0], ["a", "b"], ["x", "y"])


def test_a_learner_step_moves_the_policy_towards_rewarded_samples(tiny_dir):
    from roadmap.core.precision import load_trainable_lm

    tok, model, _ = load_trainable_lm(tiny_dir)
    learner = RLLearner(model, tok.pad_token_id, RLConfig(loss_type="cispo", learning_rate=1e-2))
    good, bad = [5, 6, 7], [8, 9, 10]

    def logps():
        with torch.no_grad():
            lp, m = _completion_logps(model, [2, 2], [[1, 4] + good, [1, 4] + bad], tok.pad_token_id,
                                      temperature=1.0, fp32_head=True, device="cpu")
        return (lp * m).sum(1)

    before = logps()
    group = RolloutGroup("p", "", [1, 4], [good, bad], [lp.tolist() for lp in _rows(model, tok, good, bad)],
                         [0.0, 0.0], [1.0, 0.0], [1.0, 0.0], [True, True], 0)
    stats = learner.step([group])
    after = logps()
    assert stats["rows"] == 2 and after[0] > before[0] and after[1] < before[1]


def _rows(model, tok, good, bad):
    with torch.no_grad():
        lp, m = _completion_logps(model, [2, 2], [[1, 4] + good, [1, 4] + bad], tok.pad_token_id,
                                  temperature=1.0, fp32_head=True, device="cpu")
    return [lp[0, :3], lp[1, :3]]


_KILLER = textwrap.dedent("""
    import json, os, signal, sys
    sys.path.insert(0, {root!r})
    from learning.rl import rl_rewards, scalerl_config
    from learning.rl_loop import run_rl
    from roadmap.core import Lengths
    from roadmap.core.precision import load_trainable_lm
    from roadmap.core.tasks import ArithTask

    task = ArithTask()
    cfg = scalerl_config(num_generations=2, prompts_per_step=2, max_steps=4, lengths=Lengths(rl_completion_tokens=8))
    rewards, weights = rl_rewards(task, cfg)
    calls = []

    def counting(prompts, completions, **kw):
        calls.append(1)
        if os.environ.get("KILL_AT") and len(calls) == int(os.environ["KILL_AT"]):
            os.kill(os.getpid(), signal.SIGKILL)  # mid-step: sampled, not yet learned
        return [0.0] * len(prompts)

    tok, model, _ = load_trainable_lm({tiny!r})
    log = run_rl(model, tok, task, task.problems("train", n=8, seed=0), cfg, [*rewards, counting], [*weights, 1.0],
                 checkpoint_dir={ckpt!r})
    print(json.dumps({{"steps": [s["step"] for s in log["steps_log"]], "calls": len(calls)}}))
""")


def test_a_run_killed_mid_step_resumes_without_repeating_finished_steps(tiny_dir, tmp_path):
    script = tmp_path / "run.py"
    script.write_text(_KILLER.format(root=str(ROOT), tiny=str(tiny_dir), ckpt=str(tmp_path / "ckpt")))
    killed = subprocess.run([sys.executable, str(script)], env={**os.environ, "KILL_AT": "3"},
                            capture_output=True, text=True)
    assert killed.returncode == -9
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True)
    out = __import__("json").loads(done.stdout.strip().splitlines()[-1])
    assert out["steps"] == [1, 2, 3, 4]
    assert out["calls"] == 2  # steps 1 and 2 were finished and checkpointed; only 3 and 4 ran again


def test_rl_step_own_writes_the_policy_and_the_step_log(tiny_dir, arith_task, tmp_path):
    problems = arith_task.problems("train", n=4, seed=2)
    config = scalerl_config(output_dir=str(tmp_path / "rl"), num_generations=2, prompts_per_step=2, max_steps=2,
                            max_lag=1, lengths=Lengths(rl_completion_tokens=8), eval_every=1, eval_problems=3)
    res = rl_step(tiny_dir, arith_task, problems, config, checkpoint_dir=tmp_path / "state")
    assert res["steps"] == 2 and [p["step"] for p in res["eval_curve"]] == [0, 1, 2]
    log = res["steps_log"]
    assert log[1]["compute"] > log[0]["compute"] > 0 and res["sampling_tokens"] > 0
    assert log[1]["lag"] == 1  # max_lag 1: the second step learns from the first weights' samples
    assert (tmp_path / "rl" / "config.json").exists() and (tmp_path / "state" / "optimizer.pt").exists()
    assert all(math.isfinite(s["sample_seconds"]) for s in log)


def test_negative_weight_zero_stops_pushing_below_average_samples_down(tiny_dir):
    from roadmap.core.precision import load_trainable_lm

    seqs = [[1, 5, 6, 2], [1, 5, 7, 2]]

    def moved(negative_weight: float):
        tok, model, _ = load_trainable_lm(tiny_dir)
        learner = RLLearner(model, tok.pad_token_id, RLConfig(negative_weight=negative_weight, loss_type="cispo",
                                                            learning_rate=1e-3))
        with torch.no_grad():
            token_lp = _completion_logps(model, [2, 2], seqs, tok.pad_token_id, temperature=1.0, fp32_head=True,
                                         device="cpu")[0]
            before = token_lp.sum(1)
            group = RolloutGroup(problem_id="p", prompt="1+1\n", prompt_ids=[1, 5], completion_ids=[[6, 2], [7, 2]],
                                 behaviour_logps=token_lp.tolist(),
                                 sampler_logprob=[0.0, 0.0], rewards=[0.0, 1.0], correct=[0.0, 1.0],
                                 finished=[True, True], version=0, exact=[True, True])
        learner.step([group])
        with torch.no_grad():
            after = _completion_logps(model, [2, 2], seqs, tok.pad_token_id, temperature=1.0, fp32_head=True,
                                      device="cpu")[0].sum(1)
        return after - before

    full, positive_only = moved(1.0), moved(0.0)
    assert positive_only[1] > 0 and full[1] > 0  # the rewarded sample rises either way
    assert full[0] < positive_only[0]  # only the policy gradient pushes the unrewarded one down by itself
    with pytest.raises(ValueError, match="negative_weight=1.5"):
        RLConfig(negative_weight=1.5)
    with pytest.raises(ValueError, match="verifier='proof'"):
        RLConfig(verifier="proof")


def test_decay_steps_anneal_the_learning_rate_linearly_over_the_last_steps(tiny_dir):
    from roadmap.core.precision import load_trainable_lm

    tok, model, _ = load_trainable_lm(tiny_dir)
    learner = RLLearner(model, tok.pad_token_id, RLConfig(max_steps=4, decay_steps=2, warmup_steps=0,
                                                        learning_rate=1e-3))
    group = RolloutGroup(problem_id="p", prompt="1+1\n", prompt_ids=[1, 5], completion_ids=[[6, 2], [7, 2]],
                         behaviour_logps=[[-1.0, -1.0], [-1.0, -1.0]], sampler_logprob=[-2.0, -2.0],
                         rewards=[0.0, 1.0], correct=[0.0, 1.0], finished=[True, True], version=0, exact=[True, True])
    lrs = [learner.step([group])["lr"] for _ in range(4)]
    assert lrs == pytest.approx([1e-3, 1e-3, 1e-3, 5e-4])  # steps 3-4 are the decay: 2/2, then 1/2 of the peak
    with pytest.raises(ValueError, match="decay_steps=9"):
        RLConfig(max_steps=5, decay_steps=9)


def test_on_policy_the_clipped_losses_and_cispo_give_one_gradient():
    """At ratio 1 (one update per fresh batch, max_lag 0) PPO-clip, DAPO, CISPO and GSPO all reduce to
    -A * grad log pi: the loss choice can only matter off-policy, which is why the ablation runs it at max_lag 8."""
    torch.manual_seed(0)
    logp0 = torch.randn(4, 6) - 1.0
    adv = torch.tensor([1.0, -1.0, 0.5, -0.5])
    mask = torch.ones(4, 6)
    group = torch.tensor([0, 0, 1, 1])
    grads = {}
    for loss_type in ("grpo", "dapo", "cispo", "gspo"):
        logp = logp0.clone().requires_grad_(True)
        loss, _ = policy_loss(logp, logp0, adv, mask, loss_type, aggregation="prompt", group=group)
        loss.backward()
        grads[loss_type] = logp.grad
    for loss_type in ("dapo", "cispo", "gspo"):
        assert torch.allclose(grads[loss_type], grads["grpo"], atol=1e-6), loss_type
    off = logp0 + 0.5  # off-policy: the behaviour log-probs differ, and so do the losses' gradients
    g = {}
    for loss_type in ("grpo", "cispo"):
        logp = off.clone().requires_grad_(True)
        policy_loss(logp, logp0, adv, mask, loss_type, aggregation="prompt", group=group)[0].backward()
        g[loss_type] = logp.grad
    assert not torch.allclose(g["grpo"], g["cispo"], atol=1e-4)


def test_the_supervised_term_learns_the_demonstrations_even_when_no_group_carries_signal(tiny_dir, arith_task):
    """rl.sft_weight: a step whose groups all have zero variance still trains on the demonstrations, and the
    demonstrations are encoded as the sampler encodes its own samples (BOS prompt, completion, EOS)."""
    from learning.rl_loop import encode_demonstrations
    from roadmap.core.precision import load_trainable_lm

    policy = HFPolicy.from_pretrained(tiny_dir, prefix_cache_tokens=0, batch_size=8)
    problems = arith_task.problems("train", n=4, seed=3)
    pairs = [arith_task.training_pair(p, arith_task.reference_solution(p)) for p in problems]
    demos = encode_demonstrations(policy, pairs)
    for (prompt, completion), (pids, comp) in zip(pairs, demos):
        assert pids == policy.encode_prefix(prompt) and comp[-1] == policy.eos_ids[0]
        assert policy.tokenizer.decode(comp[:-1]) == completion
    tok, model, _ = load_trainable_lm(tiny_dir)
    learner = RLLearner(model, tok.pad_token_id, RLConfig(sft_weight=1.0, learning_rate=3e-3, zero_variance_filter=True))
    flat = [RolloutGroup(problem_id="p", prompt="1+1\n", prompt_ids=[1, 5], completion_ids=[[6, 2], [7, 2]],
                         behaviour_logps=[[-1.0, -1.0], [-1.0, -1.0]], sampler_logprob=[-2.0, -2.0],
                         rewards=[0.0, 0.0], correct=[0.0, 0.0], finished=[True, True], version=0, exact=[True, True])]
    losses = [learner.step(flat, demos)["sft_loss"] for _ in range(8)]
    assert losses[-1] < 0.8 * losses[0]
    assert learner.step(flat, None)["rows"] == 0  # without demonstrations the flat step carries nothing
    pure = RLLearner(model, tok.pad_token_id, RLConfig(learning_rate=3e-3, zero_variance_filter=True))
    assert "sft_loss" not in pure.step(flat, demos)  # sft_weight 0: demonstrations are ignored
    firsts = []
    for accumulate in (1, 4):  # micro-batches change the memory, not the loss or the update
        tok, model, _ = load_trainable_lm(tiny_dir)
        learner = RLLearner(model, tok.pad_token_id, RLConfig(sft_weight=1.0, zero_variance_filter=True,
                                                            gradient_accumulation_steps=accumulate))
        firsts.append((learner.step(flat, demos)["sft_loss"], learner.step(flat, demos)["sft_loss"]))
    assert firsts[0] == pytest.approx(firsts[1], rel=1e-4)


def test_bad_supervised_settings_are_named(tiny_dir, arith_task, tmp_path):
    with pytest.raises(ValueError, match="sft_weight=-1"):
        RLConfig(sft_weight=-1.0)
    with pytest.raises(ValueError, match="sft_batch=0"):
        RLConfig(sft_batch=0)
    with pytest.raises(ValueError, match="sft_weight=0.5 runs on trainer='own' with async_sampler: false"):
        RLConfig(sft_weight=0.5, async_sampler=True, max_lag=1)
    config = RLConfig(sft_weight=0.5, output_dir=str(tmp_path / "rl"), max_steps=1)
    with pytest.raises(ValueError, match="sft_weight=0.5 needs demonstrations"):
        rl_step(tiny_dir, arith_task, arith_task.problems("train", n=2, seed=0), config)
    from roadmap.app.loop_config import RecipeError, load_recipe

    recipe = tmp_path / "r.yaml"
    recipe.write_text("policy: p\nlearn: {algorithm: grpo, sft_weight: 0.5}\n")
    with pytest.raises(RecipeError, match="sft_weight"):  # the loop has no demonstrations: refused at load
        load_recipe(recipe)


def test_a_checkpoint_is_resumed_only_on_the_inputs_it_was_started_on(tiny_dir, arith_task, tmp_path):
    """The checkpoint records its problems and demonstrations: a resume on others is refused, naming the fix;
    on the same ones it continues from the saved step."""
    from learning.rl import rl_rewards
    from learning.rl_loop import run_rl
    from roadmap.core.errors import StaleOutputError
    from roadmap.core.precision import load_trainable_lm

    def go(problems, demos, steps):
        cfg = scalerl_config(num_generations=2, prompts_per_step=2, max_steps=steps, sft_weight=0.5 if demos else 0.0,
                             lengths=Lengths(rl_completion_tokens=8))
        rewards, weights = rl_rewards(arith_task, cfg)
        tok, model, _ = load_trainable_lm(str(tiny_dir))
        return run_rl(model, tok, arith_task, problems, cfg, rewards, weights, checkpoint_dir=tmp_path / "ckpt",
                      demonstrations=demos)

    problems = arith_task.problems("train", n=4, seed=0)
    demos = [(arith_task.prompt(p), arith_task.reference_solution(p)) for p in problems[:2]]
    assert [s["step"] for s in go(problems, demos, 1)["steps_log"]] == [1]
    with pytest.raises(StaleOutputError, match="other problems or demonstrations"):
        go(arith_task.problems("train", n=4, seed=1), demos, 2)
    with pytest.raises(StaleOutputError, match="empty checkpoint folder"):
        go(problems, demos[:1], 2)
    assert [s["step"] for s in go(problems, demos, 2)["steps_log"]] == [1, 2]
