"""roadmap.core.lengths: one Lengths reaches every search, evaluation, label and loop phase; cut outputs are counted."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from roadmap.core import Lengths
from roadmap.core.types import Completion, Problem, Usage

ROOT = Path(__file__).resolve().parents[1]


class LongTask:
    """Prompt "Q\\n"; a solution is step lines "s1\\n" ... then "Answer: 42"; right when it states 42."""

    name = "long"
    step_delimiter = "\n"

    def problem(self, i: int = 0) -> Problem:
        return Problem(id=f"long-{i}", question="Q", answer="42")

    def prompt(self, problem: Problem) -> str:
        return "Q\n"

    def extract_answer(self, text: str) -> str | None:
        m = re.search(r"Answer: (\d+)", text)
        return m.group(1) if m else None

    def answers_match(self, predicted: str, reference: str) -> bool:
        return predicted == reference

    def split_steps(self, text: str) -> list[str]:
        return [s for s in text.split("\n") if s.strip()]

    def is_correct(self, problem: Problem, text: str) -> bool:
        return self.extract_answer(text) == problem.answer


class LongWriter:
    """A policy that writes ``steps`` step lines of ``width`` characters, then "Answer: 42" and EOS.

    One character is one token. It honours ``stop`` (cut just after the first stop string) and
    ``max_new_tokens`` (cut there: neither EOS nor stop, so ``Completion.truncated``).
    """

    def __init__(self, steps: int, width: int = 4) -> None:
        lines = [f"s{i + 1}"[: width - 1].ljust(width - 1, ".") + "\n" for i in range(steps)]
        self.solution = "".join(lines) + "Answer: 42"
        self.usage = Usage()
        self.limits: list[int] = []

    def sample(self, prefixes, n=1, *, stop=None, max_new_tokens=256, temperature=1.0, top_p=1.0, seed=None):
        self.limits.append(max_new_tokens)
        out = []
        for prefix in prefixes:
            done = prefix[len("Q\n"):]
            rest = self.solution[len(done):] if self.solution.startswith(done) else ""
            end = rest.find(stop) + len(stop) if stop and stop in rest else None
            text = rest[:end] if end is not None else rest
            finished, stopped = end is None, end is not None
            if len(text) > max_new_tokens:
                text, finished, stopped = text[:max_new_tokens], False, False
            row = [Completion(text, len(text), -0.1 * len(text), finished=finished, stopped=stopped)] * n
            self.usage.generated_tokens += len(text) * n
            self.usage.sampled_sequences += n
            out.append(row)
        return out

    def logprobs(self, prefixes, continuations):
        return [0.0] * len(prefixes)


class Judge:
    """A scorer and verifier: 1.0 for a solution that states 42, else 0.5 (partial) -- all in [0, 1]."""

    def score(self, problem, texts):
        return [1.0 if "Answer: 42" in t else 0.5 for t in texts]

    def score_batch(self, problems, solutions):
        return [self.score(p, s) for p, s in zip(problems, solutions)]


def test_bad_lengths_name_the_field_and_a_fix():
    with pytest.raises(ValueError, match=r"lengths.max_steps=0 must be a positive number of steps, e.g. 12"):
        Lengths(max_steps=0)
    with pytest.raises(ValueError, match=r"lengths.rollout_tokens=True must be a positive number of tokens"):
        Lengths(rollout_tokens=True)
    assert Lengths().to_dict() == {"max_step_tokens": 64, "max_steps": 12, "max_solution_tokens": 192,
                                   "rollout_tokens": 192, "train_max_length": 256, "rl_completion_tokens": 96}


@pytest.mark.parametrize("method,budget", [("beam", 2), ("dvts", 2), ("mcts", 16)])  # MCTS: a step per simulation
def test_an_answer_after_13_steps_is_found_with_20_steps_and_counted_truncated_with_12(method, budget):
    from roadmap.app.evaluate import evaluate_search

    task, problems = LongTask(), [LongTask().problem(0), LongTask().problem(1)]
    cut = evaluate_search(LongWriter(steps=13), task, problems, method=method, budget=budget, width=2, scorer=Judge(),
                          progress=False)  # the default: 12 steps
    assert cut.correct == 0 and cut.truncated >= len(problems) and cut.truncated_rate > 0
    assert all(r["answer"] is None and r["truncated"] >= 1 for r in cut.records)
    assert cut.lengths["max_steps"] == 12

    writer = LongWriter(steps=13)
    full = evaluate_search(writer, task, problems, method=method, budget=budget, width=2, scorer=Judge(),
                           progress=False, lengths=Lengths(max_steps=20, max_step_tokens=16))
    assert full.correct == len(problems) and full.truncated == 0
    assert set(writer.limits) == {16}  # every step call got max_step_tokens


def test_a_step_longer_than_max_step_tokens_ends_the_solution_truncated():
    from search import get_search
    from search.registry import SearchBudget

    task = LongTask()
    res = get_search("beam")(LongWriter(steps=3, width=10), task, [task.problem()], Judge(),
                             SearchBudget(budget=2, width=2, lengths=Lengths(max_step_tokens=6)))[0]
    assert res.answer is None and res.truncated == len(res.candidates) >= 1
    leaf = res.tree.nodes[-1]
    assert leaf.terminal and leaf.truncated and leaf.step == "s1...."


def test_a_494_token_best_of_n_solution_is_read_when_max_solution_tokens_allows_it():
    from roadmap.app.evaluate import evaluate, evaluate_search

    task = LongTask()
    writer = LongWriter(steps=121)  # 121 lines of 4 characters and "Answer: 42": 494 tokens
    assert len(writer.solution) == 494
    problems = [task.problem(0), task.problem(1)]
    cut = evaluate_search(writer, task, problems, method="bon", budget=3, scorer=Judge(), progress=False)
    assert cut.correct == 0 and cut.outputs == 6 and cut.truncated == 6 and cut.truncated_rate == 1.0
    read = evaluate_search(writer, task, problems, method="bon", budget=3, scorer=Judge(), progress=False,
                           lengths=Lengths(max_solution_tokens=512))
    assert read.correct == 2 and read.truncated == 0
    assert writer.limits[-1] == 512

    greedy = evaluate(writer, task, problems, method="greedy", progress=False)
    assert greedy.correct == 0 and greedy.truncated == 2 and greedy.records[0]["truncated"] == 1
    assert evaluate(writer, task, problems, method="majority", samples=2, progress=False,
                    lengths=Lengths(max_solution_tokens=494)).accuracy == 1.0


def test_mcts_rollouts_and_completion_follow_rollout_tokens_and_count_cut_rollouts():
    from roadmap.app.evaluate import run_search

    task = LongTask()
    short = run_search(LongWriter(steps=30), task, [task.problem()], "mcts", 2, Judge(), width=2,
                       verifier=Judge(), mcts_evaluation="rollout", lengths=Lengths(rollout_tokens=16))[0]
    assert short.answer is None and short.truncated >= 1
    long = run_search(LongWriter(steps=30), task, [task.problem()], "mcts", 2, Judge(), width=2,
                      verifier=Judge(), mcts_evaluation="rollout", lengths=Lengths(rollout_tokens=256))[0]
    assert long.truncated == 0 and "Answer: 42" in long.candidates[-1]


def test_train_time_search_bench_and_labels_report_truncation(tmp_path):
    from rewards import LabelConfig, label_solutions, rollout_summary, sample_solutions
    from roadmap.app.bench import TestTimeConfig, bench_test_time
    from roadmap.app.train_search import TrainSearchConfig, search_train
    from roadmap.core.errors import StaleOutputError

    task, problems = LongTask(), [LongTask().problem(i) for i in range(2)]
    summary = search_train(LongWriter(steps=13), task, problems, tmp_path / "search",
                           TrainSearchConfig(method="beam", budget=2, width=2), verifier=Judge(), progress=False)
    assert summary["truncated"] == summary["candidates"] > 0 and summary["truncated_rate"] == 1.0
    assert summary["config"]["lengths"]["max_steps"] == 12  # and the shards' provenance records it

    result = bench_test_time(LongWriter(steps=60), task, problems, tmp_path / "bench",
                             TestTimeConfig(methods=("greedy", "majority", "beam"), budgets=(2,), seeds=(0,)),
                             scorer=Judge(), progress=False)
    by = {c["method"]: c for c in result["cells"]}
    assert by["greedy"]["truncated"] == 2 and by["majority"]["truncated_rate"] == 1.0 and by["beam"]["truncated"] > 0
    assert by["greedy"]["provenance"]["lengths"] == {"max_solution_tokens": 192}
    with pytest.raises(StaleOutputError, match="lengths"):  # cells made under other limits are stale
        bench_test_time(LongWriter(steps=60), task, problems, tmp_path / "bench",
                        TestTimeConfig(methods=("greedy",), budgets=(2,), seeds=(0,),
                                       lengths=Lengths(max_solution_tokens=300)), progress=False)

    writer = LongWriter(steps=40)  # 170 tokens
    sols = sample_solutions(writer, task, problems, 1, lengths=Lengths(max_solution_tokens=100))
    assert writer.limits == [100] and all(len(s[0]) == 100 for s in sols)  # 25 lines, no answer
    ds = label_solutions(writer, task, problems, sols, LabelConfig(rollouts=2, lengths=Lengths(rollout_tokens=100)),
                         progress=False)
    summary = rollout_summary(ds)
    assert set(writer.limits[1:]) == {100}
    # rollouts from the first 17 steps are cut short of the answer, those from the later 8 reach it
    assert 0 < summary["truncated_rollouts"] < summary["rollouts"]
    assert summary["truncated_rate"] == summary["truncated_rollouts"] / summary["rollouts"]


def test_the_recipe_lengths_key_reaches_every_phase(tmp_path, monkeypatch):
    from roadmap.app.loop import _Run
    from roadmap.app.loop_config import LoopConfig, RecipeError

    lengths = {"max_step_tokens": 9, "max_steps": 20, "max_solution_tokens": 300, "rollout_tokens": 400,
               "train_max_length": 700, "rl_completion_tokens": 50}
    config = LoopConfig(policy="p", guide="prm", lengths=lengths, learn={"algorithm": "tree_dpo"})
    want = Lengths(**lengths)
    assert config.lengths_config == want
    for typed in (config.search_config, config.learn_config, config.label_config, config.reward_model_config):
        assert typed.lengths == want
    assert LoopConfig(policy="p", lengths=lengths).learn_config.lengths == want  # expert iteration
    assert LoopConfig(policy="p", lengths=lengths, learn={"algorithm": "grpo"}).learn_config.lengths == want

    with pytest.raises(RecipeError, match=r"lengths \(Lengths\): unknown keys \['max_tokens'\]"):
        LoopConfig(policy="p", lengths={"max_tokens": 5})
    with pytest.raises(RecipeError, match=r"search.lengths is set by the loop \(the top-level lengths: section"):
        LoopConfig(policy="p", search={"method": "mcts", "lengths": {"max_steps": 3}})
    with pytest.raises(RecipeError, match=r"lengths: lengths.max_steps=0 must be a positive number"):
        LoopConfig(policy="p", lengths={"max_steps": 0})

    # the phases that sample read it: evaluation and train-time search
    seen = {}
    writer = LongWriter(steps=3)
    monkeypatch.setattr(_Run, "hf_policy", lambda self, k: writer)
    monkeypatch.setattr("roadmap.app.train_search.search_train",
                        lambda policy, task, problems, out, cfg, **kw: seen.setdefault("search", cfg.lengths) and {})
    run = _Run(LoopConfig(policy="p", lengths=lengths, eval_problems=2), tmp_path, say=lambda _: None)
    assert run.evaluate(0)["truncated"] == 0 and writer.limits == [300]
    run.search(1)
    assert seen["search"] == want


LENGTH_LITERAL = re.compile(r"(tokens|length|max_steps|max_depth)\w*\s*(:\s*int\s*)?=\s*(field\(default=)?"
                            r"(192|128|96|64|12|256)\b")


def test_no_length_is_hard_wired_outside_lengths():
    """Every length limit of the code paths comes from roadmap.core.Lengths (its defaults live there only)."""
    files = [*ROOT.glob("search/*.py"), *ROOT.glob("learning/*.py"), ROOT / "policy_init" / "sft.py",
             *(ROOT / "rewards" / f for f in ("labels.py", "prm_training.py")),
             *(ROOT / "roadmap" / "app" / f for f in ("evaluate.py", "bench.py", "train_search.py", "loop.py", "loop_config.py",
                                              "cli.py", "cli_parser.py"))]
    hits = [f"{f.relative_to(ROOT)}: {m.group(0)}" for f in files for m in LENGTH_LITERAL.finditer(f.read_text())]
    assert hits == []
    assert LENGTH_LITERAL.search("max_new_tokens=192") and LENGTH_LITERAL.search("max_length: int = field(default=256")


def test_expert_iteration_hands_its_lengths_and_memory_fields_to_sft(monkeypatch, tmp_path):
    """SFT's max_length (Lengths.train_max_length) is reachable from expert iteration."""
    from datasets import Dataset

    from learning import ExpertIterationConfig, expert_iteration_step
    from policy_init.sft import SFTResult

    seen = {}

    def fake_warm_start(policy_dir, task, config, *, train_dataset=None):
        seen["config"] = config
        return SFTResult(output_dir=config.output_dir, steps=1, max_steps=1, train_tokens=1, wall_seconds=0.0,
                         tokens_per_second=1.0, stopped_by="budget", completed=True)

    monkeypatch.setattr("policy_init.sft.warm_start", fake_warm_start)
    data = Dataset.from_dict({"prompt": ["Q\n"], "completion": ["Answer: 42"], "id": ["long-0"]})
    config = ExpertIterationConfig(output_dir=str(tmp_path), lengths=Lengths(train_max_length=3072), batch_size=8,
                                   gradient_accumulation_steps=4, gradient_checkpointing=True, mixed_precision="bf16")
    expert_iteration_step(tmp_path, [], config, data=data)
    sft = seen["config"]
    assert sft.lengths.train_max_length == 3072 and sft.gradient_accumulation_steps == 4
    assert sft.gradient_checkpointing and sft.mixed_precision == "bf16"
