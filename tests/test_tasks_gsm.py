"""Tests of the GSM8K-format tasks (gsm8k from local files / a fake Hub, gsm_symbolic from reasoning-gym)."""

import json
import logging
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from roadmap.core.tasks import (  # noqa: E402
    TASKS,
    BadRowError,
    GSM8KTask,
    GSMSymbolicTask,
    SourceUnavailableError,
    Task,
    get_task,
    register_task,
)
from roadmap.core.tasks._numeric import extract_hash_answer, normalize_number, split_hash_solution  # noqa: E402

NATALIA = {
    "question": "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
    "How many clips did Natalia sell altogether in April and May?",
    "answer": "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n"
    "Natalia sold 48+24 = <<48+24=72>>72 clips altogether in April and May.\n#### 72",
}
WENG = {
    "question": "Weng earns $12 an hour for babysitting. Yesterday, she just did 50 minutes of babysitting. "
    "How much did she earn?",
    "answer": "Weng earns 12/60 = $<<12/60=0.2>>0.2 per minute.\n"
    "Working 50 minutes, she earned 0.2 x 50 = $<<0.2*50=10>>10.\n#### 10",
}
COMMA = {
    "question": "A farm has 40 cows and each gives 40 liters of milk. How many liters are there in total?",
    "answer": "40 cows give 40*40 = <<40*40=1600>>1600 liters.\n#### 1,600",
}
NEGATIVE = {
    "question": "The temperature was 3 degrees and fell by 8 degrees. What is the temperature now?",
    "answer": "3-8 = <<3-8=-5>>-5\n#### -5",
}
DECIMAL = {
    "question": "A pen costs $1.25 and Tom buys 2 pens. How much does he pay?",
    "answer": "2*1.25 = <<2*1.25=2.5>>2.5\n#### 2.50",
}
GOOD = [NATALIA, WENG, COMMA, NEGATIVE, DECIMAL]
NO_HASH = {"question": "A row whose answer has no final line. How many?", "answer": "It is 5."}
NOT_NUMBER = {"question": "A row whose final answer is a word. Which?", "answer": "It is blue.\n#### blue"}


def extra_rows(k: int) -> list[dict]:
    return [
        {
            "question": f"Sam has {i} apples and buys 3 more. How many?",
            "answer": f"{i}+3=<<{i}+3={i + 3}>>{i + 3}\n#### {i + 3}",
        }
        for i in range(k)
    ]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


# --- answer format -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [("1,234.50", "1234.5"), ("$1,234.50.", "1234.5"), ("-5", "-5"), ("$-5", "-5"), ("8.0", "8"), ("72.", "72"),
     ("-0", "0"), (" 42 ", "42"), ("12 clips", None), ("abc", None), ("", None), ("--5", None)],
)  # fmt: skip
def test_normalize_number(text, expected):
    assert normalize_number(text) == expected


def test_extract_hash_answer_is_strict():
    assert extract_hash_answer("steps\n#### 72") == "72"
    assert extract_hash_answer("#### 1\nmore\n#### $1,200.") == "1200"  # the last one counts
    assert extract_hash_answer("####-3") == "-3"
    assert extract_hash_answer("#### 72 clips") is None
    assert extract_hash_answer("The answer is 72") is None
    assert extract_hash_answer("") is None


def test_split_hash_solution_strips_calculator_annotations():
    steps, answer = split_hash_solution(NATALIA["answer"])
    assert steps == [
        "Natalia sold 48/2 = 24 clips in May.",
        "Natalia sold 48+24 = 72 clips altogether in April and May.",
    ]
    assert answer == "72"
    with pytest.raises(BadRowError, match="no final '#### N' line"):
        split_hash_solution(NO_HASH["answer"])
    with pytest.raises(BadRowError, match="'blue'.*not a number"):
        split_hash_solution(NOT_NUMBER["answer"])


@pytest.mark.parametrize(
    "predicted, reference, same",
    [("1,234.50", "1234.5", True), ("$72", "72", True), ("72.", "72", True), ("-5", "5", False), ("2.50", "2.5", True),
     ("0.5", "\\frac{1}{2}", True), ("73", "72", False)],
)  # fmt: skip
def test_answers_match(predicted, reference, same):
    assert GSM8KTask().answers_match(predicted, reference) is same
    assert GSMSymbolicTask().answers_match(predicted, reference) is same


# --- gsm8k from local sources ----------------------------------------------------------------


def test_jsonl_file_problems_and_solution_format(tmp_path):
    task = GSM8KTask(source=str(write_jsonl(tmp_path / "gsm.jsonl", GOOD + extra_rows(40))))
    train, test = task.problems("train"), task.problems("test")
    assert len(train) + len(test) == 45 and train and test
    assert not {p.question for p in train} & {p.question for p in test}
    by_q = {p.question: p for p in train + test}
    nat = by_q[NATALIA["question"]]
    assert nat.answer == "72" and nat.steps[0] == "Natalia sold 48/2 = 24 clips in May."
    assert by_q[COMMA["question"]].answer == "1600"
    assert by_q[NEGATIVE["question"]].answer == "-5"
    assert by_q[DECIMAL["question"]].answer == "2.5"
    assert task.prompt(nat) == f"Question: {NATALIA['question']}\nAnswer:\n"
    ref = task.reference_solution(nat)
    assert ref.endswith("\n#### 72") and task.split_steps(ref)[:2] == list(nat.steps)
    for p in train + test:
        assert task.is_correct(p, task.reference_solution(p))
    assert task.is_correct(nat, "48/2=24\n48+24=72\n#### 72.")
    assert not task.is_correct(nat, "48+48=96\n#### 96")
    assert not task.is_correct(nat, "The answer is 72")
    assert task.is_correct(by_q[COMMA["question"]], "#### 1600")


def test_ids_are_stable_and_order_is_seeded(tmp_path):
    path = write_jsonl(tmp_path / "gsm.jsonl", GOOD + extra_rows(60))
    a, b = GSM8KTask(source=path), GSM8KTask(source=path)
    assert a.problems("train", seed=0) == b.problems("train", seed=0)
    assert [p.id for p in a.problems("train", seed=0)] != [p.id for p in a.problems("train", seed=1)]
    assert sorted(p.id for p in a.problems("train", seed=1)) == sorted(p.id for p in b.problems("train", seed=0))
    assert a.problems("train", n=5, seed=0) == a.problems("train", seed=0)[:5]
    assert len({p.id for p in a.problems("train") + a.problems("test")}) == 65


def test_parquet_file_and_json_file_read_like_jsonl(tmp_path):
    rows = GOOD + extra_rows(20)
    pd.DataFrame(rows).to_parquet(tmp_path / "gsm.parquet")
    (tmp_path / "gsm.json").write_text(json.dumps(rows))
    ref = GSM8KTask(source=write_jsonl(tmp_path / "gsm.jsonl", rows)).problems("test")
    assert GSM8KTask(source=tmp_path / "gsm.parquet").problems("test") == ref
    assert GSM8KTask(source=tmp_path / "gsm.json").problems("test") == ref


def test_hub_layout_folder(tmp_path):
    main = tmp_path / "gsm8k" / "main"
    main.mkdir(parents=True)
    train_rows = [NATALIA, WENG, COMMA, NEGATIVE] + extra_rows(5)
    test_rows = [DECIMAL, NATALIA]  # NATALIA is in both: it must leave train
    pd.DataFrame(train_rows).to_parquet(main / "train-00000-of-00001.parquet")
    pd.DataFrame(test_rows).to_parquet(main / "test-00000-of-00001.parquet")
    task = GSM8KTask(source=tmp_path / "gsm8k")
    train, test = task.problems("train"), task.problems("test")
    assert {p.question for p in test} == {DECIMAL["question"], NATALIA["question"]}
    assert len(train) == 8 and NATALIA["question"] not in {p.question for p in train}


def test_folder_with_jsonl_files_and_no_config_subfolder(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", [NATALIA, WENG])
    write_jsonl(tmp_path / "test.jsonl", [COMMA])
    task = GSM8KTask(source=str(tmp_path))
    assert [p.answer for p in task.problems("test")] == ["1600"]
    assert len(task.problems("train")) == 2


def test_bad_rows_raise_naming_the_row_or_are_skipped(tmp_path, caplog):
    path = write_jsonl(
        tmp_path / "gsm.jsonl", [NATALIA, NO_HASH, WENG, NOT_NUMBER, {"question": "", "answer": "#### 1"}]
    )
    with pytest.raises(
        BadRowError, match=r"row 1 is unusable: the solution has no final '#### N' line.*on_bad_row='skip'"
    ):
        GSM8KTask(source=path).problems("train")
    caplog.set_level(logging.WARNING)
    task = GSM8KTask(source=path, on_bad_row="skip")
    assert len(task.problems("train")) + len(task.problems("test")) == 2
    assert "skipped 3 unusable row(s) of 5" in caplog.text
    with pytest.raises(ValueError, match="on_bad_row='ignore'"):
        GSM8KTask(on_bad_row="ignore")


def test_hub_path_uses_load_dataset(monkeypatch):
    import datasets

    calls = []

    def fake_load_dataset(path, name=None, split=None, **kwargs):
        calls.append((path, name, split))
        rows = [NATALIA, WENG] if split == "train" else [COMMA]
        return datasets.Dataset.from_list(rows)

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    task = GSM8KTask()
    assert [p.answer for p in task.problems("test")] == ["1600"]
    assert calls == [("openai/gsm8k", "main", "train"), ("openai/gsm8k", "main", "test")]
    assert task.problems("train", n=1)[0].meta["origin"] == "openai/gsm8k[train]"


def test_unreachable_hub_says_to_pass_a_local_source(monkeypatch):
    import datasets

    def offline(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'openai/gsm8k' on the Hub (OfflineModeIsEnabled)")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(SourceUnavailableError, match="Hub is probably unreachable.*local file or folder"):
        GSM8KTask().problems("test")


def test_missing_local_source_raises(tmp_path):
    with pytest.raises(FileNotFoundError, match="gsm_missing.jsonl"):
        GSM8KTask(source=str(tmp_path / "gsm_missing.jsonl")).problems("test")
    with pytest.raises(FileNotFoundError, match="no split files"):
        GSM8KTask(source=tmp_path).problems("test")


@pytest.mark.parametrize("garbage", ["", "####", "#### ", "#### seventy-two", "\x00" * 10, "####" * 1000])
def test_garbage_never_raises(garbage):
    task = GSM8KTask()
    nat = task.parse_row(0, NATALIA, "inline")
    assert task.extract_answer(garbage) is None
    assert task.is_correct(nat, garbage) is False


# --- gsm_symbolic ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def symbolic() -> GSMSymbolicTask:
    return GSMSymbolicTask()


def test_gsm_symbolic_reference_solutions_are_correct(symbolic):
    problems = symbolic.problems("train", n=30, seed=0)
    assert len({p.question for p in problems}) == 30
    for p in problems:
        ref = symbolic.reference_solution(p)
        assert p.steps and not any("####" in s for s in p.steps)
        assert ref.endswith(f"\n#### {p.answer}")
        assert symbolic.extract_answer(ref) == p.answer
        assert symbolic.is_correct(p, ref)
        assert not symbolic.is_correct(p, symbolic.format_solution(p.steps, p.answer + "1"))
    assert "," not in "".join(p.answer for p in problems)


def test_gsm_symbolic_splits_disjoint_and_seeded(symbolic):
    train = symbolic.problems("train", n=100, seed=0)
    test = symbolic.problems("test", n=20, seed=0)
    assert not {p.question for p in train} & {p.question for p in test}
    assert symbolic.problems("train", n=10, seed=0) == train[:10]
    assert symbolic.problems("train", n=10, seed=1) != train[:10]


def test_gsm_symbolic_gives_up_with_a_clear_error():
    with pytest.raises(ValueError, match="found only .* raise attempts_per_problem"):
        GSMSymbolicTask(test_fraction=0.001, attempts_per_problem=1).problems("test", n=50)


def test_registry():
    assert {"arith", "gsm_symbolic", "gsm8k", "math500"} <= set(TASKS)
    assert isinstance(get_task("gsm8k", source="x.jsonl"), GSM8KTask)

    @register_task("toy_gsm")
    class Toy(GSMSymbolicTask):
        name = "toy_gsm"

    try:
        assert isinstance(get_task("toy_gsm"), Toy)
        with pytest.raises(ValueError, match="already registered"):
            register_task("toy_gsm")(GSM8KTask)
        with pytest.raises(TypeError, match="not a Task subclass"):
            register_task("bad")(dict)
        assert issubclass(Toy, Task)
    finally:
        TASKS.pop("toy_gsm")
