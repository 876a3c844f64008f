"""Public process reward models as ``StepScorer``s: Math-Shepherd and Qwen2.5-Math-PRM folders.

A user brings a published PRM checkpoint, not one trained here. Two formats are read exactly as
their model cards do, so the scores are the ones their authors report:

- **Math-Shepherd** (arXiv 2312.08935; ``peiyi9979/math-shepherd-mistral-7b-prm``): a causal LM.
  The input is ``f"{question} {output}"`` where the output is ``"Step 1: ... ки\\nStep 2: ... ки"``;
  the score of a step is the probability of "+" in a softmax over the logits of the "+" and "-"
  tokens, read at the position of the step tag "ки" that ends it. Only the LM head rows of "+"
  and "-" at the tag positions are computed (no ``[B, T, V]`` logits).
- **Qwen2.5-Math-PRM** (arXiv 2501.07301; ``Qwen/Qwen2.5-Math-PRM-7B``): a Qwen2 backbone with a
  two-logit head (``Qwen2ForProcessRewardModel``, remote code in the folder). The steps are
  joined by "<extra_0>" (and one ends the solution) as the assistant turn of the chat template,
  after the system prompt ``QWEN_PRM_SYSTEM`` and the question; the score of a step is
  softmax(logits)[1] at its "<extra_0>".

``load_step_scorer`` is the one loader behind ``--prm`` and the loop's ``prm_dir``: it detects
the format (``detect_prm_format``) and returns a ``StepScorer``; this project's own folders
(``reward_model.json``) load as ``rewards.PRMScorer``. A partial solution is split into steps
with the task's ``split_steps`` and re-joined in the PRM's own format; every step gets a score
and ``rewards.prm.aggregate`` makes one score of them.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from pathlib import Path

from rewards.prm import MARKER, ContextGuard, PRMScorer, ProcessRewardModel, load_kwargs
from roadmap.core.errors import ConfigError, PRMFormatError
from roadmap.core.hf_load import check_model_files, check_tokenizer_fits
from roadmap.core.types import Problem

logger = logging.getLogger(__name__)

__all__ = [
    "PRM_FORMATS",
    "QWEN_PRM_SYSTEM",
    "PRMFormatError",
    "MathShepherdPRM",
    "QwenPRM",
    "PublicPRMScorer",
    "detect_prm_format",
    "load_step_scorer",
]

#: what ``--prm-format`` accepts ("auto": detect it from the folder)
PRM_FORMATS = ("auto", "roadmap", "ratio", "math-shepherd", "qwen-prm")
#: the system prompt of Qwen2.5-Math-PRM's model card (and of Qwen2.5-Math-Instruct)
QWEN_PRM_SYSTEM = "Please reason step by step, and put your final answer within \\boxed{}."
QWEN_PRM_ARCHITECTURE = "Qwen2ForProcessRewardModel"
_SHEPHERD_TAG, _SHEPHERD_GOOD, _SHEPHERD_BAD = "ки", "+", "-"
_QWEN_SEP = "<extra_0>"
_NUMBERED = re.compile(r"^\s*Step \d+:")


def _read_config(p: Path) -> dict:
    try:
        return json.loads((p / "config.json").read_text())
    except (OSError, ValueError):
        return {}


def _config_folder(path) -> Path:
    """The local folder holding ``path``'s config and tokenizer: ``path`` itself, or for a Hub id
    ("Qwen/Qwen2.5-Math-PRM-7B") its snapshot of those small files (the weights load later)."""
    from roadmap.core.io import looks_like_path

    if looks_like_path(path):
        return Path(path)
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(str(path), allow_patterns=["*.json", "*.model", "*.txt", "*.py"]))


def _shepherd_ids(tokenizer) -> tuple[int, int, int] | None:
    """(step tag, "+", "-") token ids as Math-Shepherd's card computes them; None if they are not single tokens."""
    tag = tokenizer.encode(_SHEPHERD_TAG, add_special_tokens=False)
    pair = tokenizer.encode(f"{_SHEPHERD_GOOD} {_SHEPHERD_BAD}", add_special_tokens=False)
    if len(tag) != 1 or len(pair) != 2 or tokenizer.unk_token_id in (*tag, *pair):
        return None
    return tag[0], pair[0], pair[1]


def detect_prm_format(path, prm_format: str = "auto") -> str:
    """The format of the reward model folder ``path``: "roadmap", "math-shepherd" or "qwen-prm".

    ``auto`` recognises: this project's folders by ``reward_model.json``; Qwen2.5-Math-PRM by
    ``architectures`` in config.json (``Qwen2ForProcessRewardModel``, or any
    ``*ForProcessRewardModel``); Math-Shepherd by a causal LM whose tokenizer has the step tag
    "ки" and "+"/"-" as single tokens *and* whose folder (or config ``_name_or_path``) is named
    for Math-Shepherd, so a policy folder passed by mistake is never scored as a PRM. Any other
    folder raises ``PRMFormatError`` saying what was looked for and the fix.
    """
    from roadmap.core.io import require_local_path

    if prm_format not in PRM_FORMATS:
        raise ConfigError(f"prm_format={prm_format!r} is unknown; use one of {PRM_FORMATS}")
    require_local_path(path, "reward model folder")
    if prm_format != "auto":
        return prm_format
    p = _config_folder(path)
    if (p / MARKER).exists():
        return "roadmap"
    cfg = _read_config(p)
    archs = [str(a) for a in cfg.get("architectures") or []]
    if any(a == QWEN_PRM_ARCHITECTURE or a.endswith("ForProcessRewardModel") for a in archs):
        return "qwen-prm"
    found = f"architectures {archs}" if archs else ("no config.json" if not (p / "config.json").exists()
                                                     else "a config.json without architectures")
    if any(a.endswith("ForCausalLM") for a in archs):
        from transformers import AutoTokenizer

        has_tag = _shepherd_ids(AutoTokenizer.from_pretrained(p)) is not None
        named = "shepherd" in f"{p.resolve()} {cfg.get('_name_or_path', '')}".lower()
        if has_tag and named:
            return "math-shepherd"
        found += (", a tokenizer with the step tag 'ки' but a folder not named for Math-Shepherd" if has_tag
                  else ", a tokenizer without 'ки', '+', '-' as single tokens (a policy, not a reward model?)")
    raise PRMFormatError(
        f"{path} is not a reward model folder in a supported format (found {found}). Looked for: {MARKER} "
        f"(written by `roadmap train-prm`/`train-orm`); config.json architectures {QWEN_PRM_ARCHITECTURE} "
        "(Qwen2.5-Math-PRM); a causal LM with Math-Shepherd's step tag 'ки' in a folder named for Math-Shepherd. "
        "Fix: pass such a folder, or name its format with --prm-format math-shepherd|qwen-prm|roadmap"
    )


class _PublicPRM(ContextGuard):
    """Batched step scoring shared by the public formats: encode, pad on the right, read at tag positions; a text
    past the model's positions is cut there, its later steps scored 0.0 (``rewards.prm.ContextGuard``)."""

    format = ""

    def __init__(self, model, tokenizer, *, batch_size: int = 64, name: str = "") -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.name = name or self.format
        self.kind = "prm"
        self.scored_tokens = 0  # tokens read by step_scores (forward only), as ProcessRewardModel counts
        self._warned = False
        self._init_guard()

    def _clean(self, text: str, tag: str) -> str:
        if tag not in text:
            return text
        if not self._warned:
            logger.warning("%s: removed the step tag %r from a question or step text so it cannot be read as a "
                           "step end", self.name, tag)
            self._warned = True
        return text.replace(tag, "")

    def encode(self, question: str, steps: Sequence[str]) -> tuple[list[int], list[int]]:
        """Token ids of ``question`` + ``steps`` in this PRM's format and the position read for each step."""
        raise NotImplementedError

    def _read(self, ids, mask, rows, cols):
        """``[N]`` probabilities that the step ending at (rows[n], cols[n]) is right."""
        raise NotImplementedError

    def _tag_positions(self, ids: list[int], tag_id: int, steps: Sequence[str], text: str) -> list[int]:
        positions = [k for k, t in enumerate(ids) if t == tag_id]
        if len(positions) != len(steps):
            raise ConfigError(f"{self.name}: found {len(positions)} step tags for {len(steps)} steps in {text!r}; "
                              "the tokenizer merged a step tag with its neighbours")
        return positions

    def step_scores(self, questions: Sequence[str], steps: Sequence[Sequence[str]]) -> list[list[float]]:
        """One score in [0, 1] per step of each (``questions[i]``, ``steps[i]``); [] for no steps; 0.0 for a step
        past the model's positions."""
        import torch

        self.last_truncated = []
        encoded = [self._fit(*self.encode(q, s), i) if s else ([], []) for i, (q, s) in enumerate(zip(questions, steps))]
        out: list[list[float]] = [[0.0] * len(s) if s else [] for s in steps]  # past the positions: 0.0
        order = sorted((i for i, e in enumerate(encoded) if e[1]), key=lambda i: len(encoded[i][0]))
        device = next(self.model.parameters()).device
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        for first in range(0, len(order), self.batch_size):
            idx = order[first : first + self.batch_size]
            width = max(len(encoded[i][0]) for i in idx)
            ids = torch.full((len(idx), width), pad, dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            rows, cols = [], []
            for r, i in enumerate(idx):
                seq, pos = encoded[i]
                ids[r, : len(seq)], mask[r, : len(seq)] = torch.tensor(seq), 1
                rows += [r] * len(pos)
                cols += pos
            self.scored_tokens += int(mask.sum())
            with torch.inference_mode():
                probs = self._read(ids.to(device), mask.to(device), torch.tensor(rows, device=device),
                                   torch.tensor(cols, device=device)).float().cpu().tolist()
            k = 0
            for i in idx:
                n = len(encoded[i][1])
                out[i][:n], k = probs[k : k + n], k + n
        return out


class MathShepherdPRM(_PublicPRM):
    """Math-Shepherd's format: P("+") against "-" at each step tag "ки" of a causal LM (module docstring).

    Args:
        model: the causal LM (``MistralForCausalLM`` for the published checkpoint).
        tokenizer: its tokenizer; "ки", "+" and "-" must each be one token.
        number_steps: write "Step k: " before step k unless it starts so already, as the model
            card's and the training data's solutions do.
    """

    format = "math-shepherd"

    def __init__(self, model, tokenizer, *, batch_size: int = 64, name: str = "", number_steps: bool = True) -> None:
        super().__init__(model, tokenizer, batch_size=batch_size, name=name)
        ids = _shepherd_ids(tokenizer)
        if ids is None:
            raise PRMFormatError(f"{self.name}: the tokenizer does not hold the step tag 'ки' and '+', '-' as single "
                                 "tokens, so it is not a Math-Shepherd reward model; pass --prm-format auto or the "
                                 "folder's real format")
        self.tag_id, self.good_id, self.bad_id = ids
        self.number_steps = number_steps

    def format_text(self, question: str, steps: Sequence[str]) -> str:
        """``f"{question} {output}"`` with each step ended by " ки", steps joined by "\\n"."""
        lines = []
        for k, step in enumerate(steps, 1):
            step = self._clean(step, _SHEPHERD_TAG).strip()
            lines.append(f"{step} {_SHEPHERD_TAG}" if not self.number_steps or _NUMBERED.match(step)
                         else f"Step {k}: {step} {_SHEPHERD_TAG}")
        return f"{self._clean(question, _SHEPHERD_TAG)} " + "\n".join(lines)

    def encode(self, question: str, steps: Sequence[str]) -> tuple[list[int], list[int]]:
        text = self.format_text(question, steps)
        ids = self.tokenizer.encode(text)  # with the BOS, as the model card encodes
        return ids, self._tag_positions(ids, self.tag_id, steps, text)

    def _read(self, ids, mask, rows, cols):
        import torch

        hidden = self.model.get_decoder()(input_ids=ids, attention_mask=mask).last_hidden_state
        head = self.model.get_output_embeddings()
        logits = head(hidden[rows, cols]).float()  # [N, V]: only the tag positions
        softcap = getattr(self.model.config, "final_logit_softcapping", None)
        if softcap:
            logits = torch.tanh(logits / softcap) * softcap
        return logits[:, [self.good_id, self.bad_id]].softmax(-1)[:, 0]


class QwenPRM(_PublicPRM):
    """Qwen2.5-Math-PRM's format: softmax(head)[1] at each "<extra_0>" in the chat template (module docstring).

    Args:
        model: the ``Qwen2ForProcessRewardModel`` (remote code) loaded by ``AutoModel``.
        tokenizer: its tokenizer, with "<extra_0>" as one token and a chat template.
        system: the system prompt of the conversation.
    """

    format = "qwen-prm"

    def __init__(self, model, tokenizer, *, batch_size: int = 64, name: str = "", system: str = QWEN_PRM_SYSTEM) -> None:
        super().__init__(model, tokenizer, batch_size=batch_size, name=name)
        sep = tokenizer.encode(_QWEN_SEP, add_special_tokens=False)
        if len(sep) != 1 or getattr(tokenizer, "chat_template", None) is None:
            raise PRMFormatError(f"{self.name}: a Qwen2.5-Math-PRM tokenizer needs {_QWEN_SEP!r} as one token and a "
                                 "chat template; this one has neither or one of them missing. Pass the checkpoint's own "
                                 "folder (tokenizer files included)")
        self.sep_id = sep[0]
        self.system = system

    def format_text(self, question: str, steps: Sequence[str]) -> str:
        """The chat-template conversation: system, user = question, assistant = steps joined and ended by <extra_0>."""
        steps = [self._clean(s, _QWEN_SEP).strip() for s in steps]
        messages = [{"role": "system", "content": self.system},
                    {"role": "user", "content": self._clean(question, _QWEN_SEP)},
                    {"role": "assistant", "content": _QWEN_SEP.join(steps) + _QWEN_SEP}]
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)

    def encode(self, question: str, steps: Sequence[str]) -> tuple[list[int], list[int]]:
        text = self.format_text(question, steps)
        bos = self.tokenizer.bos_token
        ids = self.tokenizer.encode(text, add_special_tokens=not (bos and text.startswith(bos)))  # one BOS at most
        return ids, self._tag_positions(ids, self.sep_id, steps, text)

    def _read(self, ids, mask, rows, cols):
        logits = self.model(input_ids=ids, attention_mask=mask)[0]  # [B, T, 2]
        return logits[rows, cols].float().softmax(-1)[:, 1]


class PublicPRMScorer(PRMScorer):
    """``StepScorer`` over a public PRM: the task's steps of each partial solution, scored and aggregated
    (``PRMScorer``'s batching and aggregation; the PRM reads the bare question and the split steps)."""

    prm: _PublicPRM

    def _step_scores(self, problems: Sequence[Problem], solutions: Sequence[Sequence[str]]) -> list[list[float]]:
        questions = [p.question for p, sols in zip(problems, solutions) for _ in sols]
        return self.prm.step_scores(questions, [self.task.split_steps(s) for sols in solutions for s in sols])

    def _prompt_tokens(self, problem: Problem) -> int:
        return len(self.prm.tokenizer(problem.question)["input_ids"])  # the format's own words are not counted

    def __repr__(self) -> str:
        return f"PublicPRMScorer(format={self.prm.format!r}, aggregation={self.aggregation!r})"


def _load_public(path: Path, fmt: str, options, batch_size: int) -> _PublicPRM:
    from transformers import AutoTokenizer

    check_model_files(path, "reward model folder")
    kwargs = load_kwargs(options)
    trust = bool(getattr(options, "trust_remote_code", False))
    if fmt == "qwen-prm":
        auto_map = _read_config(path).get("auto_map") or {}
        if not trust:
            raise ConfigError(
                f"{path} is a Qwen2.5-Math-PRM folder: its model class ({auto_map.get('AutoModel', QWEN_PRM_ARCHITECTURE)}) "
                "is code shipped in the folder, which runs only with --trust-remote-code (recipe: model: "
                "{trust_remote_code: true}; ModelOptions(trust_remote_code=True)). Turn it on only for a folder you trust"
            )
        from transformers import AutoModel

        model = AutoModel.from_pretrained(path, **{**kwargs, "trust_remote_code": True})
        cls: type[_PublicPRM] = QwenPRM
    else:
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
        cls = MathShepherdPRM
    if getattr(options, "device", None) is not None:
        model.to(options.device)
    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust)
    check_tokenizer_fits(model, tokenizer, path, "reward model folder")
    return cls(model, tokenizer, batch_size=batch_size, name=f"{path} ({fmt})")


def load_step_scorer(path, task, aggregation: str = "min", *, options=None, prm_format: str = "auto",
                     batch_size: int = 64):
    """The ``StepScorer`` of the reward model folder ``path``, in any supported format.

    Args:
        path: a folder written by ``roadmap train-prm``/``train-orm``, or a Math-Shepherd or
            Qwen2.5-Math-PRM checkpoint folder.
        task: the task whose ``split_steps`` (and, for this project's PRMs, ``prompt``) is used.
        aggregation: how step scores become one score (``rewards.prm.aggregate``).
        options: ``roadmap.core.backends.ModelOptions`` (dtype, device, device_map,
            attn_implementation, trust_remote_code), as for the policy.
        prm_format: "auto" (``detect_prm_format``), "roadmap", "ratio" (a roadmap likelihood PRM read as its
            log-ratio to its initialising policy, ``rewards.prm_ratio``; never detected), "math-shepherd" or
            "qwen-prm".
        batch_size: sequences per forward pass.
    """
    fmt = detect_prm_format(path, prm_format)
    if fmt == "ratio":  # this project's likelihood PRM over its initialising policy (rewards.prm_ratio)
        from rewards.prm_ratio import RatioPRM

        return PRMScorer(RatioPRM.from_pretrained(path, batch_size=batch_size, options=options), task, aggregation)
    if fmt == "roadmap":
        return PRMScorer(ProcessRewardModel.from_pretrained(path, batch_size=batch_size, options=options), task,
                         aggregation)
    return PublicPRMScorer(_load_public(Path(path), fmt, options, batch_size), task, aggregation)
