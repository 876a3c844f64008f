"""The self-improvement ladder (roadmap.app.ladder): where it learns, what it learns from, what it refuses."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path

import pytest

from roadmap.app.ladder import LadderConfig, run_ladder
from roadmap.app.ladder_config import choose_levels, mix_rows, select_solution
from roadmap.app.loop_config import RecipeError
from roadmap.core.tasks import ArithTask, get_task, saved_task_options


def test_level_chooser_picks_the_band_and_the_next_level_up():
    rates = {2: 1.0, 3: 0.97, 4: 0.6, 5: 0.2, 6: 0.01, 7: 0.0}
    assert choose_levels(rates, (0.1, 0.9), 3) == [4, 5, 6]  # band 4, 5, and 6: first above every reached level
    assert choose_levels(rates, (0.1, 0.9), 3, "hardest") == [6, 5, 4]
    assert choose_levels(rates, (0.1, 0.9), 1) == [4]  # the easiest first
    assert choose_levels(rates, (0.1, 0.9), 1, "hardest") == [6]
    assert choose_levels({2: 1.0, 3: 1.0, 4: 0.0}, (0.1, 0.9), 2) == [4]  # nothing in band: the next rung up
    assert choose_levels({2: 1.0, 3: 1.0}, (0.1, 0.9), 2) == []  # all mastered: nothing to learn
    assert choose_levels({2: 0.5, 3: 0.95, 4: 0.3}, (0.1, 0.9), 5) == [2, 4]  # mastered 3 is left out


def test_the_fit_reads_the_highest_levels_that_climbed():
    """The default sigmoid fit takes the two highest levels whose accuracy moved, not levels never reached."""
    from roadmap.app.ladder_report import fit_levels, top_level_fit

    acc = [{2: 0.30, 3: 0.12, 4: 0.05, 5: 0.005, 6: 0.0}, {2: 0.55, 3: 0.25, 4: 0.08, 5: 0.0, 6: 0.005},
           {2: 0.75, 3: 0.45, 4: 0.12, 5: 0.01, 6: 0.0}, {2: 0.85, 3: 0.55, 4: 0.18, 5: 0.005, 6: 0.0}]
    rows = [{"train_compute": 1e6 * (k + 1), "levels": {str(lv): {"accuracy": a} for lv, a in by.items()}}
            for k, by in enumerate(acc)]
    config = LadderConfig(levels=[2, 3, 4, 5, 6], seed_levels=[2, 3])
    assert fit_levels(config, rows) == [3, 4]
    fit = top_level_fit(config, rows)
    assert fit["levels"] == [3, 4] and fit["accuracy"][0] < fit["accuracy"][-1]
    # a curve that falls (an RL run that lost accuracy) gets no asymptote read off it
    falls = [{**r, "levels": {str(lv): {"accuracy": a} for lv, a in zip(range(2, 7), (0.3, 0.12 - 0.015 * k,
                                                                                      0.06 - 0.01 * k, 0, 0))}}
             for k, r in enumerate(rows)]
    assert "FALLS" in top_level_fit(config, falls)["why"]
    config = LadderConfig(levels=[2, 3, 4, 5, 6], seed_levels=[2, 3], fit_levels=[5, 6])
    assert fit_levels(config, rows) == [5, 6]  # the recipe's choice wins
    assert "flat" in top_level_fit(config, rows)["why"]
    flat = [{**r, "levels": {str(lv): {"accuracy": 0.0} for lv in range(2, 7)}} for r in rows]
    assert fit_levels(LadderConfig(levels=[2, 3, 4, 5, 6], seed_levels=[2, 3]), flat) == [5, 6]


def test_replay_keeps_the_seed_set_in_the_mix():
    seed = [{"id": f"s{i}", "source": "seed"} for i in range(10)]
    new = [{"id": f"n{i}", "source": "iter_1"} for i in range(3)]
    rows = mix_rows(new, seed, 100, 0.5, seed=0)
    assert len(rows) == 100
    assert sum(r["source"] == "seed" for r in rows) == 50
    assert {r["id"] for r in rows if r["source"] == "seed"} == {r["id"] for r in seed}  # the whole seed set, cycled
    assert sum(r["source"] == "seed" for r in mix_rows([], seed, 40, 0.5, seed=0)) == 40  # no new data: all replay
    assert sum(r["source"] == "seed" for r in mix_rows(new, seed, 40, 0.0, seed=0)) == 0


def test_selection_rules():
    cands = ["a\nAnswer: 5", "b\nAnswer: 5", "b\nAnswer: 5", "c\nAnswer: 4", "c\nAnswer: 4", "c\nAnswer: 4"]
    right = [True, True, True, False, False, False]
    answers = ["5", "5", "5", "4", "4", "4"]
    assert select_solution(cands, right, answers, "verified") == "a\nAnswer: 5"
    assert select_solution(cands, right, answers, "agreement") == "b\nAnswer: 5"  # the most-sampled right text
    assert select_solution(cands, right, answers, "majority") == "a\nAnswer: 5"  # answer 5 and 4 tie: first reached
    assert select_solution(cands, right, ["4", "5", "5", "4", "4", "4"], "majority") == "a\nAnswer: 5"
    assert select_solution(cands, right, answers, "unfiltered") == "a\nAnswer: 5"
    assert select_solution(cands, [False] * 6, answers, "verified") is None


@pytest.mark.parametrize("key, value, named", [
    ("band", [0.2, 1.5], "band"), ("band", [-0.1, 0.5], "band"), ("band", [0.9, 0.1], "band"),
    ("seed_levels", [], "seed_levels"), ("levels", [2, 3, 1], "levels"), ("levels", [2, 3, 100], "levels"),
    ("replay_share", 1.5, "replay_share"), ("replay_share", -0.1, "replay_share"),
    ("learning_rate", -1e-4, "learning_rate"), ("selection", "best", "selection"), ("prefer", "middle", "prefer"),
    ("fit_levels", [9], "fit_levels"), ("seed_task_args", {"min_digits": 5}, "seed_task_args"),
    ("seed_task_args", {"colour": 1}, "seed_task_args"), ("seed_task_args", {"test_fraction": 0.05}, "test_fraction"),
])
def test_bad_ladder_recipes_are_refused_naming_the_key(key, value, named):
    with pytest.raises(RecipeError, match=named):
        LadderConfig(**{key: value})


def test_arith_levels_and_the_carry_format():
    task = ArithTask(digits=2, solution_format="carry")
    rung = task.level_task(5)
    p = rung.problems("train", n=3, seed=0)[0]
    assert p.meta["operands"] == 5 and len(p.steps) == 4
    text = rung.reference_solution(p)
    assert rung.step_labels(p, text) == [True] * 5
    # a carry line that drops a term of the rest is a wrong step, though its arithmetic is right
    first, *rest = text.split("\n")
    dropped = first[: first.rfind("+") if first.rfind("+") > first.find("=") else first.rfind("-")]
    assert rung.step_labels(p, "\n".join([dropped, *rest]))[0] is False
    with pytest.raises(ValueError, match="level"):
        task.level_task(1)


def test_line_width_gives_fixed_width_rows_that_still_check():
    """line_width pads the prompt's chain and every step to one width, so each character sits a fixed distance
    below the one it reads in the line above at every chain length; padded solutions check and score as before."""
    task = ArithTask(digits=2, solution_format="carry", line_width=24)
    for level in (3, 6):
        rung = task.level_task(level)
        p = rung.problems("test", n=2, seed=1)[0]
        prompt, text = rung.prompt(p), rung.reference_solution(p)
        rows = (prompt + text).split("\n")
        assert all(len(row) == 24 for row in rows[:-1]) and rows[-1] == f"Answer: {p.answer}"
        assert rung.step_labels(p, text) == [True] * level and rung.is_correct(p, text)
        assert rung.step_labels(p, text.replace(rows[2].rstrip(), rows[2].rstrip() + "1", 1))[1] is False
    # a line longer than the width stays whole; the checks refuse a bad width, naming it
    long = ArithTask(digits=2, solution_format="carry", line_width=8).level_task(4)
    p = long.problems("train", n=1, seed=0)[0]
    assert long.plain_prompt(p) == p.question + "\n" and long.is_correct(p, long.reference_solution(p))
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="line_width"):
            ArithTask(line_width=bad)


@pytest.mark.parametrize("fmt, width", [("carry", None), ("carry", 24), ("steps", None)])
def test_a_lifted_sub_solution_starts_the_full_solution(fmt, width):
    """arith's sub-problem is the chain without its last term, answer-only; lifting its reference solution gives the
    start of the full chain's reference solution, leaving exactly its last step to write."""
    rung = ArithTask(digits=2, solution_format=fmt, line_width=width).level_task(5)
    for p in rung.problems("train", n=20, seed=3):
        sub = rung.sub_problem(p)
        assert sub.steps == () and sub.answer == "" and p.question.startswith(sub.question)
        start = rung.lift_solution(p, rung.reference_solution(rung.make_problem(sub.question)))
        full = rung.reference_solution(p)
        assert full.startswith(start) and full[len(start):].count("\n") == 1
    assert rung.lift_solution(p, "Answer: 5") is None
    assert ArithTask(digits=2).level_task(2).sub_problem(p.__class__(id="x", question="12+34", answer="46")) is None


def test_lifted_candidates_continue_the_policys_own_lifted_steps(scripted_policy):
    """search.lift samples the sub-problem, lifts each sample and lets the policy write the rest; a sample that
    lifts to nothing gives no candidate, and the compute of both calls is counted."""
    from search.lift import can_lift, lifted_candidates

    rung = ArithTask(digits=2, solution_format="carry").level_task(3)
    p = rung.make_problem("37+48-91")
    sub = rung.sub_problem(p)
    start = "37+48=85-91\n"
    policy = scripted_policy({rung.prompt(sub): ["37+48=85\nAnswer: 85", "Answer: 85"],
                              rung.prompt(p) + start: ["85-91=-6\nAnswer: -6"]})
    [result] = lifted_candidates(policy, rung, [p], 2, temperature=1.0, seed=0, max_new_tokens=32)
    assert result.candidates == [start + "85-91=-6\nAnswer: -6"] and rung.is_correct(p, result.candidates[0])
    assert result.usage.generated_tokens == len("37+48=85\nAnswer: 85") + len("Answer: 85") + len("85-91=-6\nAnswer: -6")
    assert result.usage.sampled_sequences == 3  # two sub-problem samples, one continuation (the other lifted to nothing)
    assert can_lift(rung) and not can_lift(get_task("countdown"))


def test_a_lifted_start_that_fills_the_context_is_left_out_not_sampled(scripted_policy):
    """A long, garbled sub-problem sample lifts to a start the model could not continue (HFPolicy refuses a prefix
    at its max_position_embeddings); it gives no candidate, and the other samples still do."""
    from search.lift import lifted_candidates

    class SmallContext(scripted_policy):
        # "37+48-91\n" + "37+48=85-91\n" is 21 characters, one under the limit: continued; "37+48=851-91\n" makes
        # 22, at the limit: HFPolicy refuses a prefix of max_length tokens, so it is left out
        max_length = 22

        def encode_prefix(self, text):
            return list(text)  # a character per token, as the tiny models

    rung = ArithTask(digits=2, solution_format="carry").level_task(3)
    p = rung.make_problem("37+48-91")
    policy = SmallContext({rung.prompt(rung.sub_problem(p)): ["37+48=85\nAnswer: 85", "37+48=851\nAnswer: 851"],
                           rung.prompt(p) + "37+48=85-91\n": ["85-91=-6\nAnswer: -6"]})
    [result] = lifted_candidates(policy, rung, [p], 2, temperature=1.0, seed=0, max_new_tokens=32)
    assert result.candidates == ["37+48=85-91\n85-91=-6\nAnswer: -6"]


def test_lift_picks_the_next_rung_and_is_refused_where_it_cannot_run():
    from roadmap.app.ladder_config import next_rung

    assert next_rung({2: 0.9, 3: 0.5, 4: 0.2, 5: 0.01, 6: 0.0}, [0.1, 0.9]) == 5
    assert next_rung({2: 0.95, 3: 0.95}, [0.1, 0.9]) is None
    with pytest.raises(RecipeError, match="lift"):
        LadderConfig(lift=True, learner="rl")
    with pytest.raises(RecipeError, match="lift: true needs a task that declares sub-problems"):
        LadderConfig(lift=True, task="countdown", task_args={}, levels=[3, 4], seed_levels=[3])


class _ArithOracle:
    """A fake policy that writes the rest of an arith chain's reference solution after whatever the prefix holds."""

    def __init__(self, task):
        from roadmap.core.types import Usage

        self.task, self.usage = task, Usage()

    def sample(self, prefixes, n=1, **kwargs):
        from roadmap.core.types import Completion

        out = []
        for prefix in prefixes:
            question, _, written = prefix.partition("\n")
            full = self.task.reference_solution(self.task.make_problem(question.strip()))
            text = full[len(written):]
            self.usage.generated_tokens += n * len(text)
            out.append([Completion(text=text, num_tokens=len(text), logprob=0.0, finished=True)] * n)
        return out


def test_the_ladder_searches_a_lifted_rung_from_answers_only(tmp_path, monkeypatch):
    """A lifted level's search samples only sub-problem prompts and lifted starts of answer-only problems; its right
    candidates become training rows like any search's, and the rows are written for analysis."""
    from roadmap.app.ladder import _Ladder

    config = LadderConfig(levels=[2, 3, 4], seed_levels=[2], lift=True, search_problems=5, selection="verified",
                          search={"method": "bon", "budget": 2, "temperature": 1.0, "shard_size": 2})
    ladder = _Ladder(config, tmp_path, say=lambda s: None)
    oracle = _ArithOracle(ArithTask(digits=2, solution_format="carry"))
    seen = []
    real = oracle.sample
    monkeypatch.setattr(oracle, "sample", lambda prefixes, n=1, **kw: seen.extend(prefixes) or real(prefixes, n))
    monkeypatch.setattr(ladder, "policy", lambda k: oracle)
    (tmp_path / "iter_1").mkdir()
    out = ladder.search(1, [4], [4])
    assert out["levels"]["4"]["kept"] == 5 and out["kept_steps_right"] == 1.0 and out["data_tokens"] > 0
    # the sub-problem prompts are 3-operand chains; every other prompt continues a lifted start
    assert sum(p.count("+") + p.count("-") == 2 for p in seen) == 5
    rows = [json.loads(x) for x in (tmp_path / "iter_1" / "data.jsonl").read_text().splitlines()]
    lifted = [json.loads(x) for x in (tmp_path / "iter_1" / "search" / "L4" / "lifted.jsonl").read_text().splitlines()]
    assert len(rows) == 5 and all(r["level"] == 4 and r["steps_right"] for r in rows)
    assert all(len(r["candidates"]) == 2 and all(r["candidate_correct"]) for r in lifted)


def test_min_digits_spreads_chain_lengths_and_seed_task_args_touch_the_seed_set_alone(tmp_path):
    """arith's min_digits draws each operand's digit count from min_digits..digits; the ladder's seed_task_args
    make the seed set of such chains (still at the seed levels), while the rungs it searches and evaluates keep
    task_args."""
    from roadmap.app.ladder import _Ladder

    spread = ArithTask(digits=3, min_digits=1, solution_format="carry").level_task(4)
    problems = spread.problems("train", n=200, seed=0)
    widths = {len(x) for p in problems for x in p.question.replace("-", "+").split("+")}
    assert widths == {1, 2, 3} and all(p.meta["operands"] == 4 for p in problems)
    assert all(spread.step_labels(p, spread.reference_solution(p)) == [True] * 4 for p in problems[:20])
    with pytest.raises(ValueError, match="min_digits=3"):
        ArithTask(digits=2, min_digits=3)
    with pytest.raises(ValueError, match="min_digits=1.5"):
        ArithTask(digits=2, min_digits=1.5)
    config = LadderConfig(levels=[2, 3, 4, 5], seed_levels=[2, 3], seed_problems=40,
                          seed_task_args={"digits": 3, "min_digits": 1})
    ladder = _Ladder(config, tmp_path, say=lambda s: None)
    rows = ladder.seed_rows()
    prompts = [r["prompt"].strip() for r in rows]
    assert {len(x) for q in prompts for x in q.replace("-", "+").split("+")} == {1, 2, 3}
    assert {r["level"] for r in rows} == {2, 3}
    searched = ladder.answer_only(5, 20, seed=1)
    assert {len(x) for p in searched for x in p.question.replace("-", "+").split("+")} == {2}


def test_eval_reads_the_task_options_a_policy_was_trained_with(tmp_path):
    (tmp_path / "task.json").write_text(json.dumps({"task": "arith", "task_args": {"solution_format": "carry"}}))
    assert saved_task_options(tmp_path, "arith") == {"solution_format": "carry"}
    assert saved_task_options(tmp_path, "gsm8k") == {}
    assert get_task("arith", **saved_task_options(tmp_path, "arith")).config.solution_format == "carry"


@pytest.mark.slow
def test_a_tiny_ladder_learns_only_from_answers_outside_the_seed_set(tmp_path, monkeypatch, caplog):
    """End to end on an untrained tiny model: no worked solution outside the seed set reaches the search or the
    training rows, a level with no verified solution is skipped with a logged reason, and a rerun resumes."""
    import roadmap.app.train_search as train_search

    searched = []
    real = train_search.search_train

    def spy(policy, task, problems, *a, **kw):
        searched.extend(problems)
        return real(policy, task, problems, *a, **kw)

    monkeypatch.setattr(train_search, "search_train", spy)
    config = LadderConfig(levels=[2, 3, 4], seed_levels=[2], seed_problems=16, tiny={"hidden_size": 32, "num_heads": 2,
                          "num_layers": 1, "intermediate_size": 64}, warm_start_steps=2, iterations=1,
                          probe_problems=2, probe_samples=2, max_levels=2, search_problems=3,
                          search={"method": "bon", "budget": 2, "temperature": 1.0, "shard_size": 4},
                          selection="unfiltered", learn_steps=2, batch_size=4, eval_problems=2,
                          lengths={"max_solution_tokens": 24})
    with caplog.at_level(logging.WARNING, logger="roadmap.app.ladder"):
        first = run_ladder(config, tmp_path / "run", say=lambda s: None)
    assert searched and all(p.steps == () for p in searched)  # the search sees answers only
    seed_ids = {json.loads(x)["id"] for x in (tmp_path / "run" / "seed.jsonl").read_text().splitlines()}
    data = [json.loads(x) for x in (tmp_path / "run" / "iter_1" / "data.jsonl").read_text().splitlines()]
    trees = "".join(p.read_text() for p in (tmp_path / "run" / "iter_1" / "search").rglob("trees.jsonl"))
    for row in data:  # every non-seed row is one of the policy's own samples
        assert row["source"] == "iter_1" and json.dumps(row["completion"].strip())[1:-1] in trees
    assert all(json.loads(x)["level"] == 2 for x in (tmp_path / "run" / "seed.jsonl").read_text().splitlines())
    assert len(seed_ids) == 16
    report = (tmp_path / "run" / "report.md").read_text()
    assert "| iteration | L2 | L3 | L4 |" in report and (tmp_path / "run" / "levels.png").exists()

    # unfiltered keeps every first sample; verified keeps none from an untrained model: the level is skipped
    config2 = LadderConfig(**{**config.__dict__, "selection": "verified"})
    with caplog.at_level(logging.WARNING, logger="roadmap.app.ladder"):
        run_ladder(config2, tmp_path / "run2", say=lambda s: None)
    assert "gave no kept solution" in caplog.text
    # another recipe in the same folder is refused, naming the key that differs
    with pytest.raises(RecipeError, match="learn_steps"):
        run_ladder(LadderConfig(**{**config.__dict__, "learn_steps": 3}), tmp_path / "run", say=lambda s: None)
    # a rerun finds every phase done and gives the same table
    again = run_ladder(config, tmp_path / "run", say=lambda s: pytest.fail(f"phase rerun: {s}"))
    assert [r["levels"] for r in again["iterations"]] == json.loads(json.dumps([r["levels"] for r in first["iterations"]]))


@pytest.mark.parametrize("line, named", [("band: [0.5, 2.0]", "band"), ("seed_levels: []", "seed_levels"),
                                         ("levels: [2, 3, 1000]", "levels"), ("replay_share: 2", "replay_share"),
                                         ("bogus_key: 1", "bogus_key")])
def test_cli_refuses_a_bad_ladder_recipe_in_one_line(tmp_path, capsys, line, named):
    from roadmap.app.cli import main

    recipe = tmp_path / "ladder.yaml"
    recipe.write_text(f"ladder: true\n{line}\n")
    assert main(["run", str(recipe), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and named in err[0] and "Traceback" not in err[0]
    assert not (tmp_path / "run").exists()  # refused before the run folder is touched


def test_the_ladder_refuses_a_users_folder_and_its_own_policy(tmp_path):
    from roadmap.core.errors import RoadmapError

    user = tmp_path / "mine"
    user.mkdir()
    (user / "report.md").write_text("my notes")
    with pytest.raises(RoadmapError):
        run_ladder(LadderConfig(), user, say=lambda s: None)
    assert (user / "report.md").read_text() == "my notes"
    policy = tmp_path / "policy"
    policy.mkdir()
    (policy / "config.json").write_text("{}")
    with pytest.raises(RoadmapError, match="policy"):
        run_ladder(LadderConfig(policy=str(policy)), policy / "run", say=lambda s: None)


@pytest.mark.slow
def test_a_ladder_killed_mid_run_resumes_to_the_same_result(tmp_path):
    """SIGKILL `roadmap run` of a ladder recipe once its warm start is done; the rerun finishes with the table of an
    uninterrupted run and does not redo the finished phase."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import yaml

    recipe = {"ladder": True, "levels": [2, 3], "seed_levels": [2], "seed_problems": 16,
              "tiny": {"hidden_size": 32, "num_heads": 2, "num_layers": 1, "intermediate_size": 64},
              "warm_start_steps": 2, "iterations": 1, "probe_problems": 2, "probe_samples": 2, "search_problems": 3,
              "search": {"method": "bon", "budget": 2, "temperature": 1.0, "shard_size": 4}, "selection": "unfiltered",
              "learn_steps": 2, "batch_size": 4, "eval_problems": 2, "lengths": {"max_solution_tokens": 24}}
    path = tmp_path / "ladder.yaml"
    path.write_text(yaml.safe_dump(recipe))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "roadmap.app.cli", "run", str(path), "--out"]
    subprocess.run([*cmd, str(tmp_path / "whole")], check=True, env=env, capture_output=True)
    proc = subprocess.Popen([*cmd, str(tmp_path / "killed")], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    marker = tmp_path / "killed" / "iter_0" / "warm_start.done.json"
    deadline = time.time() + 120
    while not marker.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert marker.exists()
    stamp = marker.stat().st_mtime_ns
    subprocess.run([*cmd, str(tmp_path / "killed")], check=True, env=env, capture_output=True)
    assert marker.stat().st_mtime_ns == stamp  # the finished warm start was not redone
    whole = json.loads((tmp_path / "whole" / "metrics.json").read_text())["iterations"]
    killed = json.loads((tmp_path / "killed" / "metrics.json").read_text())["iterations"]
    assert [r["levels"] for r in killed] == [r["levels"] for r in whole]
    assert [r["kept"] for r in killed] == [r["kept"] for r in whole]


def test_the_benchmark_shares_a_warm_start_into_a_folder_the_ladder_then_resumes(tmp_path):
    """benchmarks/ladder.py copies one arm's iteration 0 into the next arm's run folder; the write guard must then
    take that folder as the run's own (it refused it when the copy came before the claim)."""
    import importlib.util

    from roadmap.app.loop import legacy_run_dir
    from roadmap.core.outputs import claim_output_dir

    spec = importlib.util.spec_from_file_location("ladder_bench", Path(__file__).resolve().parents[1] / "benchmarks"
                                                  / "ladder.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    src, dst = tmp_path / "ladder-s0", tmp_path / "more_sft-s0"
    claim_output_dir(src, "run", legacy=legacy_run_dir)
    (src / "iter_0" / "policy").mkdir(parents=True)
    (src / "iter_0" / "policy" / "config.json").write_text("{}")
    (src / "iter_0" / "eval.done.json").write_text("{}")
    (src / "seed.jsonl").write_text("")
    bench._share_warm_start(src, dst)
    assert (dst / "iter_0" / "eval.done.json").exists()
    assert claim_output_dir(dst, "run", legacy=legacy_run_dir) == dst
    # only a warm start made with the same WARM_KEYS settings is shared (a wider seed set trains its own)
    import yaml

    config = LadderConfig(seed=0)
    (src / "config.yaml").write_text(yaml.safe_dump({k: v for k, v in asdict(config).items() if k != "seed_task_args"}))
    assert bench._same_warm_start(src, config)  # a run folder older than a key had that key's default
    assert not bench._same_warm_start(src, LadderConfig(seed=0, seed_task_args={"digits": 3, "min_digits": 1}))
    assert not bench._same_warm_start(src, LadderConfig(seed=0, warm_start_steps=601))


@pytest.mark.parametrize("name", sorted(p.name for p in (Path(__file__).resolve().parents[1] / "recipes").glob("*.yaml")))
def test_every_shipped_recipe_loads(name, tmp_path):
    """Each recipe in recipes/ passes the checks `roadmap run` makes before any work (a ladder or Stream of Search
    recipe, or a loop's, given the policy folder a user passes with --policy)."""
    from roadmap.app.ladder import is_ladder_recipe, load_ladder_recipe
    from roadmap.app.loop_config import load_recipe
    from roadmap.app.sos import is_sos_recipe, load_sos_recipe
    from roadmap.core.errors import PRMFormatError

    path = Path(__file__).resolve().parents[1] / "recipes" / name
    # what the recipe's header says to pass: --policy, and --prm-dir where it leaves prm_dir empty
    given = {"policy": str(tmp_path)}
    if 'prm_dir: ""' in path.read_text():  # its keys pass; only the empty folder given as the PRM is refused
        with pytest.raises(PRMFormatError, match="not a reward model folder"):
            load_recipe(path, prm_dir=str(tmp_path), **given)
        return
    if is_sos_recipe(path):
        load_sos_recipe(path)
        return
    config = load_ladder_recipe(path) if is_ladder_recipe(path) else load_recipe(path, **given)
    if name == "ladder.yaml":
        assert config.lift and config.task_args["solution_format"] == "carry"


def test_a_rung_without_a_step_checker_keeps_its_data_and_leaves_the_step_figure_unknown(tmp_path, monkeypatch):
    """The step checker only analyses the kept data: a task without ``step_labels`` (a plugin's) still climbs,
    with ``kept_steps_right`` None instead of a crash."""
    from roadmap.app.ladder import _Ladder

    config = LadderConfig(levels=[2, 3], seed_levels=[2], search_problems=4, selection="verified",
                          search={"method": "bon", "budget": 2, "temperature": 1.0, "shard_size": 2})
    ladder = _Ladder(config, tmp_path, say=lambda s: None)
    oracle = _ArithOracle(ArithTask(digits=2, solution_format="carry"))
    monkeypatch.setattr(ladder, "policy", lambda k: oracle)
    monkeypatch.delattr(ArithTask, "step_labels")
    (tmp_path / "iter_1").mkdir()
    out = ladder.search(1, [3])
    assert out["levels"]["3"]["kept"] == 4 and out["levels"]["3"]["steps_right"] is None
    assert out["kept_steps_right"] is None and out["kept_answer_right"] == 1.0
