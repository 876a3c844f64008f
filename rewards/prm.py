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
from ``rewards.labels`` (arXiv 2312.08935, 2406.06592), in a ``transformers.Trainer`` loop with
progress, checkpoints and an eval ROC-AUC.

TRL has no PRM trainer for causal models with soft labels, so this module is that trainer.
The ORM (``rewards.orm``) is the same model with one label at the end of the solution.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from roadmap.core.io import replace_dir
from roadmap.core.tasks.base import hash_split
from roadmap.core.types import Problem

logger = logging.getLogger(__name__)

__all__ = [
    "AGGREGATIONS",
    "READOUTS",
    "RewardModelConfig",
    "ProcessRewardModel",
    "PRMScorer",
    "aggregate",
    "encode_steps",
    "token_logits",
    "train_reward_model",
    "train_prm",
]

AGGREGATIONS = ("min", "prod", "last", "mean")
READOUTS = ("likelihood", "tokens", "step_end")
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
        raise ValueError(f"aggregation={how!r} is unknown; use one of {AGGREGATIONS}")
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
            raise ValueError(f"could not find the token that ends a step in {text!r}; is the tokenizer lossy?")
        positions.append(k)
    return ids, start, positions


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
    language model's logits at j - 1; token 0 has no prefix and is never judged.
    """
    import torch

    out = model(input_ids=input_ids, attention_mask=attention_mask)
    if readout != "likelihood":
        return out.logits[..., 0].float()
    logp = torch.log_softmax(out.logits[:, :-1].float(), -1).gather(-1, input_ids[:, 1:, None])[..., 0]  # [B, T-1]
    z = model.verifier_scale * logp + model.verifier_bias
    return torch.cat([torch.zeros_like(z[:, :1]), z], dim=1)


@dataclass
class RewardModelConfig:
    """Training knobs of a PRM or ORM. Defaults suit the embedded tiny policy on arith."""

    output_dir: str = field(default="prm", metadata={"help": "Where the trained reward model is written."})
    labels: str = field(default="soft", metadata={"help": "Train on 'soft' (MC fraction) or 'hard' labels."})
    epochs: float = field(default=2.0, metadata={"help": "Passes over the training solutions."})
    max_steps: int = field(default=-1, metadata={"help": "Stop after this many optimizer steps (-1: no limit)."})
    max_minutes: float | None = field(default=None, metadata={"help": "Stop after this much wall time."})
    learning_rate: float | None = field(default=None, metadata={
        "help": "Peak learning rate (AdamW); default 1e-4 for the 'likelihood' readout (keep what the model "
                "knows), 1e-3 for a new head."})
    calibration_lr: float = field(default=0.05, metadata={
        "help": "Learning rate of the 'likelihood' readout's two calibration scalars."})
    batch_size: int = field(default=32, metadata={"help": "Solutions per optimizer step."})
    eval_fraction: float = field(default=0.1, metadata={"help": "Share of problems held out for the eval AUC."})
    logging_steps: int = field(default=50, metadata={"help": "Log loss every this many steps."})
    save_steps: int = field(default=500, metadata={"help": "Checkpoint every this many steps."})
    seed: int = field(default=0, metadata={"help": "Seed of the head's initialisation and data order."})
    balance: bool = field(default=True, metadata={
        "help": "Weight the BCE so that good and bad steps count equally (wrong steps are rare)."})
    readout: str = field(default="likelihood", metadata={
        "help": "'likelihood' (calibrated LM likelihood of each token), 'tokens' (a new per-token head) or "
                "'step_end' (the delimiter's score alone); see the module docstring."})

    def __post_init__(self) -> None:
        if self.labels not in ("soft", "hard"):
            raise ValueError(f"labels={self.labels!r} must be 'soft' or 'hard'")
        if self.readout not in READOUTS:
            raise ValueError(f"readout={self.readout!r} is unknown; use one of {READOUTS}")
        if self.learning_rate is None:
            self.learning_rate = 1e-4 if self.readout == "likelihood" else 1e-3
        if not 0 <= self.eval_fraction < 1:
            raise ValueError(f"eval_fraction={self.eval_fraction} must lie in [0, 1)")
        if self.batch_size < 1:
            raise ValueError(f"batch_size={self.batch_size} must be at least 1")


class ProcessRewardModel:
    """A trained PRM (or ORM): scores every step of a batch of partial solutions.

    Args:
        model: a ``*ForTokenClassification`` model with one label.
        tokenizer: its tokenizer.
        step_delimiter: the text that ends a step ("\\n" for arith).
        kind: "prm" (a score per step) or "orm" (one score for the whole solution).
        batch_size: sequences per forward pass when scoring.
        readout: "likelihood", "tokens" or "step_end", as the model was trained (module docstring).
    """

    def __init__(self, model, tokenizer, step_delimiter: str = "\n", kind: str = "prm", batch_size: int = 64,
                 readout: str = "step_end"):
        if readout not in READOUTS:
            raise ValueError(f"readout={readout!r} is unknown; use one of {READOUTS}")
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.step_delimiter = step_delimiter
        self.kind = kind
        self.batch_size = batch_size
        self.readout = readout
        self.scored_tokens = 0  # tokens read by step_scores (forward only): the compute of scoring

    @classmethod
    def from_policy(cls, init, *, step_delimiter: str = "\n", readout: str = "likelihood",
                    batch_size: int = 64) -> ProcessRewardModel:
        """An untrained reward model from a policy folder: for ``likelihood``, that policy's own token
        confidence at the initial calibration (the baseline training starts from)."""
        from transformers import AutoTokenizer

        return cls(_load_for_training(init, readout), AutoTokenizer.from_pretrained(init), step_delimiter,
                   batch_size=batch_size, readout=readout)

    @classmethod
    def from_pretrained(cls, path, *, batch_size: int = 64, device=None) -> ProcessRewardModel:
        """Load a folder written by ``train_prm``/``train_orm``; a clear error for anything else."""
        from transformers import AutoModelForTokenClassification, AutoTokenizer

        from roadmap.core.io import require_local_path

        require_local_path(path, "reward model folder")
        p = Path(path)
        if not (p / MARKER).exists():
            what = "a policy, not a reward model" if (p / "config.json").exists() else "not a model folder"
            raise FileNotFoundError(
                f"{path} is {what} (no {MARKER}); pass a folder written by `roadmap train-prm` / `roadmap train-orm` "
                "or rewards.train_prm"
            )
        meta = json.loads((p / MARKER).read_text())
        readout = meta.get("readout", "step_end")
        if readout == "likelihood":
            from transformers import AutoModelForCausalLM

            model = _with_calibration(AutoModelForCausalLM.from_pretrained(p), *meta["calibration"])
        else:
            model = AutoModelForTokenClassification.from_pretrained(p)
        if device is not None:
            model.to(device)
        return cls(model, AutoTokenizer.from_pretrained(p), meta["step_delimiter"], meta["kind"], batch_size, readout)

    def units(self, text: str) -> list[str]:
        """What gets a score: the steps of a PRM, the whole solution (one unit) for an ORM."""
        if self.kind == "orm":
            return [text.strip()] if text.strip() else []
        return [s for s in text.split(self.step_delimiter) if s.strip()]

    def step_scores(self, prompts: Sequence[str], solutions: Sequence[str]) -> list[list[float]]:
        """Sigmoid scores of each step (one per unit for an ORM) of each ``prompts[i] + solutions[i]``."""
        import torch

        encoded = [encode_steps(self.tokenizer, p, self.units(s), self.step_delimiter) for p, s in zip(prompts, solutions)]
        out: list[list[float]] = [[] for _ in encoded]
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i][0]))  # less padding
        device = next(self.model.parameters()).device
        pad = self.tokenizer.pad_token_id or 0
        for first in range(0, len(order), self.batch_size):
            idx = [i for i in order[first : first + self.batch_size] if encoded[i][2]]
            if not idx:
                continue
            width = max(len(encoded[i][0]) for i in idx)
            ids = torch.full((len(idx), width), pad, dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            judged = torch.zeros((len(idx), width))
            for r, i in enumerate(idx):
                seq, start, _ = encoded[i]
                ids[r, : len(seq)] = torch.tensor(seq)
                mask[r, : len(seq)] = 1
                judged[r, start : len(seq)] = 1.0
            self.scored_tokens += int(mask.sum())
            with torch.inference_mode():
                logits = token_logits(self.model, self.readout, ids.to(device), mask.to(device))
                if self.readout == "step_end":
                    probs = torch.sigmoid(logits).cpu()
                else:
                    probs = prefix_log_scores(logits, judged.to(logits.device)).exp().cpu()
            for r, i in enumerate(idx):
                out[i] = probs[r, encoded[i][2]].tolist()
        return out

    def save_pretrained(self, path) -> None:
        p = Path(path)
        meta = {"kind": self.kind, "step_delimiter": self.step_delimiter, "readout": self.readout}
        if self.readout == "likelihood":  # the two scalars live in the marker, the LM in its own files
            meta["calibration"] = [float(self.model.verifier_scale), float(self.model.verifier_bias)]
            state = {k: v for k, v in self.model.state_dict().items() if not k.startswith("verifier_")}
            self.model.save_pretrained(p, state_dict=state)
        else:
            self.model.save_pretrained(p)
        self.tokenizer.save_pretrained(p)
        (p / MARKER).write_text(json.dumps(meta, indent=2))


class PRMScorer:
    """``StepScorer`` over a reward model: aggregated step scores of each partial solution."""

    def __init__(self, prm: ProcessRewardModel, task, aggregation: str = "min") -> None:
        aggregate([], aggregation)  # validates the name
        self.prm = prm
        self.task = task
        self.aggregation = aggregation

    def score(self, problem: Problem, partial_solutions: Sequence[str]) -> list[float]:
        return self.score_batch([problem], [partial_solutions])[0]

    def score_batch(self, problems: Sequence[Problem], solutions: Sequence[Sequence[str]]) -> list[list[float]]:
        """``score`` for many problems in one batched pass (search calls this across problems)."""
        prompts = [self.task.prompt(p) for p, sols in zip(problems, solutions) for _ in sols]
        flat = self.prm.step_scores(prompts, [s for sols in solutions for s in sols])
        out, k = [], 0
        for sols in solutions:
            out.append([aggregate(x, self.aggregation) for x in flat[k : k + len(sols)]])
            k += len(sols)
        return out

    def __repr__(self) -> str:
        return f"PRMScorer(kind={self.prm.kind!r}, aggregation={self.aggregation!r})"


# ---------------------------------------------------------------------- training
def _rows(dataset, tokenizer, delimiter: str, label_column: str):
    rows = []
    for ex in dataset:
        steps, labels = list(ex["steps"]), list(ex[label_column])
        if not steps:
            continue
        if len(steps) != len(labels):
            raise ValueError(f"row of problem {ex.get('problem_id')!r} has {len(steps)} steps but {len(labels)} labels")
        ids, start, pos = encode_steps(tokenizer, ex["prompt"], steps, delimiter)
        target = [-100.0] * len(ids)
        for k, y in zip(pos, labels):
            if y is None or math.isnan(y):
                raise ValueError(f"row of problem {ex.get('problem_id')!r} has a NaN label; relabel it")
            target[k] = float(y)
        rows.append({"input_ids": ids, "step_labels": target, "start": start, "problem_id": ex.get("problem_id", "")})
    return rows


def _collate(pad_id: int):
    def collate(batch):
        import torch

        width = max(len(b["input_ids"]) for b in batch)
        ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        labels = torch.full((len(batch), width), -100.0)
        judged = torch.zeros((len(batch), width))
        for r, b in enumerate(batch):
            n = len(b["input_ids"])
            ids[r, :n] = torch.tensor(b["input_ids"])
            mask[r, :n] = 1
            labels[r, :n] = torch.tensor(b["step_labels"])
            judged[r, b["start"] : n] = 1.0
        return {"input_ids": ids, "attention_mask": mask, "step_labels": labels, "token_mask": judged}

    return collate


def _auc_metrics(pred) -> dict[str, float]:
    import numpy as np

    from roadmap.core.stats import roc_auc

    logits = np.asarray(pred.predictions).reshape(-1)
    labels = np.asarray(pred.label_ids).reshape(-1)
    keep = labels >= 0
    y, s = labels[keep] >= 0.5, logits[keep]
    try:
        return {"auc": roc_auc(s.tolist(), y.tolist())}
    except ValueError:
        return {"auc": float("nan")}


def _trainer_class():
    import torch
    from transformers import Trainer

    from roadmap.core.training import BudgetMixin

    class StepBCETrainer(BudgetMixin, Trainer):
        """BCE on the step scores at step ends; every other position carries label -100.

        With the ``tokens`` and ``likelihood`` readouts the step score is exp(``prefix_log_scores``),
        and the BCE is written in log space (log(1 - p) = log(-expm1(log p))) so that it stays finite.
        The eval "logits" are then those log scores: the AUC only needs their order.
        """

        def __init__(self, *args, max_seconds=None, class_weights=(1.0, 1.0), readout="tokens", **kw):
            super().__init__(*args, **kw)
            self.init_budget(max_seconds)
            self.class_weights = class_weights  # (bad, good)
            self.readout = readout

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            labels = inputs.pop("step_labels")
            judged = inputs.pop("token_mask")
            logits = token_logits(model, self.readout, inputs["input_ids"], inputs["attention_mask"])
            keep = labels >= 0
            y = labels[keep]
            w_bad, w_good = self.class_weights
            weight = y * w_good + (1 - y) * w_bad
            if self.readout == "step_end":
                loss = torch.nn.functional.binary_cross_entropy_with_logits(logits[keep], y, weight=weight)
                out = {"logits": logits}
            else:
                log_scores = prefix_log_scores(logits, judged)
                log_p = log_scores[keep].clamp(max=-1e-6)
                bce = -(y * log_p + (1 - y) * torch.log(-torch.expm1(log_p)))
                loss = (weight * bce).mean()
                out = {"logits": log_scores}
            return (loss, out) if return_outputs else loss

    return StepBCETrainer


def _class_weights(rows) -> tuple[float, float]:
    """(bad, good) weights that give both classes equal total weight; soft labels count fractionally."""
    targets = [y for r in rows for y in r["step_labels"] if y >= 0]
    good = sum(targets)
    bad = len(targets) - good
    if good == 0 or bad == 0:
        return 1.0, 1.0
    return len(targets) / (2 * bad), len(targets) / (2 * good)


def _with_calibration(model, scale: float, bias: float):
    """``model`` (a causal LM) with the ``likelihood`` readout's two calibration scalars attached."""
    import torch

    model.register_parameter("verifier_scale", torch.nn.Parameter(torch.tensor(float(scale))))
    model.register_parameter("verifier_bias", torch.nn.Parameter(torch.tensor(float(bias))))
    return model


def _load_for_training(init, readout: str):
    """The reward model to train, from a policy folder (its weights) or a model config.

    A one-logit token classifier, or for the ``likelihood`` readout the causal LM itself.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForTokenClassification, PretrainedConfig

    from_config = isinstance(init, PretrainedConfig)
    if not from_config and not (Path(init) / "config.json").exists():
        raise FileNotFoundError(f"init={str(init)!r} has no config.json; pass a policy folder or a model config")
    if readout == "likelihood":
        lm = AutoModelForCausalLM.from_config(init) if from_config else AutoModelForCausalLM.from_pretrained(init)
        return _with_calibration(lm, *_LIKELIHOOD_INIT)
    cfg = init if from_config else AutoConfig.from_pretrained(init)
    cfg.num_labels, cfg.classifier_dropout = 1, 0.0
    if from_config:
        model = AutoModelForTokenClassification.from_config(cfg)
    else:
        model = AutoModelForTokenClassification.from_pretrained(init, config=cfg)
    head = getattr(model, "score", None)  # the token-classification head of transformers' decoder models
    if readout == "tokens" and getattr(head, "bias", None) is not None:
        with torch.no_grad():
            head.bias.fill_(_TOKENS_HEAD_BIAS)
    return model


def train_reward_model(
    dataset, init, config: RewardModelConfig | None = None, *, kind: str = "prm", step_delimiter: str = "\n",
    tokenizer=None,
) -> dict[str, Any]:
    """Train a PRM or ORM on a label dataset (columns ``prompt``, ``steps``, ``soft_labels``/``hard_labels``).

    Args:
        dataset: rows from ``rewards.labels.label_solutions`` (or ``rewards.orm.orm_dataset``).
        init: a policy folder whose weights start the reward model, or a ``PretrainedConfig``
            (with ``tokenizer``) for a reward model trained from scratch.
        config: training knobs.
        kind: "prm" or "orm" (stored with the model; decides how ``ProcessRewardModel`` splits).
        step_delimiter: the task's step delimiter.

    Returns:
        A summary dict (steps, wall seconds, losses, eval AUC), also written as ``train_result.json``.
        The model folder appears at ``config.output_dir`` only when training finished.
    """
    import time

    import torch
    from transformers import AutoTokenizer, TrainingArguments

    config = config or RewardModelConfig()
    if isinstance(init, (str, Path)):
        from roadmap.core.io import require_local_path

        require_local_path(init, "init policy folder")  # a local error for a typo, not a Hub lookup
    torch.manual_seed(config.seed)
    if tokenizer is None:
        tokenizer = AutoTokenizer.from_pretrained(init)
    model = _load_for_training(init, config.readout)
    rows = _rows(dataset, tokenizer, step_delimiter, f"{config.labels}_labels")
    if not rows:
        raise ValueError("the label dataset has no solution with steps; label some solutions first")
    # split by problem, so that no eval problem's solutions are trained on
    train, evals = [], []
    for r in rows:
        held_out = config.eval_fraction and hash_split(r["problem_id"], config.eval_fraction) == "test"
        (evals if held_out else train).append(r)
    class_weights = _class_weights(train) if config.balance else (1.0, 1.0)
    out = Path(config.output_dir)
    tmp = out.with_name(out.name + ".tmp")
    args = TrainingArguments(
        output_dir=str(tmp / "checkpoints"),
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size * 2,
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        learning_rate=config.learning_rate,
        weight_decay=0.01,
        logging_steps=config.logging_steps,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=1,
        eval_strategy="no",
        report_to="none",
        seed=config.seed,
        remove_unused_columns=False,
        label_names=["step_labels"],
        use_cpu=not torch.cuda.is_available(),
        dataloader_num_workers=0,
    )
    optimizers = (None, None)
    if config.readout == "likelihood":  # the calibration scalars learn far faster than the LM
        calibration = [model.verifier_scale, model.verifier_bias]
        body = [p for n, p in model.named_parameters() if not n.startswith("verifier_")]
        optimizers = (torch.optim.AdamW([
            {"params": body, "lr": config.learning_rate, "weight_decay": 0.01},
            {"params": calibration, "lr": config.calibration_lr, "weight_decay": 0.0},
        ]), None)
    trainer = _trainer_class()(
        model=model, args=args, train_dataset=train, eval_dataset=evals or None, optimizers=optimizers,
        data_collator=_collate(tokenizer.pad_token_id or 0), compute_metrics=_auc_metrics,
        max_seconds=config.max_minutes * 60 if config.max_minutes else None, class_weights=class_weights,
        readout=config.readout,
    )
    t0 = time.perf_counter()
    trainer.train()
    wall = time.perf_counter() - t0
    metrics = trainer.evaluate() if evals else {}
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    rm = ProcessRewardModel(trainer.model, tokenizer, step_delimiter, kind, readout=config.readout)
    rm.save_pretrained(tmp)
    shutil.rmtree(tmp / "checkpoints", ignore_errors=True)
    result = {
        "kind": kind, "labels": config.labels, "readout": config.readout, "steps": trainer.state.global_step, "wall_seconds": wall,
        "train_tokens": trainer.train_tokens, "train_solutions": len(train), "eval_solutions": len(evals),
        "eval_auc": metrics.get("eval_auc"), "first_loss": losses[0] if losses else None,
        "final_loss": losses[-1] if losses else None, "losses": losses, "class_weights": list(class_weights),
        "config": asdict(config),
    }
    (tmp / "train_result.json").write_text(json.dumps(result, indent=2))
    replace_dir(tmp, out)
    logger.info("%s trained: %d steps in %.0fs, eval AUC %s", kind.upper(), result["steps"], wall, result["eval_auc"])
    return result


def train_prm(dataset, init, config: RewardModelConfig | None = None, *, step_delimiter: str = "\n", **kw):
    """Train a process reward model; see ``train_reward_model``."""
    return train_reward_model(dataset, init, config, kind="prm", step_delimiter=step_delimiter, **kw)
