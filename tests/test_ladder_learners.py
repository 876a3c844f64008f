"""Tree-DPO and long chains of thought as the ladder's learners (roadmap.app.ladder_learners): recipe checks, pairs and
traces from searched samples, and one iteration of each end to end with no worked solution or step checker read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from roadmap.app.ladder import LadderConfig, load_ladder_recipe, run_ladder
from roadmap.app.ladder_learners import preference_pairs, sample_traces
from roadmap.app.loop_config import RecipeError
from roadmap.core.tasks import ArithTask

RECIPES = Path(__file__).resolve().parent.parent / "recipes"

TINY = dict(levels=[2, 3], seed_levels=[2], seed_problems=8,
            tiny={"hidden_size": 32, "num_heads": 2, "num_layers": 1, "intermediate_size": 64}, warm_start_steps=0,
            iterations=1, probe_problems=2, probe_samples=2, max_levels=1, search_problems=3,
            search={"method": "bon", "budget": 3, "temperature": 1.0, "shard_size": 4}, selection="agreement",
            learn_steps=2, batch_size=4, eval_problems=2, lengths={"max_solution_tokens": 24})

RUNG = ArithTask(digits=2, solution_format="carry").level_task(3)


def _row(pid, candidates, correct):
    return {"problem_id": pid, "prompt": "1+2+3\n", "question": "1+2+3", "reference": "6",
            "candidates": candidates, "candidate_correct": correct}


@pytest.mark.parametrize("learner, section, named", [
    ("tree_dpo", {"dpo": {"beta": -1.0}}, "dpo.beta"), ("tree_dpo", {"dpo": {"bogus": 1}}, "bogus"),
    ("tree_dpo", {"dpo": {"margin": 0.2}}, "dpo.margin"), ("tree_dpo", {"dpo": {"epochs": 3.0}}, "dpo.epochs"),
    ("tree_dpo", {"dpo": {"sft_weight": -0.5}}, "sft_weight"), ("tree_dpo", {"dpo": {"beta": "high"}}, "beta"),
    ("long_cot", {"long_cot": {"wrong_attempts": 0}}, "wrong_attempts"),
    ("long_cot", {"long_cot": {"bogus": 1}}, "bogus"),
    ("sft", {"dpo": {"beta": 0.2}}, "learner: tree_dpo"), ("sft", {"long_cot": {"wrong_attempts": 2}}, "long_cot"),
    ("tree_dpo", {"selection": "majority"}, "selection"), ("long_cot", {"control": "more_sft"}, "control"),
])
def test_bad_learner_sections_are_refused_in_one_line_naming_the_key(learner, section, named):
    with pytest.raises(RecipeError, match=named) as e:
        LadderConfig(learner=learner, **section)
    assert "\n" not in str(e.value)


def test_the_dpo_section_over_the_defaults():
    dc = LadderConfig(learner="tree_dpo", learn_steps=7, batch_size=16, dpo={"beta": 0.3}).dpo_config(seed=4)
    assert (dc.beta, dc.sft_weight, dc.batch_size, dc.seed, dc.epochs) == (0.3, 1.0, 16, 4, 1.0)


def test_recipes_load_with_their_learners():
    dpo, cot = load_ladder_recipe(RECIPES / "ladder_tree_dpo.yaml"), load_ladder_recipe(RECIPES / "ladder_long_cot.yaml")
    assert dpo.learner == "tree_dpo" and cot.learner == "long_cot"
    # a long trace is (wrong_attempts + 1) solutions: the recipe's lengths leave room for it
    assert cot.lengths_config.max_solution_tokens >= 2 * 192 * cot.long_cot_config().wrong_attempts


def test_pairs_skip_and_count_a_problem_with_no_wrong_sample():
    rows = [_row("a", ["1+2=3+3\n3+3=6\nAnswer: 6", "1+2=4+3\n4+3=7\nAnswer: 7", "garbage"], [True, False, False]),
            _row("b", ["1+2=3+3\n3+3=6\nAnswer: 6"] * 2, [True, True]),  # every sample right: no pair
            _row("c", ["x", "Answer: 5"], [False, False])]  # no kept solution: no pair
    pairs, counts = preference_pairs(rows, RUNG, "agreement", 3)
    assert counts == {"no_right": 1, "no_wrong": 1} and len(pairs) == 1
    assert pairs[0]["chosen"].startswith("1+2=3+3") and pairs[0]["rejected"].startswith("1+2=4+3")  # a finished one


def test_traces_write_wrong_attempts_then_the_kept_solution():
    rows = [_row("a", ["1+2=4+3\n4+3=7\nAnswer: 7", "garbage", "1+2=3+3\n3+3=6\nAnswer: 6"], [False, False, True]),
            _row("b", ["1+2=3+3\n3+3=6\nAnswer: 6", "unfinished 1+"], [True, False])]
    traces, counts = sample_traces(rows, RUNG, "agreement", 1, 3)
    assert counts == {"backtrack": 1, "clean": 1, "no_right": 0}
    lines = traces[0]["completion"].split("\n")
    assert lines[:2] == ["1+2=4+3", "4+3=7"]  # the wrong attempt, its answer line dropped
    assert RUNG.trace_event(lines[2]) == ("backtrack", 1)  # the task's own backtrack marker
    assert lines[3:6] == ["1+2=3+3", "3+3=6", "Answer: 6"] and RUNG.extract_answer(traces[0]["completion"]) == "6"
    assert traces[1]["completion"].startswith("1+2=3+3") and traces[1]["kind"] == "clean"  # unfinished: no attempt


def _answers_in_search(monkeypatch, calls):
    """Make the untrained policy's search hold right answers: the first sample of each problem becomes a bare
    right answer line, the second a finished wrong attempt, and every sample of the first problem right (no
    wrong sample). No worked solution is written: a bare answer line is what a policy may sample."""
    import roadmap.app.train_search as train_search

    real = train_search.search_train

    def spy(policy, task, problems, folder, *a, **kw):
        calls.extend(problems)
        out = real(policy, task, problems, folder, *a, **kw)
        path = Path(folder) / "trees.jsonl"
        rows = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
        for i, r in enumerate(rows):
            right = task.format_answer(r["reference"])
            wrong = f"1+1=2{task.step_delimiter}{task.format_answer(str(int(r['reference']) + 1))}"
            n = len(r["candidates"])
            r["candidates"] = [right] * n if i == 0 else [right, wrong, *r["candidates"][2:]]
            r["candidate_correct"] = [True] * n if i == 0 else [True, False, *r["candidate_correct"][2:]]
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        return out

    monkeypatch.setattr(train_search, "search_train", spy)


def _no_step_checker_in_learn(monkeypatch):
    import roadmap.app.ladder as ladder

    inside = []
    real_learn, real_labels, real_verdict = ladder._Ladder.learn, ArithTask.step_labels, ArithTask.step_verdict

    def learn(self, k):
        inside.append(k)
        try:
            return real_learn(self, k)
        finally:
            inside.pop()

    def guard(real):
        def f(self, *a, **kw):
            assert not inside, "the learn phase read the step checker"
            return real(self, *a, **kw)
        return f

    monkeypatch.setattr(ladder._Ladder, "learn", learn)
    monkeypatch.setattr(ArithTask, "step_labels", guard(real_labels))
    monkeypatch.setattr(ArithTask, "step_verdict", guard(real_verdict))


def _worked_solutions_outside_seed(searched) -> set[str]:
    """The worked solutions of the searched problems (the ladder's search draws them with worked solutions and strips
    them; here they are drawn again, with the search's seed, to check that none reaches training)."""
    lv = {p.meta["operands"] for p in searched}.pop()
    full = ArithTask(digits=2, solution_format="carry").level_task(lv).problems(
        "train", n=TINY["search_problems"], seed=104729 + lv)
    assert [p.id for p in full] == [p.id for p in searched] and all(p.steps for p in full)
    return {ArithTask(digits=2, solution_format="carry").level_task(lv).reference_solution(p) for p in full}


@pytest.mark.slow
def test_tree_dpo_ladder_trains_on_its_own_pairs(tmp_path, monkeypatch):
    import learning.tree_dpo as tree_dpo

    searched, trained = [], []
    _answers_in_search(monkeypatch, searched)
    _no_step_checker_in_learn(monkeypatch)
    real_dpo = tree_dpo.tree_dpo_step

    def spy(policy_dir, pairs, config):
        trained.append((Path(policy_dir), list(pairs), config))
        return real_dpo(policy_dir, pairs, config)

    monkeypatch.setattr(tree_dpo, "tree_dpo_step", spy)
    out = tmp_path / "run"
    result = run_ladder(LadderConfig(learner="tree_dpo", **TINY), out, say=lambda s: None)
    assert searched and all(p.steps == () for p in searched)
    (start, pairs, config), = trained
    assert start == out / "iter_0" / "policy" and config.max_minutes is None and config.sft_weight == 1.0
    learn = json.loads((out / "iter_1" / "learn.done.json").read_text())
    assert learn["pairs"] == 2 and learn["no_wrong"] == 1 and learn["steps"] == 2  # 3 problems, one all right
    assert len(pairs) == 2 * config.batch_size  # the pairs cycled to learn_steps x batch_size rows
    trees = "".join(p.read_text() for p in (out / "iter_1" / "search").rglob("trees.jsonl"))
    worked = _worked_solutions_outside_seed(searched)
    for p in pairs:  # both sides are the policy's own (edited) samples, never a worked solution
        for side in (p["chosen"], p["rejected"]):
            assert json.dumps(side.strip())[1:-1] in trees and side.strip() not in worked
    row = result["iterations"][1]
    assert row["pairs"] == 2 and row["no_wrong"] == 1 and row["learn_tokens"] > 0
    report = (out / "report.md").read_text()
    assert "| pairs | no wrong | compute |" in report
    assert (out / "iter_1" / "policy" / "task.json").exists()


@pytest.mark.slow
def test_long_cot_ladder_trains_on_traces_with_replay(tmp_path, monkeypatch):
    import roadmap.app.ladder as ladder

    searched, trained = [], []
    _answers_in_search(monkeypatch, searched)
    _no_step_checker_in_learn(monkeypatch)
    real_sft = ladder._Ladder.sft

    def spy(self, k, init, rows, steps, lr):
        trained.append((k, list(rows)))
        return real_sft(self, k, init, rows, steps, lr)

    monkeypatch.setattr(ladder._Ladder, "sft", spy)
    out = tmp_path / "run"
    result = run_ladder(LadderConfig(learner="long_cot", **TINY), out, say=lambda s: None)
    (k, rows), = [t for t in trained if t[0] == 1]
    seed = {json.loads(x)["completion"] for x in (out / "seed.jsonl").read_text().splitlines()}
    traces = [json.loads(x) for x in (out / "iter_1" / "traces.jsonl").read_text().splitlines()]
    learn = json.loads((out / "iter_1" / "learn.done.json").read_text())
    assert learn["traces"] == 3 and learn["backtrack"] == 2 and learn["clean"] == 1 and learn["steps"] == 2
    assert len(rows) == 2 * 4 and any(r["completion"] in seed for r in rows)  # replay of the seed set
    worked = _worked_solutions_outside_seed(searched)
    for r in rows:
        if r["completion"] not in seed:
            assert r in traces and not any(w in r["completion"] for w in worked)
    back = next(t for t in traces if t["kind"] == "backtrack")["completion"].split("\n")
    assert back[0] == "1+1=2" and RUNG.trace_event(back[1])[0] == "backtrack"
    row = result["iterations"][1]
    assert row["traces"] == 3 and row["trace_tokens_mean"] > 0 and "with a wrong attempt" in (out / "report.md").read_text()


def test_tree_dpo_with_no_pair_keeps_the_policy_and_says_why(tmp_path, monkeypatch):
    """Every searched problem solved in every sample: no pair, no DPO run, the previous policy carried over."""
    from types import SimpleNamespace

    import learning.tree_dpo as tree_dpo
    from roadmap.app.ladder_learners import learn_tree_dpo

    monkeypatch.setattr(tree_dpo, "tree_dpo_step", lambda *a, **kw: pytest.fail("DPO ran without pairs"))
    (tmp_path / "iter_0" / "policy").mkdir(parents=True)
    (tmp_path / "iter_0" / "policy" / "config.json").write_text("{}")
    (tmp_path / "iter_1" / "search" / "L3").mkdir(parents=True)
    (tmp_path / "iter_1" / "search.done.json").write_text(json.dumps({"levels": {"3": {}}}))
    right = "1+2=3+3\n3+3=6\nAnswer: 6"
    rows = [_row(f"p{i}", [right, right], [True, True]) for i in range(3)]
    (tmp_path / "iter_1" / "search" / "L3" / "trees.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    said = []
    ladder = SimpleNamespace(c=LadderConfig(learner="tree_dpo", levels=[2, 3], seed_levels=[2]), dir=tmp_path,
                             rungs={3: RUNG}, say=said.append, save_task=lambda path: None)
    out = learn_tree_dpo(ladder, 1)
    assert (out["pairs"], out["no_wrong"], out["steps"]) == (0, 3, 0)
    assert (tmp_path / "iter_1" / "policy" / "config.json").exists() and any("no preference pair" in s for s in said)
