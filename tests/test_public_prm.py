"""Public PRMs (rewards.public_prm) on tiny random stand-ins saved in exactly the published formats.

Each format's read positions and scores are checked against an independent forward pass that
computes the model card's formula at positions located by hand.
"""

from __future__ import annotations

import json
import shutil

import pytest

torch = pytest.importorskip("torch")

from standin_prms import build_qwen_prm_standin, build_shepherd_standin  # noqa: E402

from rewards import (  # noqa: E402
    PRM_FORMATS,
    PRMFormatError,
    ProcessRewardModel,
    PublicPRMScorer,
    QwenPRM,
    detect_prm_format,
    load_step_scorer,
)
from rewards.public_prm import QWEN_PRM_SYSTEM  # noqa: E402
from roadmap.core.backends import ModelOptions  # noqa: E402
from roadmap.core.errors import ConfigError  # noqa: E402
from roadmap.core.types import Problem  # noqa: E402

QUESTION = "Tom has 5 apples. Tom buys 3 more apples. How many apples does Tom have now?"
STEPS = ["Tom starts with 5 apples.", "After buying 3 more, Tom has 5 + 3 = 8 apples.", "The answer is 8."]

# The remote code of Qwen2.5-Math-PRM: a Qwen2 backbone and a two-logit head named as in the checkpoint.
@pytest.fixture(scope="module")
def shepherd_dir(tmp_path_factory):
    return build_shepherd_standin(tmp_path_factory.mktemp("prm"))


@pytest.fixture(scope="module")
def qwen_dir(tmp_path_factory):
    return build_qwen_prm_standin(tmp_path_factory.mktemp("prm"))


class _Task:
    """The one part of a Task a public PRM uses: its step delimiter ("\\n\\n", the chat convention)."""

    def split_steps(self, text):
        return [s for s in text.split("\n\n") if s.strip()]


def _problem():
    return Problem(id="p0", question=QUESTION, answer="8")


def _shepherd_reference(path, question, steps):
    """The Math-Shepherd model card's code, on the text written by hand."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer, model = AutoTokenizer.from_pretrained(path), AutoModelForCausalLM.from_pretrained(path).eval()
    output = "\n".join(f"Step {k}: {s} ки" for k, s in enumerate(steps, 1))
    candidate_tokens = tokenizer.encode("+ -")[1:]
    step_tag_id = tokenizer.encode("ки")[-1]
    input_id = torch.tensor([tokenizer.encode(f"{question} {output}")])
    with torch.no_grad():
        logits = model(input_id).logits[:, :, candidate_tokens]
    scores = logits.softmax(dim=-1)[:, :, 0]
    positions = (input_id[0] == step_tag_id).nonzero().flatten().tolist()
    return positions, scores[input_id == step_tag_id].tolist()


def _qwen_reference(path, question, steps):
    """Qwen2.5-Math-PRM's model card code, on the conversation written by hand (the stand-in's ChatML)."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path, trust_remote_code=True).eval()
    text = (f"<|im_start|>system\n{QWEN_PRM_SYSTEM}<|im_end|>\n<|im_start|>user\n{question}<|im_end|>\n"
            f"<|im_start|>assistant\n" + "<extra_0>".join(steps) + "<extra_0><|im_end|>\n")
    input_ids = torch.tensor([tokenizer.encode(text)])
    step_sep_id = tokenizer.encode("<extra_0>")[0]
    with torch.no_grad():
        logits = model(input_ids=input_ids)[0]
    positions = (input_ids[0] == step_sep_id).nonzero().flatten().tolist()
    return text, positions, torch.softmax(logits[0, positions].float(), -1)[:, 1].tolist()


def test_math_shepherd_reads_the_step_tags_as_the_model_card(shepherd_dir):
    scorer = load_step_scorer(shepherd_dir, _Task(), "min")
    prm = scorer.prm
    assert (prm.format, prm.number_steps) == ("math-shepherd", True)
    assert prm.tokenizer.convert_ids_to_tokens([prm.tag_id, prm.good_id, prm.bad_id]) == ["▁ки", "▁+", "▁-"]
    text = prm.format_text(QUESTION, STEPS)
    assert text == f"{QUESTION} Step 1: {STEPS[0]} ки\nStep 2: {STEPS[1]} ки\nStep 3: {STEPS[2]} ки"
    ids, positions = prm.encode(QUESTION, STEPS)
    ref_positions, ref_scores = _shepherd_reference(shepherd_dir, QUESTION, STEPS)
    assert positions == ref_positions and len(positions) == 3
    assert all(prm.tokenizer.convert_ids_to_tokens(ids[k]) == "▁ки" for k in positions)
    scores = prm.step_scores([QUESTION], [STEPS])[0]
    assert scores == pytest.approx(ref_scores, abs=1e-5)
    assert max(scores) - min(scores) > 1e-3  # the positions differ, so must the scores of a random model
    solution = "\n\n".join(STEPS)
    assert scorer.score(_problem(), [solution])[0] == pytest.approx(min(ref_scores), abs=1e-5)


def test_partial_solutions_get_a_score_per_step_in_one_padded_batch(shepherd_dir):
    scorer = load_step_scorer(shepherd_dir, _Task(), "last", prm_format="math-shepherd")
    _, full = _shepherd_reference(shepherd_dir, QUESTION, STEPS)
    prefixes = ["\n\n".join(STEPS[:k]) for k in (3, 1, 2)] + [""]
    got = scorer.score(_problem(), prefixes)
    # causal attention: the score of step k does not depend on later steps; no steps scores 0
    assert got == pytest.approx([full[2], full[0], full[1], 0.0], abs=1e-5)
    per_step = scorer.prm.step_scores([QUESTION] * 2, [STEPS[:2], STEPS])
    assert per_step[0] == pytest.approx(full[:2], abs=1e-5) and per_step[1] == pytest.approx(full, abs=1e-5)


def test_qwen_prm_reads_extra_0_inside_the_chat_template(qwen_dir):
    scorer = load_step_scorer(qwen_dir, _Task(), "min", options=ModelOptions(trust_remote_code=True))
    prm = scorer.prm
    assert isinstance(prm, QwenPRM) and type(prm.model).__name__ == "Qwen2ForProcessRewardModel"
    text, ref_positions, ref_scores = _qwen_reference(qwen_dir, QUESTION, STEPS)
    assert prm.format_text(QUESTION, STEPS) == text
    ids, positions = prm.encode(QUESTION, STEPS)
    assert positions == ref_positions and len(positions) == 3
    assert [prm.tokenizer.decode(ids[k]) for k in positions] == ["<extra_0>"] * 3
    scores = prm.step_scores([QUESTION], [STEPS])[0]
    assert scores == pytest.approx(ref_scores, abs=1e-5)
    assert max(scores) - min(scores) > 1e-3
    both = scorer.score_batch([_problem(), _problem()], [["\n\n".join(STEPS)], ["\n\n".join(STEPS[:1]), ""]])
    assert both == [[pytest.approx(min(ref_scores), abs=1e-5)], [pytest.approx(ref_scores[0], abs=1e-5), 0.0]]


def test_qwen_prm_loads_in_the_dtype_asked_for(qwen_dir):
    scorer = load_step_scorer(qwen_dir, _Task(), options=ModelOptions(dtype="bfloat16", trust_remote_code=True))
    assert next(scorer.prm.model.parameters()).dtype == torch.bfloat16
    _, _, ref = _qwen_reference(qwen_dir, QUESTION, STEPS)
    assert scorer.prm.step_scores([QUESTION], [STEPS])[0] == pytest.approx(ref, abs=0.05)


def test_detection_says_which_format_and_refuses_anything_else(shepherd_dir, qwen_dir, tiny_dir, tmp_path):
    assert PRM_FORMATS == ("auto", "roadmap", "ratio", "math-shepherd", "qwen-prm")
    from roadmap.app.cli_parser import PRM_FORMATS as CLI_FORMATS

    assert CLI_FORMATS == PRM_FORMATS
    ProcessRewardModel.from_policy(tiny_dir).save_pretrained(tmp_path / "ours")
    assert detect_prm_format(tmp_path / "ours") == "roadmap"
    assert detect_prm_format(shepherd_dir) == "math-shepherd"
    assert detect_prm_format(qwen_dir) == "qwen-prm"
    assert isinstance(load_step_scorer(tmp_path / "ours", _Task()).prm, ProcessRewardModel)
    with pytest.raises(PRMFormatError, match=r"(?s)policy.*reward_model\.json.*Qwen2ForProcessRewardModel.*--prm-format"):
        detect_prm_format(tiny_dir)
    renamed = shutil.copytree(shepherd_dir, tmp_path / "some-model")  # the step tag alone is not enough
    with pytest.raises(PRMFormatError, match=r"some-model.*not named for Math-Shepherd.*--prm-format math-shepherd"):
        detect_prm_format(renamed)
    assert isinstance(load_step_scorer(renamed, _Task(), prm_format="math-shepherd"), PublicPRMScorer)
    with pytest.raises(PRMFormatError, match="'ки'"):
        load_step_scorer(tiny_dir, _Task(), prm_format="math-shepherd")
    with pytest.raises(ConfigError, match="prm_format='shepherd' is unknown"):
        detect_prm_format(qwen_dir, "shepherd")


def test_qwen_prm_without_trust_remote_code_names_the_flag(qwen_dir):
    with pytest.raises(ConfigError, match=r"Qwen2\.5-Math-PRM.*modeling_qwen2_rm\.Qwen2ForProcessRewardModel.*"
                                          r"--trust-remote-code"):
        load_step_scorer(qwen_dir, _Task())


def test_a_text_past_the_position_limit_is_cut_and_its_later_steps_score_zero(shepherd_dir, qwen_dir, tiny_dir):
    long_steps = ["5 + 3 = 8 and so on"] * 200
    for path, options in ((shepherd_dir, None), (qwen_dir, ModelOptions(trust_remote_code=True))):
        prm = load_step_scorer(path, _Task(), options=options).prm
        ids, positions = prm.encode(QUESTION, long_steps)
        limit = prm.model.config.max_position_embeddings
        assert len(ids) > limit == 1024
        inside = sum(k < limit for k in positions)
        cut, short = prm.step_scores([QUESTION, QUESTION], [long_steps, long_steps[:inside]])
        assert len(cut) == 200 and cut[inside:] == [0.0] * (200 - inside) and prm.truncated == 1
        assert all(abs(a - b) < 1e-4 for a, b in zip(cut[:inside], short))  # what fits scores as uncut
    ours = ProcessRewardModel.from_policy(tiny_dir)
    limit = ours.model.config.max_position_embeddings
    scores = ours.step_scores(["Q: "], ["1+1=2\n" * limit])[0]
    assert len(scores) == limit and scores[-1] == 0.0 and ours.truncated == 1


def test_cli_and_loop_accept_public_prm_folders(qwen_dir, shepherd_dir, tiny_dir, tmp_path, capsys):
    from roadmap.app.cli import _scorer, build_parser, main
    from roadmap.app.loop_config import LoopConfig

    argv = ["eval", "--policy", str(tiny_dir), "--method", "beam", "--prm", str(qwen_dir)]
    args = build_parser().parse_args([*argv, "--trust-remote-code", "--dtype", "bfloat16"])
    scorer = _scorer(args, _Task())
    assert isinstance(scorer, PublicPRMScorer) and scorer.prm.format == "qwen-prm"
    assert next(scorer.prm.model.parameters()).dtype == torch.bfloat16
    assert main(argv) == 2
    assert "--trust-remote-code" in capsys.readouterr().err
    assert main(["eval", "--policy", str(tiny_dir), "--method", "beam", "--prm", str(tiny_dir)]) == 2
    assert "--prm-format" in capsys.readouterr().err
    for folder in (qwen_dir, shepherd_dir):
        assert LoopConfig(policy="p", prm_dir=str(folder)).prm_dir == str(folder)
    with pytest.raises(FileNotFoundError, match="reward_model.json"):
        LoopConfig(policy="p", prm_dir=str(tiny_dir))


def test_likelihood_readout_equals_the_full_log_softmax_and_trains(tiny_dir):
    """token_logits' chunked readout gives what the [B, T, V] log_softmax gave, gradients included."""
    from rewards.prm import token_logits

    prm = ProcessRewardModel.from_policy(tiny_dir)
    model = prm.model.train()
    ids = torch.tensor([prm.tokenizer.encode("Q: 1+2=3\n3+4=7\n"), prm.tokenizer.encode("Q: 2+2=4\n4+1=5\n")])
    mask = torch.ones_like(ids)
    mask[1, -3:] = 0  # right padding is never judged: its logit is the bias
    z = token_logits(model, "likelihood", ids, mask)
    full = torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits[:, :-1].float(), -1)
    ref = model.verifier_scale * full.gather(-1, ids[:, 1:, None])[..., 0] + model.verifier_bias
    assert z.shape == ids.shape and bool((z[:, 0] == 0).all())
    keep = mask[:, 1:].bool()
    assert torch.allclose(z[:, 1:][keep], ref[keep], atol=1e-4)
    z[:, 1:][keep].sum().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert model.verifier_scale.grad is not None and sum(float(g.abs().sum()) for g in grads if g is not None) > 0


@pytest.mark.parametrize("method", ["beam", "bon"])
def test_cli_eval_searches_with_a_public_prm(method, qwen_dir, shepherd_dir, tiny_dir, tmp_path):
    from roadmap.app.cli import main

    for folder, extra in ((qwen_dir, ["--trust-remote-code"]), (shepherd_dir, [])):
        out = tmp_path / f"{method}-{folder.name}.json"
        assert main(["eval", "--policy", str(tiny_dir), "--method", method, "--prm", str(folder), "--n", "2",
                     "--budget", "4", "--max-new-tokens", "48", "--out", str(out), *extra]) == 0
        report = json.loads(out.read_text())
        assert report["n"] == 2 and report["method"] == method


def test_a_hub_id_is_detected_from_its_snapshot_of_config_files(qwen_dir, monkeypatch):
    """``--prm Qwen/Qwen2.5-Math-PRM-7B`` (a Hub id, no local folder): detection reads the snapshot of
    the repository's small files that huggingface_hub downloads, and never asks for the weights."""
    import huggingface_hub

    from rewards import detect_prm_format

    asked = {}

    def fake_snapshot(repo_id, allow_patterns=None, **kw):
        asked.update(repo_id=repo_id, patterns=allow_patterns)
        return str(qwen_dir)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    assert detect_prm_format("Qwen/Qwen2.5-Math-PRM-7B") == "qwen-prm"
    assert asked["repo_id"] == "Qwen/Qwen2.5-Math-PRM-7B" and "*.safetensors" not in asked["patterns"]
