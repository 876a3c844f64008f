"""Process reward models: a score in [0, 1] for every step of a partial solution.

The PRM is a causal transformer that gives every token a logit ``z``: a one-logit
token-classification head (transformers' ``AutoModelForTokenClassification``), or its own
language-model likelihood. Because attention is causal, one forward pass over prompt + steps
scores every step, and the score of step t depends only on the steps up to t. Three readouts
turn the per-token logits into step scores:

- ``step_end``: σ(z) at the last token of each step (its delimiter), as Math-Shepherd does.
  The model must re-derive, at one position, whether everything before it was right.
- ``tokens``: the score of step t is Π σ(z_j) over every solution token j up to
  the end of step t, i.e. each token says "the solution is still right after me". A step label
  only says that *some* token of a bad step broke the solution (multiple-instance learning,
  noisy-OR), and the product lets training put the blame on that token. A wrong digit is then
  judged where it is written, where a model initialised from the policy already knows which
  digit it expected; the step-end readout has to learn the arithmetic again at the delimiter.
  Scores are monotone: a step is never better than the prefix it extends.
- ``likelihood`` (the default): the same product, but the per-token logit is not a new head: it is
  ``a * log π(token | prefix) + b``, the reward model's own language-model log-likelihood of
  the token that was written, with two trained calibration scalars. The reward model is then a
  causal LM (``AutoModelForCausalLM``), fine-tuned with the same BCE: a generative verifier
  (cf. GenRM, arXiv 2408.15240, and PRIME's implicit PRM, arXiv 2502.01456, which reads the
  log-ratio to a reference instead). Initialised from a policy, it starts as that policy's
  token-level confidence, so a wrong digit is judged with everything the policy knows of
  arithmetic, and training calibrates and sharpens it.

All are trained with binary cross-entropy on soft (Math-Shepherd MC fractions) or hard labels
from ``rewards.labels`` (arXiv 2312.08935, 2406.06592) by ``rewards.prm_training``. This module
is the inference side: the model and its readouts, step scoring (``ProcessRewardModel``) and the
``StepScorer`` over it (``PRMScorer``). The ORM (``rewards.orm``) is the same model with one
label at the end of the solution.
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from roadmap.core.errors import ConfigError, MissingPathError, PRMLengthError
from roadmap.core.hf_load import check_model_files, check_tokenizer_fits
from roadmap.core.training import check_model_dir
from roadmap.core.types import Problem

logger = logging.getLogger(__name__)

__all__ = [
    "AGGREGATIONS",
    "READOUTS",
    "DEFAULT_READOUT",
    "ProcessRewardModel",
    "PRMScorer",
    "PRMLengthError",
    "ContextGuard",
    "aggregate",
    "load_kwargs",
    "max_positions",
    "encode_steps",
    "prefix_log_scores",
    "judged_end",
    "token_logits",
]

AGGREGATIONS = ("min", "prod", "last", "mean")
READOUTS = ("likelihood", "tokens", "step_end")
#: the readout of a PRM unless one is chosen: of the config, of ``ProcessRewardModel`` and of ``from_policy``
DEFAULT_READOUT = "likelihood"
MARKER = "reward_model.json"
#: initial bias of the ``tokens`` readout's head: σ(6) ≈ 0.9975, so that a fresh model's
#: product over a few dozen tokens starts near 1 ("right") instead of near 0
_TOKENS_HEAD_BIAS = 6.0
#: initial (a, b) of the ``likelihood`` readout: a token the model gives probability 0.05
#: (log -3) starts at σ(0) = 0.5, a token it is sure of at σ(6)
_LIKELIHOOD_INIT = (2.0, 6.0)


def aggregate(step_scores: Sequence[float], how: str = "min") -> float:
    """One score for a solution from its step scores.

    ``min`` (the weakest step), ``prod`` (all steps right), ``last`` (the PRM's belief at the
    end) or ``mean``. A solution with no steps scores 0.0. NaN step scores count as 0.0 (the
    worst), so a broken model can never make a solution look good; a warning is logged.
    """
    if how not in AGGREGATIONS:
        raise ConfigError(f"aggregation={how!r} is unknown; use one of {AGGREGATIONS}")
    if not step_scores:
        return 0.0
    scores = [0.0 if math.isnan(s) else min(1.0, max(0.0, float(s))) for s in step_scores]
    if len(scores) != sum(not math.isnan(s) for s in step_scores):
        logger.warning("NaN step score(s) in %s; counted as 0.0", list(step_scores))
    if how == "min":
        return min(scores)
    if how == "last":
        return scores[-1]
    if how == "mean":
        return sum(scores) / len(scores)
    return math.prod(scores)


def max_positions(config) -> int | None:
    """The most positions a model reads (``max_position_embeddings``, GPT-2's ``n_positions``); None: no limit."""
    for key in ("max_position_embeddings", "n_positions"):
        if getattr(config, key, None):
            return int(getattr(config, key))
    return None


class ContextGuard:
    """Scoring past the reward model's positions, shared by ``ProcessRewardModel`` and the public PRMs.

    A model read past its positions scores garbage or fails inside attention, and a search or an
    evaluation must not stop for one long candidate. A text longer than ``max_positions`` is cut
    there: the steps that end inside the context keep their scores (attention is causal, so they
    are the scores of the uncut text), the steps past it score 0.0 (the worst, so a cut candidate
    is never chosen for what was not read), and the text counts in ``truncated``. One warning per
    model says so and names the fix.

    Attributes:
        truncated: texts cut so far (all calls).
        last_truncated: indices, into the last ``step_scores`` call's texts, of the ones cut.
    """

    name = "reward model"
    model: Any  # the transformers model whose positions are guarded, set by the subclass

    def _init_guard(self) -> None:
        self.truncated = 0
        self.last_truncated: list[int] = []
        self._warned_context = False

    @property
    def max_positions(self) -> int | None:
        return max_positions(self.model.config)

    def _fit(self, ids: list[int], positions: list[int], index: int) -> tuple[list[int], list[int]]:
        """``ids`` cut at the model's positions and the step positions that still lie inside them."""
        limit = self.max_positions
        if limit is None or len(ids) <= limit:
            return ids, positions
        self.truncated += 1
        self.last_truncated.append(index)
        if not self._warned_context:
            self._warned_context = True
            logger.warning(
                "%s: a prompt + solution of %d tokens is longer than the reward model's %d positions; its steps "
                "past position %d score 0.0 and it counts as truncated (this warning is shown once). Fix: shorter "
                "solutions (--max-solution-steps, --max-step-tokens, --max-new-tokens) or a reward model with a "
                "longer context", self.name, len(ids), limit, limit)
        return ids[:limit], [k for k in positions if k < limit]


def encode_steps(
    tokenizer, prompt: str, steps: Sequence[str], delimiter: str
) -> tuple[list[int], int, list[int]]:
    """Token ids of ``prompt + step_1 + delim + ... + step_T + delim``, where the solution starts, and
    the T step-end positions.

    The start is the first token holding a character of the solution; the position of step t is
    the token holding the last character of its delimiter. Both are found through the
    tokenizer's offsets, so they are right for char-level and BPE tokenizers alike.
    """
    text, ends = prompt, []
    for step in steps:
        text += step + delimiter
        ends.append(len(text) - 1)
    enc = tokenizer(text, add_special_tokens=True, return_offsets_mapping=True)
    ids, offsets = enc["input_ids"], enc["offset_mapping"]
    start = next((k for k, (_, end) in enumerate(offsets) if end > len(prompt)), len(ids))
    positions, k = [], 0
    for char in ends:
        while k < len(offsets) and not (offsets[k][0] <= char < offsets[k][1]):
            k += 1
        if k == len(offsets):
            raise ConfigError(f"could not find the token that ends a step in {text!r}; is the tokenizer lossy?")
        positions.append(k)
    return ids, start, positions


def judged_end(readout: str, ids: Sequence[int], positions: Sequence[int], wrote_final_delimiter: bool = False) -> int:
    """Where the judged solution tokens end (exclusive) in ``ids`` from ``encode_steps``.

    ``encode_steps`` appends the delimiter after the final step too, but a finished solution ends there in
    EOS: the model never wrote that delimiter. The ``likelihood`` readout would judge it by the policy's
    probability of a token it did not write (about 1e-7 after an "Answer:" line), so every finished
    solution's last step would score near 0 before training, and training would spend itself on making that
    token likely. Under ``likelihood`` that final delimiter is not judged: the last step's score is the
    product up to its last written token. A partial solution whose text ends in the delimiter (a search step
    that stopped there, ``wrote_final_delimiter``) keeps it judged. The other readouts judge every solution token.
    """
    if readout == "likelihood" and not wrote_final_delimiter and positions and positions[-1] == len(ids) - 1:
        return len(ids) - 1
    return len(ids)


def prefix_log_scores(logits, token_mask):
    """The ``tokens`` readout: log Π σ(z_j) over the masked tokens up to each position, ``[B, T]``.

    ``logits`` and ``token_mask`` are ``[B, T]``; the mask is 1 on solution tokens, 0 on the
    prompt and padding (they are not judged).
    """
    import torch

    return (torch.nn.functional.logsigmoid(logits.float()) * token_mask).cumsum(-1)


def token_logits(model, readout: str, input_ids, attention_mask):
    """Per-token logits ``[B, T]`` of a reward model under its readout (see the module docstring).

    For ``likelihood`` the logit of token j is ``a * log π(x_j | x_<j) + b``, computed from the
    language model's logits at j - 1 by ``roadmap.core.logits.next_token_logprobs`` (the LM head in
    fp32 chunks, no ``[B, T, V]`` tensor, checkpointed under autograd so training is as frugal);
    token 0 has no prefix and is never judged.
    """
    import torch

    if readout != "likelihood":
        return model(input_ids=input_ids, attention_mask=attention_mask).logits[..., 0].float()
    from roadmap.core.logits import next_token_logprobs

    logp = next_token_logprobs(model, input_ids, attention_mask)  # [B, T-1]
    z = model.verifier_scale * logp + model.verifier_bias
    return torch.cat([torch.zeros_like(z[:, :1]), z], dim=1)


class ProcessRewardModel(ContextGuard):
    """A trained PRM (or ORM): scores every step of a batch of partial solutions.

    Args:
        model: a ``*ForTokenClassification`` model with one label, or for the ``likelihood`` readout a
            causal LM with its calibration scalars (``_with_calibration``).
        tokenizer: its tokenizer.
        step_delimiter: the text that ends a step ("\\n" for arith).
        kind: "prm" (a score per step) or "orm" (one score for the whole solution).
        batch_size: sequences per forward pass when scoring.
        readout: "likelihood", "tokens" or "step_end", as the model was trained (module docstring).

    A text longer than the model's positions is cut there (``ContextGuard``): its steps past
    them score 0.0 and it counts in ``truncated``.
    """

    def __init__(self, model, tokenizer, step_delimiter: str = "\n", kind: str = "prm", batch_size: int = 64,
                 readout: str = DEFAULT_READOUT):
        if readout not in READOUTS:
            raise ConfigError(f"readout={readout!r} is unknown; use one of {READOUTS}")
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.step_delimiter = step_delimiter
        self.kind = kind
        self.batch_size = batch_size
        self.readout = readout
        self.scored_tokens = 0  # tokens read by step_scores (forward only): the compute of scoring
        self._init_guard()

    @classmethod
    def from_policy(cls, init, *, step_delimiter: str = "\n", readout: str = DEFAULT_READOUT,
                    batch_size: int = 64, options=None) -> ProcessRewardModel:
        """An untrained reward model from a policy folder: for ``likelihood``, that policy's own token
        confidence at the initial calibration (the baseline training starts from). ``options`` loads it as
        ``from_pretrained`` does (dtype, device, ...)."""
        from transformers import AutoTokenizer

        model, tokenizer = _load_for_training(init, readout, load_kwargs(options)), AutoTokenizer.from_pretrained(init)
        if getattr(options, "device", None) is not None:
            model.to(options.device)
        check_tokenizer_fits(model, tokenizer, init, "init policy folder")
        return cls(model, tokenizer, step_delimiter, batch_size=batch_size, readout=readout)

    @classmethod
    def from_pretrained(cls, path, *, batch_size: int = 64, device=None, options=None) -> ProcessRewardModel:
        """Load a folder written by ``train_prm``/``train_orm``; a clear error for anything else.

        ``options`` (``roadmap.core.backends.ModelOptions``) sets dtype, device, device_map and
        attn_implementation as for a policy; ``device`` overrides its device.
        """
        from transformers import AutoModelForTokenClassification, AutoTokenizer

        from roadmap.core.io import require_local_path

        kwargs = load_kwargs(options)
        device = device if device is not None else getattr(options, "device", None)

        require_local_path(path, "reward model folder")
        p = Path(path)
        if not (p / MARKER).exists():
            what = "a policy, not a reward model" if (p / "config.json").exists() else "not a model folder"
            raise MissingPathError(
                f"{path} is {what} (no {MARKER}); pass a folder written by `roadmap train-prm` / `roadmap train-orm` "
                "or rewards.train_prm"
            )
        check_model_files(p, "reward model folder")
        meta = json.loads((p / MARKER).read_text())
        readout = meta.get("readout", "step_end")  # folders from before readouts existed hold step-end models
        if readout == "likelihood":
            from transformers import AutoModelForCausalLM

            model = _with_calibration(AutoModelForCausalLM.from_pretrained(p, **kwargs), *meta["calibration"])
        else:
            model = AutoModelForTokenClassification.from_pretrained(p, **kwargs)
        if device is not None:
            model.to(device)
        tokenizer = AutoTokenizer.from_pretrained(p)
        check_tokenizer_fits(model, tokenizer, path, "reward model folder")
        return cls(model, tokenizer, meta["step_delimiter"], meta["kind"], batch_size, readout)

    def units(self, text: str) -> list[str]:
        """What gets a score: the steps of a PRM, the whole solution (one unit) for an ORM."""
        if self.kind == "orm":
            return [text.strip()] if text.strip() else []
        return [s for s in text.split(self.step_delimiter) if s.strip()]

    def step_scores(self, prompts: Sequence[str], solutions: Sequence[str]) -> list[list[float]]:
        """Sigmoid scores of each step (one per unit for an ORM) of each ``prompts[i] + solutions[i]``; 0.0 for
        a step past the model's positions (``ContextGuard``)."""
        import torch

        encoded, steps = [], []
        self.last_truncated = []
        for i, (p, s) in enumerate(zip(prompts, solutions)):
            ids, start, pos = encode_steps(self.tokenizer, p, self.units(s), self.step_delimiter)
            steps.append(len(pos))
            ids, pos = self._fit(ids, pos, i)
            encoded.append((ids, start, pos, s.endswith(self.step_delimiter)))
        out: list[list[float]] = [[0.0] * n for n in steps]  # a step past the positions keeps its 0.0
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i][0]))  # less padding
        device = next(self.model.parameters()).device
        pad = self.tokenizer.pad_token_id or 0
        for first in range(0, len(order), self.batch_size):
            idx = [i for i in order[first : first + self.batch_size] if encoded[i][2]]
            if not idx:
                continue
            width = max(len(encoded[i][0]) for i in idx)
            batch = torch.full((len(idx), width), pad, dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            judged = torch.zeros((len(idx), width))
            for r, i in enumerate(idx):
                seq, start, kept, wrote = encoded[i]
                batch[r, : len(seq)] = torch.tensor(seq)
                mask[r, : len(seq)] = 1
                judged[r, start : judged_end(self.readout, seq, kept, wrote)] = 1.0
            self.scored_tokens += int(mask.sum())
            with torch.inference_mode():
                logits = token_logits(self.model, self.readout, batch.to(device), mask.to(device))
                if self.readout == "step_end":
                    probs = torch.sigmoid(logits).cpu()
                else:
                    probs = prefix_log_scores(logits, judged.to(logits.device)).exp().cpu()
            for r, i in enumerate(idx):
                kept = encoded[i][2]
                out[i][: len(kept)] = probs[r, kept].tolist()
        return out

    def save_pretrained(self, path) -> None:
        p = Path(path)
        meta: dict[str, Any] = {"kind": self.kind, "step_delimiter": self.step_delimiter, "readout": self.readout}
        if self.readout == "likelihood":  # the two scalars live in the marker, the LM in its own files
            meta["calibration"] = [float(self.model.verifier_scale.detach()), float(self.model.verifier_bias.detach())]
            state = {k: v for k, v in self.model.state_dict().items() if not k.startswith("verifier_")}
            self.model.save_pretrained(p, state_dict=state)
        else:
            self.model.save_pretrained(p)
        self.tokenizer.save_pretrained(p)
        (p / MARKER).write_text(json.dumps(meta, indent=2))


class StepModel(Protocol):
    """What ``PRMScorer`` reads of a reward model: ``ProcessRewardModel``, ``RatioPRM`` and the public PRMs."""

    @property
    def kind(self) -> str: ...

    @property
    def tokenizer(self) -> Any: ...

    @property
    def last_truncated(self) -> list[int]: ...

    def step_scores(self, prompts: Sequence[Any], solutions: Sequence[Any]) -> list[list[float]]: ...


class PRMScorer:
    """``StepScorer`` over a reward model: aggregated step scores of each partial solution.

    ``truncated`` counts, by problem id, the scorings of a candidate cut at the reward model's
    positions (``ContextGuard``: its steps past them scored 0.0); ``check_context`` warns before a
    run whose candidates can reach that far.
    """

    def __init__(self, prm: StepModel, task, aggregation: str = "min") -> None:
        aggregate([], aggregation)  # validates the name
        self.prm = prm
        self.task = task
        self.aggregation = aggregation
        self.truncated: Counter[str] = Counter()
        self._warned_context: set[tuple[int, int]] = set()

    def check_context(self, problems: Sequence[Problem], solution_tokens: int, fix: str) -> None:
        """Before a run: refuse when a prompt alone fills the reward model's positions (no step could be
        scored); warn, naming ``fix``, when a prompt + a solution of ``solution_tokens`` tokens can pass them."""
        limit = getattr(self.prm, "max_positions", None)
        if limit is None or not problems:
            return
        n, longest = max((self._prompt_tokens(p), i) for i, p in enumerate(problems))
        problem = problems[longest]
        if n >= limit:
            raise PRMLengthError(f"problem {problem.id!r}: its prompt is {n} tokens and the reward model reads "
                                 f"{limit} positions, so no step could be scored; use a reward model with a longer "
                                 "context")
        if n + solution_tokens > limit and (n, solution_tokens) not in self._warned_context:
            self._warned_context.add((n, solution_tokens))  # once per setting, not once per benchmark cell
            logger.warning("a candidate can reach about %d tokens (the longest prompt, %d, + %d of solution) but the "
                           "reward model reads %d positions: a longer one has its steps past them scored 0.0 and is "
                           "counted in scorer_truncated. Fix: lower %s to fit %d solution tokens, or use a reward "
                           "model with a longer context", n + solution_tokens, n, solution_tokens, limit, fix,
                           limit - n)

    def _prompt_tokens(self, problem: Problem) -> int:
        return len(self.prm.tokenizer(self.task.prompt(problem))["input_ids"])

    def score(self, problem: Problem, partial_solutions: Sequence[str]) -> list[float]:
        return self.score_batch([problem], [partial_solutions])[0]

    def score_batch(self, problems: Sequence[Problem], solutions: Sequence[Sequence[str]]) -> list[list[float]]:
        """``score`` for many problems in one batched pass (search calls this across problems)."""
        flat = self._step_scores(problems, solutions)
        if self.prm.last_truncated:
            owners = [p.id for p, sols in zip(problems, solutions) for _ in sols]
            self.truncated.update(owners[i] for i in self.prm.last_truncated)
        out, k = [], 0
        for sols in solutions:
            out.append([aggregate(x, self.aggregation) for x in flat[k : k + len(sols)]])
            k += len(sols)
        return out

    def _step_scores(self, problems: Sequence[Problem], solutions: Sequence[Sequence[str]]) -> list[list[float]]:
        """The step scores of every solution, flattened in problem order."""
        prompts = [self.task.prompt(p) for p, sols in zip(problems, solutions) for _ in sols]
        return self.prm.step_scores(prompts, [s for sols in solutions for s in sols])

    def __repr__(self) -> str:
        return f"PRMScorer(kind={self.prm.kind!r}, aggregation={self.aggregation!r})"


def load_kwargs(options) -> dict:
    """transformers ``from_pretrained`` keywords of a ``ModelOptions`` (None: the checkpoint's own dtype)."""
    if options is None:
        return {}
    kwargs = {"dtype": options.dtype, "trust_remote_code": options.trust_remote_code}
    for key in ("device_map", "attn_implementation"):
        if getattr(options, key) is not None:
            kwargs[key] = getattr(options, key)
    return kwargs


def _with_calibration(model, scale: float, bias: float):
    """``model`` (a causal LM) with the ``likelihood`` readout's two calibration scalars attached."""
    import torch

    model.register_parameter("verifier_scale", torch.nn.Parameter(torch.tensor(float(scale))))
    model.register_parameter("verifier_bias", torch.nn.Parameter(torch.tensor(float(bias))))
    return model


def _load_for_training(init, readout: str, kwargs: dict | None = None):
    """The reward model to train, from a policy folder (its weights) or a model config.

    A one-logit token classifier, or for the ``likelihood`` readout the causal LM itself. ``kwargs``: the
    transformers ``from_pretrained`` keywords of a folder (``load_kwargs``).
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForTokenClassification, PretrainedConfig

    from_config = isinstance(init, PretrainedConfig)
    if not from_config:
        check_model_dir(init, "init")
    if readout == "likelihood":
        lm = (AutoModelForCausalLM.from_config(init) if from_config
              else AutoModelForCausalLM.from_pretrained(init, **(kwargs or {})))
        return _with_calibration(lm, *_LIKELIHOOD_INIT)
    cfg = init if from_config else AutoConfig.from_pretrained(init)
    cfg.num_labels, cfg.classifier_dropout = 1, 0.0
    if from_config:
        model = AutoModelForTokenClassification.from_config(cfg)
    else:
        model = AutoModelForTokenClassification.from_pretrained(init, config=cfg, **(kwargs or {}))
    # the bias of the token-classification head (``score``) of transformers' decoder models
    bias = getattr(getattr(model, "score", None), "bias", None)
    if readout == "tokens" and bias is not None:
        with torch.no_grad():
            bias.fill_(_TOKENS_HEAD_BIAS)
    return model
