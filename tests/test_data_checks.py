"""Data files (issue 26, item 6): conflicting answers across files are refused naming both rows, asking for
more problems than a file holds warns with the count used, and characters outside a tokenizer's vocabulary
are reported (count, examples, file) rather than silently read as <unk>."""

from __future__ import annotations

import json
import logging

import pytest

from roadmap.core.tasks import BadRowError, GSM8KTask


def _rows(path, rows):
    path.write_text("".join(json.dumps({"question": q, "answer": f"{q} so\n#### {a}"}) + "\n" for q, a in rows))
    return path


def test_the_same_question_with_two_answers_in_two_files_is_refused_naming_both_rows(tmp_path, caplog):
    _rows(tmp_path / "train.jsonl", [("What is 2+2?", 4), ("What is 3+3?", 6)])
    _rows(tmp_path / "test.jsonl", [("What is 5+5?", 10), ("What is  3+3?", 7)])
    with pytest.raises(BadRowError, match=r"test.jsonl'? row 1 asks the question of .*train.jsonl'? row 1 with "
                                          r"another answer \('7', not '6'\)"):
        GSM8KTask(source=str(tmp_path)).problems("test")
    task = GSM8KTask(source=str(tmp_path), on_bad_row="skip")
    assert [p.answer for p in task.problems("test")] == ["10"]
    assert "dropped the later row" in caplog.text
    # the same answer written two ways is not a conflict (the train copy is dropped, as before)
    _rows(tmp_path / "test.jsonl", [("What is 5+5?", 10), ("What is 3+3?", "6.0")])
    assert len(GSM8KTask(source=str(tmp_path)).problems("train")) == 1


def test_asking_for_more_problems_than_a_file_holds_warns_once_with_the_count_used(tmp_path, caplog):
    source = _rows(tmp_path / "three.jsonl", [(f"What is {i}+1?", i + 1) for i in range(12)])
    task = GSM8KTask(source=str(source))
    held = len(task.problems("train"))
    with caplog.at_level(logging.WARNING):
        assert len(task.problems("train", n=50)) == held
        task.problems("train", n=50)
    assert caplog.text.count("asked for 50 train problems") == 1
    assert f"but it holds {held}; using those {held}" in caplog.text and "three.jsonl" in caplog.text
    caplog.clear()
    task.problems("train", n=held)
    assert "asked for" not in caplog.text


def test_characters_outside_the_vocabulary_are_reported_with_count_examples_and_file(tmp_path, caplog):
    from policy_init.tiny import build_char_tokenizer
    from roadmap.core.hf_text import report_unknown_characters, unknown_characters

    tokenizer = build_char_tokenizer()  # printable ASCII only
    assert unknown_characters(tokenizer, ["Tom has 5 apples.\n"]) == {}
    assert unknown_characters(tokenizer, ["5 € and 3 €, café"]) == {"€": 2, "é": 1}
    source = _rows(tmp_path / "euro.jsonl", [("Tom pays 5 € for 2 cafés. How much per café?", 2.5),
                                             ("What is 2+2?", 4)])
    task = GSM8KTask(source=str(source), test_fraction=0.5)
    problems = task.problems("train") + task.problems("test")
    with caplog.at_level(logging.WARNING):
        bad = report_unknown_characters(tokenizer, task, problems, "P", logging.getLogger("t"))
    assert bad["€"] >= 1 and bad["é"] >= 2
    assert "euro.jsonl" in caplog.text and "2 distinct character(s)" in caplog.text
    assert "'é' x" in caplog.text and "(first in gsm8k-" in caplog.text and "tokenizer of P" in caplog.text
    caplog.clear()
    clean = [p for p in problems if "2+2" in p.question]
    assert not report_unknown_characters(tokenizer, task, clean, "P", logging.getLogger("t")) and not caplog.text


def test_a_byte_level_bpe_writes_every_character_so_nothing_is_reported():
    from policy_init.tiny import build_bpe_tokenizer
    from roadmap.core.hf_text import unknown_characters

    tokenizer = build_bpe_tokenizer(["What is 2+2? 4\n"] * 20, vocab_size=300)
    assert unknown_characters(tokenizer, ["2+2 € 4, café"]) == {}
