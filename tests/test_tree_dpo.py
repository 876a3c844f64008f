"""learning.tree_dpo on a tiny model: DPO on solution pairs widens the chosen-over-rejected margin."""

from __future__ import annotations

import pytest
from fakes import arith_rows, likelihood_margin

from learning import TreeDPOConfig, solution_pairs, tree_dpo_step


def test_tree_dpo_widens_the_chosen_rejected_margin(tiny_dir, arith_task, tmp_path):
    rows = arith_rows(arith_task)
    _, before = likelihood_margin(tiny_dir, rows)
    pairs = solution_pairs(rows)
    res = tree_dpo_step(tiny_dir, pairs, TreeDPOConfig(output_dir=str(tmp_path / "dpo"), epochs=20,
                                                       learning_rate=2e-3, batch_size=4))
    _, after = likelihood_margin(tmp_path / "dpo", rows)
    assert res["pairs"] == 4 and res["final_loss"] < res["first_loss"]
    assert after > before + 1


def test_dpo_prompts_keep_the_bos_that_sampling_puts_first(tiny_dir):
    """TRL's collator encodes prompts without special tokens; plain prompts must still start with BOS."""
    from datasets import Dataset
    from transformers import AutoTokenizer

    from learning.tree_dpo import with_sampling_bos
    from policy_init.standins import build_standin_tokenizer

    tok = AutoTokenizer.from_pretrained(tiny_dir)
    pairs = Dataset.from_dict({"prompt": ["12+3\n", "7-4\n1"], "chosen": ["a", "b"], "rejected": ["c", "d"]})
    fixed = with_sampling_bos(pairs, tok)
    for before, after in zip(pairs["prompt"], fixed["prompt"]):
        sampled = tok(before).input_ids  # how HFPolicy and SFT encode the prompt: BOS first
        assert sampled[0] == tok.bos_token_id
        assert tok(after, add_special_tokens=False).input_ids == sampled  # how TRL's DPO collator encodes it
    # a chat prompt whose template already writes BOS is left alone (no doubled BOS)
    chat = build_standin_tokenizer("llama3")
    text = chat.apply_chat_template([{"role": "user", "content": "1+1"}], tokenize=False, add_generation_prompt=True)
    kept = with_sampling_bos(Dataset.from_dict({"prompt": [text], "chosen": ["2"], "rejected": ["3"]}), chat)
    assert kept["prompt"] == [text]
    assert chat(text, add_special_tokens=False).input_ids.count(chat.bos_token_id) == 1


def test_step_values_other_than_q_or_exact_are_refused():
    from roadmap.core.errors import ConfigError

    assert TreeDPOConfig(step_values="exact").step_values == "exact"
    with pytest.raises(ConfigError, match="step_values='value'.*q, exact"):
        TreeDPOConfig(step_values="value")
