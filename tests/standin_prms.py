"""Stand-ins of public PRMs saved in exactly their published formats (Math-Shepherd, Qwen2.5-Math-PRM).

Shared by the public-PRM tests and the real-model recipe tests.
"""

from __future__ import annotations

import importlib.util
import json
import sys

import torch

_CONFIGURATION = '''from transformers import Qwen2Config


class Qwen2RMConfig(Qwen2Config):
    model_type = "qwen2"
'''
_MODELING = '''import torch.nn as nn
from transformers import Qwen2Model, Qwen2PreTrainedModel
from transformers.modeling_outputs import TokenClassifierOutput

from .configuration_qwen2_rm import Qwen2RMConfig


class Qwen2ForProcessRewardModel(Qwen2PreTrainedModel):
    config_class = Qwen2RMConfig

    def __init__(self, config):
        super().__init__(config)
        self.num_labels = 2
        self.model = Qwen2Model(config)
        self.score = nn.Sequential(nn.Linear(config.hidden_size, config.hidden_size), nn.ReLU(),
                                   nn.Linear(config.hidden_size, self.num_labels))
        self.post_init()

    def get_input_embeddings(self):
        return self.model.embed_tokens

    def set_input_embeddings(self, value):
        self.model.embed_tokens = value

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, inputs_embeds=None, **kwargs):
        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                            inputs_embeds=inputs_embeds).last_hidden_state
        return TokenClassifierOutput(logits=self.score(hidden))
'''


def _shepherd_corpus():
    from policy_init.standins import default_corpus

    out = []
    for i in range(300):
        a, b = 3 + i % 47, 2 + (i * 7) % 31
        out.append(f"What is {a} + {b} - 1? Step 1: {a} + {b} = {a + b}. ки\nStep 2: {a + b} - 1 = {a + b - 1}. "
                   f"The answer is: {a + b - 1} ки")
        out.append(f"Step 1: {a} - {b} = {a - b}. +\nStep 2: wrong -\n")
    return default_corpus() + out


def build_shepherd_standin(root):
    """A Mistral stand-in in Math-Shepherd's format: "▁ки", "▁+", "▁-" are vocabulary tokens, "\\n" its own piece."""
    from tokenizers import Regex, pre_tokenizers
    from transformers import AutoTokenizer

    from policy_init.standins import StandinConfig, build_standin

    path = build_standin("mistral", root / "math-shepherd-standin",
                         StandinConfig(), corpus=_shepherd_corpus())
    tok = AutoTokenizer.from_pretrained(path)
    # SentencePiece never merges a newline into a word piece (Mistral writes it as <0x0A>); the BPE stand-in
    # learnt "▁ки\nStep", so split "\n" off before the Metaspace step, as the real tokenizer behaves
    tok.backend_tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Split(Regex("\n"), behavior="isolated"), tok.backend_tokenizer.pre_tokenizer])
    tok.save_pretrained(path)
    return path


def build_qwen_prm_standin(root):
    """A Qwen2 stand-in saved as Qwen2.5-Math-PRM is: remote-code head, auto_map, "<extra_0>" special token."""
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    from policy_init.standins import StandinConfig, build_standin

    path = build_standin("qwen2", root / "qwen-prm-standin",
                         StandinConfig(extra_special_tokens=("<extra_0>",)))
    (path / "configuration_qwen2_rm.py").write_text(_CONFIGURATION)
    (path / "modeling_qwen2_rm.py").write_text(_MODELING)
    pkg = "qwen_prm_standin_code"
    for name in ("configuration_qwen2_rm", "modeling_qwen2_rm"):
        spec = importlib.util.spec_from_file_location(f"{pkg}.{name}", path / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[f"{pkg}.{name}"] = module
        sys.modules.setdefault(pkg, type(sys)(pkg)).__path__ = [str(path)]
        spec.loader.exec_module(module)
    lm = AutoModelForCausalLM.from_pretrained(path)
    cfg = sys.modules[f"{pkg}.configuration_qwen2_rm"].Qwen2RMConfig(**{
        k: v for k, v in lm.config.to_dict().items() if k not in ("architectures", "model_type")})
    cfg.tie_word_embeddings = False
    torch.manual_seed(1)
    prm = sys.modules[f"{pkg}.modeling_qwen2_rm"].Qwen2ForProcessRewardModel(cfg)
    prm.model.load_state_dict(lm.model.state_dict())
    with torch.no_grad():  # a head that separates steps more than a random init's ~0.5 everywhere
        prm.score[2].weight.mul_(20.0)
    prm.save_pretrained(path)
    meta = json.loads((path / "config.json").read_text())
    meta.update(architectures=["Qwen2ForProcessRewardModel"], model_type="qwen2", auto_map={
        "AutoConfig": "configuration_qwen2_rm.Qwen2RMConfig",
        "AutoModel": "modeling_qwen2_rm.Qwen2ForProcessRewardModel"})
    (path / "config.json").write_text(json.dumps(meta, indent=2))
    names = set(load_file(path / "model.safetensors"))
    assert {"score.0.weight", "score.0.bias", "score.2.weight", "score.2.bias", "model.embed_tokens.weight"} <= names
    assert not any(n.startswith("lm_head") for n in names)
    return path


