"""Chunked next-token log-probabilities equal the full-logits computation, with and without gradients."""

import pytest

from policy_init.standins import StandinConfig, build_standin
from roadmap.core.logits import next_token_logprobs


@pytest.fixture(scope="module", params=["qwen2", "gpt2"])
def model(request, tmp_path_factory):
    from transformers import AutoModelForCausalLM

    path = build_standin(request.param, tmp_path_factory.mktemp(request.param) / "m", StandinConfig(seed=3))
    return AutoModelForCausalLM.from_pretrained(path)


def _batch():
    import torch

    ids = torch.tensor([[0, 0, 5, 9, 11, 7], [3, 4, 5, 6, 7, 8]])
    mask = torch.tensor([[0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1]])
    return ids, mask, (mask.cumsum(-1) - 1).clamp(min=0)


def test_chunked_logprobs_equal_the_full_logits(model):
    import torch

    ids, mask, pos = _batch()
    with torch.no_grad():
        full = torch.log_softmax(model(input_ids=ids, attention_mask=mask, position_ids=pos).logits.float(), -1)
        ref = full[:, :-1].gather(-1, ids[:, 1:, None]).squeeze(-1) * mask[:, 1:]
        got = next_token_logprobs(model, ids, mask, pos, chunk_tokens=3)
    assert got.shape == (2, 5)
    assert torch.allclose(got, ref, atol=1e-5)
    assert (got[0, :1] == 0).all()  # targets that are padding are not scored


def test_chunked_logprobs_give_the_same_gradients(model):
    import torch

    ids, mask, pos = _batch()
    model.zero_grad()
    full = torch.log_softmax(model(input_ids=ids, attention_mask=mask, position_ids=pos).logits.float(), -1)
    (full[:, :-1].gather(-1, ids[:, 1:, None]).squeeze(-1) * mask[:, 1:]).sum().backward()
    ref = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    next_token_logprobs(model, ids, mask, pos, chunk_tokens=2).sum().backward()
    for p, g in zip(model.parameters(), ref):
        assert torch.allclose(p.grad, g, atol=1e-5)
