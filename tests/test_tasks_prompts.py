"""Tests of prompt formats (roadmap.core.tasks.prompts): chat templates of real model families, few-shot
prompts, chat-style reference solutions in every task, recipes' prompt: section, and tasks by import path."""

from __future__ import annotations

import json

import pytest

from roadmap.core.errors import ConfigError
from roadmap.core.tasks import (
    DEFAULT_SYSTEM_PROMPT,
    ArithTask,
    GSM8KTask,
    GSMSymbolicTask,
    Math500Task,
    PromptFormat,
    Task,
    get_task,
)

GENERATION_PROMPT = {"qwen2": "<|im_start|>assistant\n", "llama3": "<|start_header_id|>assistant<|end_header_id|>\n\n"}
CHAT = PromptFormat(kind="chat")


@pytest.fixture(scope="module")
def standins(tmp_path_factory):
    """family -> (folder, tokenizer) of the qwen2, llama3 and gpt2 stand-ins."""
    from transformers import AutoTokenizer

    from policy_init.standins import build_standin

    root = tmp_path_factory.mktemp("standins")
    out = {}
    for family in ("qwen2", "llama3", "gpt2"):
        folder = build_standin(family, root / family)
        out[family] = (folder, AutoTokenizer.from_pretrained(folder))
    return out


def _rows(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def file_tasks(tmp_path_factory):
    """gsm8k and math500 from local files, as in tests/test_tasks_gsm.py and test_tasks_math500.py."""
    root = tmp_path_factory.mktemp("data")
    gsm = [{"question": f"Sam has {i} apples and buys 3 more. How many?",
            "answer": f"Sam had {i} apples.\n{i}+3=<<{i}+3={i + 3}>>{i + 3}\n#### {i + 3:,}"} for i in range(995, 1040)]
    math = [{"problem": f"What is ${i}+1$?", "solution": f"We add.\n\n${i}+1=\\boxed{{{i + 1}}}$.",
             "answer": str(i + 1)} for i in range(40)]
    math.append({"problem": "Simplify $\\frac{2}{4}$.", "solution": "Divide by 2.\n\nIt is $\\boxed{\\frac{1}{2}}$.",
                 "answer": "\\frac{1}{2}"})
    return [GSM8KTask(source=_rows(root / "gsm.jsonl", gsm)), Math500Task(source=_rows(root / "m.jsonl", math))]


@pytest.mark.parametrize("family", ["qwen2", "llama3"])
def test_chat_prompt_has_the_system_prompt_and_ends_with_the_generation_prompt(standins, family):
    _, tok = standins[family]
    task = ArithTask().set_prompt_format(CHAT, tok)
    p = task.problems("test", n=1)[0]
    text = task.prompt(p)
    assert DEFAULT_SYSTEM_PROMPT in text and f"Compute {p.question}." in text
    assert text.endswith(GENERATION_PROMPT[family])
    assert text == tok.apply_chat_template(
        [{"role": "system", "content": DEFAULT_SYSTEM_PROMPT}, {"role": "user", "content": f"Compute {p.question}."}],
        tokenize=False, add_generation_prompt=True)
    assert task.step_delimiter == "\n\n" and task.prompt_format == CHAT
    own = ArithTask().set_prompt_format(PromptFormat(kind="chat", system_prompt="Be brief."), tok).prompt(p)
    assert "Be brief." in own and DEFAULT_SYSTEM_PROMPT not in own
    assert DEFAULT_SYSTEM_PROMPT not in ArithTask().set_prompt_format(PromptFormat(kind="chat", system_prompt=""),
                                                                       tok).prompt(p)


def test_llama3_chat_prompt_has_one_bos_in_training(standins):
    _, tok = standins["llama3"]
    task = ArithTask().set_prompt_format(CHAT, tok)
    p = task.problems("train", n=1)[0]
    assert task.prompt(p).startswith("<|begin_of_text|>") and task.prompt(p).count("<|begin_of_text|>") == 1
    prompt, completion = task.training_pair(p, task.reference_solution(p))
    assert completion == task.reference_solution(p) + "<|eot_id|>"
    ids = tok(prompt + completion)["input_ids"]  # as TRL encodes a string row: with special tokens
    assert ids.count(tok.bos_token_id) == 1 and ids[0] == tok.bos_token_id
    qwen = ArithTask().set_prompt_format(CHAT, standins["qwen2"][1])
    assert qwen.training_pair(p, "x") == (qwen.prompt(p), "x<|im_end|>")
    plain = ArithTask()
    assert plain.training_pair(p, "x") == (plain.prompt(p), "x")


def test_sft_rows_use_the_bound_format(standins):
    from policy_init.sft import sft_dataset

    task = ArithTask().set_prompt_format(CHAT, standins["qwen2"][1])
    rows = sft_dataset(task, n=3)
    assert all(r["prompt"].endswith(GENERATION_PROMPT["qwen2"]) for r in rows)
    assert all(r["completion"].endswith("$.<|im_end|>") and "\n\n" in r["completion"] for r in rows)


def test_chat_needs_a_chat_template(standins):
    folder, tok = standins["gpt2"]
    with pytest.raises(ConfigError, match=r"has none; use --prompt-format plain") as err:
        ArithTask().set_prompt_format(CHAT, tok)
    assert str(folder) in str(err.value)
    with pytest.raises(ConfigError, match="needs the policy's tokenizer"):
        ArithTask().set_prompt_format(CHAT)


def test_a_template_refusing_system_turns_gets_the_system_prompt_in_the_user_turn(standins):
    import copy

    tok = copy.deepcopy(standins["qwen2"][1])
    tok.chat_template = ("{%- if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
                         "{%- endif %}{%- for m in messages %}<turn>{{ m['role'] }}\n{{ m['content'] }}</turn>\n"
                         "{%- endfor %}{%- if add_generation_prompt %}<turn>model\n{%- endif %}")
    task = ArithTask().set_prompt_format(CHAT, tok)
    p = task.problems("test", n=1)[0]
    assert task.prompt(p) == f"<turn>user\n{DEFAULT_SYSTEM_PROMPT}\n\nCompute {p.question}.</turn><turn>model"
    tok.chat_template = "{{ raise_exception('broken template') }}"
    with pytest.raises(ConfigError, match=r"failed on a prompt, with a system turn \(broken template\).*--prompt-format plain"):
        task.prompt(p)


def test_plain_fewshot_prompt_holds_k_solved_train_problems_and_never_the_problem():
    task = ArithTask().set_prompt_format(PromptFormat(kind="fewshot", shots=3))
    train = ArithTask().problems("train", n=4, seed=0)
    test = task.problems("test", n=5)
    for p in test:
        text = task.prompt(p)
        blocks = text.split("\n\n")
        assert len(blocks) == 4 and blocks[-1] == f"{p.question}\n"
        assert blocks[:3] == [f"{s.question}\n{ArithTask().reference_solution(s)}" for s in train[:3]]
        assert text.count(p.question) == 1
    # a train problem among the shots is left out, and the prompt still has 3 shots
    first = task.prompt(train[0]).split("\n\n")
    assert len(first) == 4 and train[0].question not in "".join(first[:3]) and first[2].startswith(train[3].question)
    assert ArithTask().set_prompt_format(PromptFormat(kind="fewshot")).prompt(test[0]).count("Answer:") == 4
    again = ArithTask().set_prompt_format(PromptFormat(kind="fewshot", shots=3))
    assert [again.prompt(p) for p in test] == [task.prompt(p) for p in test]  # deterministic
    assert task.reference_solution(test[0]) == ArithTask().reference_solution(test[0])  # plain solutions


def test_chat_fewshot_puts_shots_as_prior_turns(standins):
    task = GSMSymbolicTask().set_prompt_format(PromptFormat(kind="chat", shots=2), standins["qwen2"][1])
    p = task.problems("test", n=1)[0]
    text = task.prompt(p)
    shots = GSMSymbolicTask().problems("train", n=2, seed=0)
    assert text.count("<|im_start|>user\n") == 3 and text.count("<|im_start|>assistant\n") == 3
    for s in shots:
        assert f"<|im_start|>user\n{s.question}<|im_end|>\n<|im_start|>assistant\n{task.reference_solution(s)}<|im_end|>" \
            in text
    assert text.count(p.question) == 1 and text.endswith(f"{p.question}<|im_end|>\n<|im_start|>assistant\n")


def _check_chat_references(task, problems):
    assert task.step_delimiter == "\n\n"
    for p in problems:
        ref = task.reference_solution(p)
        assert ref.endswith(f"Therefore, the final answer is $\\boxed{{{p.answer}}}$.")
        assert task.split_steps(ref) == [*p.steps, f"Therefore, the final answer is $\\boxed{{{p.answer}}}$."]
        assert task.extract_answer(ref) is not None and task.answers_match(task.extract_answer(ref), p.answer)
        assert task.is_correct(p, ref)
        assert not task.is_correct(p, task.format_solution(p.steps, "12345678"))


def test_chat_reference_solutions_are_correct_in_every_task(standins, file_tasks):
    tok = standins["qwen2"][1]
    for task in [ArithTask(), GSMSymbolicTask(), *file_tasks]:
        task.set_prompt_format(CHAT, tok)
        problems = task.problems("train", n=8, seed=1) + task.problems("test", n=3, seed=1)
        _check_chat_references(task, problems)
        assert task.prompt(problems[0]).endswith(GENERATION_PROMPT["qwen2"])


def test_gsm8k_comma_answers_boxed_under_chat(standins, file_tasks):
    gsm = GSM8KTask(source=file_tasks[0].source).set_prompt_format(CHAT, standins["qwen2"][1])
    p = next(p for p in gsm.problems("train") if p.answer == "1000")
    assert gsm.is_correct(p, "So 997+3 = 1000.\n\nTherefore, the final answer is $\\boxed{1,000}$.")


def test_step_delimiter_and_plain_default():
    task = ArithTask()
    p = task.problems("test", n=1)[0]
    assert task.prompt(p) == f"{p.question}\n" and task.step_delimiter == "\n"
    task.set_prompt_format(PromptFormat())
    assert task.prompt(p) == f"{p.question}\n" and task.reference_solution(p).endswith(f"\nAnswer: {p.answer}")
    task.set_prompt_format(PromptFormat(step_delimiter=" ; "))
    assert task.reference_solution(p) == " ; ".join([*p.steps, f"Answer: {p.answer}"])
    assert task.split_steps(task.reference_solution(p)) == [*p.steps, f"Answer: {p.answer}"]
    assert ArithTask.step_delimiter == "\n"  # the class keeps its own


@pytest.mark.parametrize("kwargs, message", [
    ({"kind": "chatml"}, r"kind='chatml' is unknown; use one of \('plain', 'chat', 'fewshot'\)"),
    ({"kind": "fewshot", "shots": 0}, "no shots"),
    ({"kind": "plain", "shots": 2}, "shots need kind fewshot"),
    ({"kind": "chat", "shots": -1}, "negative"),
    ({"kind": "chat", "step_delimiter": ""}, "step_delimiter=''"),
    ({"kind": "plain", "system_prompt": "hi"}, "needs kind chat"),
])
def test_bad_prompt_formats_are_refused(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        PromptFormat(**kwargs)


def test_recipe_prompt_section_is_typed_and_checked(tmp_path):
    from roadmap.app.loop_config import LoopConfig, RecipeError

    config = LoopConfig(policy=str(tmp_path), prompt={"kind": "chat", "shots": 1})
    assert config.prompt_format == PromptFormat(kind="chat", shots=1)
    assert LoopConfig(policy=str(tmp_path)).prompt_format == PromptFormat()
    with pytest.raises(RecipeError, match=r"prompt \(PromptFormat\): unknown keys \['shot'\] \(did you mean 'shots'"):
        LoopConfig(policy=str(tmp_path), prompt={"shot": 1})
    with pytest.raises(RecipeError, match=r"prompt.shots='2' is a string"):
        LoopConfig(policy=str(tmp_path), prompt={"kind": "chat", "shots": "2"})
    with pytest.raises(RecipeError, match="kind='xml' is unknown"):
        LoopConfig(policy=str(tmp_path), prompt={"kind": "xml"})


USER_TASK = '''
from roadmap.core.tasks import ArithTask, Task

class DoubledArith(ArithTask):
    name = "doubled_arith"

    def prompt(self, problem):  # an override of prompt is the plain prompt
        return "Solve: " + problem.question + "\\n"

NOT_A_TASK = 3
'''


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    (tmp_path / "my_user_tasks.py").write_text(USER_TASK)
    monkeypatch.syspath_prepend(str(tmp_path))
    return "my_user_tasks"


def test_task_by_import_path(user_module, standins):
    task = get_task(f"{user_module}:DoubledArith", digits=1)
    assert isinstance(task, Task) and task.name == "doubled_arith" and task.config.digits == 1
    p = task.problems("test", n=1)[0]
    assert task.prompt(p) == f"Solve: {p.question}\n"
    task.set_prompt_format(CHAT, standins["qwen2"][1])
    assert task.prompt(p).endswith(GENERATION_PROMPT["qwen2"]) and "Solve:" not in task.prompt(p)


@pytest.mark.parametrize("path, message", [
    ("no_such_module_xyz:Task", r"module 'no_such_module_xyz' cannot be imported \(it is not found\); put its folder "
                                "on PYTHONPATH"),
    ("{m}:Missing", r"module 'my_user_tasks' has no attribute 'Missing'"),
    ("{m}:NOT_A_TASK", r"NOT_A_TASK is 3, not a Task subclass"),
    ("{m}:", r"is not an import path; write it as package.module:ClassName"),
])
def test_bad_import_paths_say_what_is_wrong(user_module, path, message):
    with pytest.raises(ConfigError, match=message):
        get_task(path.format(m=user_module))


def test_recipe_takes_an_import_path(user_module, tmp_path):
    from roadmap.app.loop_config import LoopConfig, RecipeError

    assert LoopConfig(policy=str(tmp_path), task=f"{user_module}:DoubledArith").task == f"{user_module}:DoubledArith"
    with pytest.raises((RecipeError, ConfigError), match="has no attribute 'Nope'"):
        LoopConfig(policy=str(tmp_path), task=f"{user_module}:Nope")


def test_expert_iteration_rows_from_trees_train_like_sft_rows(standins):
    """learning.data.sft_rows (expert iteration's data) encodes a chat tree's prompt with one BOS and
    ends the completion with the end-of-turn token, exactly as SFT on reference solutions does."""
    from learning.data import sft_rows

    tok = standins["llama3"][1]
    task = ArithTask().set_prompt_format(CHAT, tok)
    p = task.problems("train", n=1)[0]
    good = task.reference_solution(p)
    row = {"problem_id": p.id, "question": p.question, "reference": p.answer, "prompt": task.prompt(p),
           "candidates": [good], "candidate_correct": [True], "scores": [], "tree": None, "usage": {}}
    data = sft_rows([row], task=task)
    assert (data[0]["prompt"], data[0]["completion"]) == task.training_pair(p, good)
    ids = tok(data[0]["prompt"] + data[0]["completion"])["input_ids"]
    assert ids.count(tok.bos_token_id) == 1 and data[0]["completion"].endswith("<|eot_id|>")
