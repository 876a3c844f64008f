"""Training of process (and outcome) reward models: binary cross-entropy on step labels.

The model and its readouts are ``rewards.prm``'s; this module trains them on soft
(Math-Shepherd MC fractions, arXiv 2312.08935) or hard (OmegaPRM, arXiv 2406.06592) labels from
``rewards.labels``, in a ``transformers.Trainer`` subclass with progress, a held-out ROC-AUC,
and the library's staged-output skeleton (``roadmap.core.training.run_staged_training``).
Training never leaves a PRM worse than where it started: the held-out AUC is measured on the
initialisation (step 0) and after every epoch (or ``eval_steps``), and the weights of the best
evaluation are the ones saved, the initialisation's included (``keep_best``). The held-out labels
are those of whole problems (``split_by_problem``), so no problem's labels are on both sides.
TRL has no PRM trainer for causal models with soft labels, so this module is that trainer. A
solution is cut at ``Lengths.train_max_length`` tokens (its steps past the cut are not trained;
``RewardModelResult.truncated_solutions`` counts them). The weights train in fp32 whatever the
initialising checkpoint's dtype, with optional autocast, and are saved back in that dtype
(``roadmap.core.precision``).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rewards.prm import (
    DEFAULT_READOUT,
    READOUTS,
    ProcessRewardModel,
    _load_for_training,
    encode_steps,
    judged_end,
)
from rewards.prm_metrics import held_out_metrics, problem_key
from rewards.prm_trainer import collate_rows, trainer_class
from roadmap.core.errors import ConfigError, DataError
from roadmap.core.lengths import Lengths
from roadmap.core.precision import (
    accumulation_field,
    cast_to,
    check_memory_fields,
    gradient_checkpointing_field,
    memory_args,
    mixed_precision_field,
)
from roadmap.core.tasks.base import hash_split
from roadmap.core.training import (
    TrainResult,
    check_model_dir,
    overwrite_field,
    run_staged_training,
    time_cap_field,
    training_args,
)

logger = logging.getLogger(__name__)

__all__ = ["RewardModelConfig", "RewardModelResult", "split_by_problem", "train_reward_model", "train_prm"]

#: the held-out measures ``keep_best`` can choose checkpoints by (``RewardModelConfig.select_by``)
SELECT_BY = ("step_auc", "selection_auc")
#: the label columns a reward model trains on: the MC fraction, or its 0/1 rounding
LABEL_KINDS = ("soft", "hard")


@dataclass
class RewardModelConfig:
    """Training knobs of a PRM or ORM. Defaults suit the embedded tiny policy on arith."""

    output_dir: str = field(default="prm", metadata={"help": "Where the trained reward model is written."})
    labels: str = field(default="soft", metadata={"help": "Train on 'soft' (MC fraction) or 'hard' labels."})
    epochs: float = field(default=2.0, metadata={"help": "Passes over the training solutions."})
    max_steps: int = field(default=-1, metadata={"help": "Stop after this many optimizer steps (-1: no limit)."})
    max_minutes: float | None = time_cap_field()
    learning_rate: float | None = field(default=None, metadata={
        "help": "Peak learning rate (AdamW); default 1e-4 for the 'likelihood' readout (keep what the model "
                "knows), 1e-3 for a new head."})
    calibration_lr: float = field(default=0.05, metadata={
        "help": "Learning rate of the 'likelihood' readout's two calibration scalars."})
    batch_size: int = field(default=32, metadata={"help": "Solutions per optimizer step."})
    eval_fraction: float = field(default=0.1, metadata={"help": "Share of problems held out for the eval AUC."})
    eval_steps: int = field(default=0, metadata={
        "help": "Measure the held-out AUC every this many optimizer steps (0: at the end of every epoch); the "
                "initialisation is measured before training and the last step after it."})
    keep_best: bool = field(default=True, metadata={
        "help": "Save the weights of the evaluation with the best held-out AUC, the initialisation's included "
                "(an equal AUC goes to the lower held-out loss, then to the earlier step), so training never "
                "makes the PRM worse on held-out labels; False: the last step's."})
    logging_steps: int = field(default=50, metadata={"help": "Log loss every this many steps."})
    save_steps: int = field(default=500, metadata={"help": "Checkpoint every this many steps."})
    seed: int = field(default=0, metadata={"help": "Seed of the head's initialisation and data order."})
    balance: bool = field(default=True, metadata={
        "help": "Weight the BCE so that good and bad steps count equally (wrong steps are rare)."})
    pairwise_weight: float = field(default=0.0, metadata={
        "help": "Weight of the within-problem pairwise term added to the BCE: a Bradley-Terry loss on every right "
                "and wrong solution of one problem in a batch, on the scores selection reads (min step score; an "
                "ORM's last). Batches then hold whole problems (rewards.prm_pairwise). It teaches the choice "
                "selection makes, against the policy's confident mistakes; 0: BCE only."})
    select_by: str = field(default="step_auc", metadata={
        "help": "The held-out measure keep_best saves the best checkpoint by: 'step_auc' (step ROC-AUC against the "
                "labels) or 'selection_auc' (the chance a right solution outscores a wrong one of the same "
                "problem: what best-of-N and search need)."})
    overwrite: bool = overwrite_field()
    readout: str = field(default=DEFAULT_READOUT, metadata={
        "help": "'likelihood' (calibrated LM likelihood of each token), 'tokens' (a new per-token head) or "
                "'step_end' (the delimiter's score alone); see rewards.prm."})
    lengths: Lengths = field(default_factory=Lengths, metadata={
        "help": "Length limits; prompt + solution is cut at lengths.train_max_length tokens (in a recipe: "
                "top-level lengths:)."})
    mixed_precision: str = mixed_precision_field()
    gradient_checkpointing: bool = gradient_checkpointing_field()
    gradient_accumulation_steps: int = accumulation_field()

    def __post_init__(self) -> None:
        if self.labels not in LABEL_KINDS:
            raise ConfigError(f"labels={self.labels!r} must be 'soft' or 'hard'")
        if self.readout not in READOUTS:
            raise ConfigError(f"readout={self.readout!r} is unknown; use one of {READOUTS}")
        if self.learning_rate is None:
            self.learning_rate = 1e-4 if self.readout == "likelihood" else 1e-3
        if not 0 <= self.eval_fraction < 1:
            raise ConfigError(f"eval_fraction={self.eval_fraction} must lie in [0, 1)")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size={self.batch_size} must be at least 1")
        if self.eval_steps < 0:
            raise ConfigError(f"eval_steps={self.eval_steps} must be 0 (every epoch) or a positive step count")
        if not (self.pairwise_weight >= 0 and math.isfinite(self.pairwise_weight)):
            raise ConfigError(f"pairwise_weight={self.pairwise_weight} must be a finite number >= 0 (0: BCE only)")
        if self.select_by not in SELECT_BY:
            raise ConfigError(f"select_by={self.select_by!r} is unknown; use one of {SELECT_BY}")
        check_memory_fields(self, self.batch_size)


@dataclass(kw_only=True)
class RewardModelResult(TrainResult):
    """What a PRM/ORM training produced: the ``TrainResult`` fields plus the reward model's own."""

    kind: str = field(metadata={"help": "'prm' or 'orm'."})
    labels: str = field(metadata={"help": "'soft' or 'hard': the labels trained on."})
    readout: str = field(metadata={"help": "The readout trained (rewards.prm)."})
    train_solutions: int = field(metadata={"help": "Solutions trained on."})
    eval_solutions: int = field(metadata={"help": "Solutions of held-out problems, for the AUC."})
    eval_auc: float | None = field(default=None, metadata={
        "help": "Step-level ROC-AUC on held-out problems of the saved reward model."})
    eval_problems: int = field(default=0, metadata={"help": "Problems held out (none of their labels trained on)."})
    eval_selection_auc: float | None = field(default=None, metadata={
        "help": "Of the saved model, on held-out problems: the chance that a right solution's min step score beats "
                "a wrong one's of the same problem (rewards.prm_metrics.selection_auc); below 0.5, selection by "
                "this model picks wrong solutions over right ones (None: no held-out problem with both)."})
    eval_selection_problems: int = field(default=0, metadata={
        "help": "Held-out problems with both a right and a wrong solution, over which eval_selection_auc is taken."})
    init_eval_auc: float | None = field(default=None, metadata={
        "help": "The held-out AUC of the initialisation, before any training step (None: no held-out labels)."})
    eval_history: list[dict] = field(default_factory=list, metadata={
        "help": "Every held-out evaluation, in order: {'step': optimizer step (0: the initialisation), 'auc': "
                "step ROC-AUC, 'loss': weighted BCE (plus the pairwise term), 'selection_auc': within-problem AUC "
                "(None: no mixed held-out problem)}."})
    chosen_step: int | None = field(default=None, metadata={
        "help": "The step whose weights were saved (0: the initialisation; None: no held-out labels, the last)."})
    kept_init: bool = field(default=False, metadata={
        "help": "True when no trained step beat the initialisation's held-out AUC, so the initialisation was saved."})
    class_weights: list[float] = field(default_factory=list, metadata={"help": "(bad, good) BCE weights."})
    truncated_solutions: int = field(default=0, metadata={
        "help": "Solutions longer than lengths.train_max_length, cut there (their later steps untrained; a "
                "solution with no step left is dropped)."})


def _rows(dataset, tokenizer, delimiter: str, label_column: str, max_length: int, readout: str = "step_end"):
    """Training rows (token ids, a label at each step end, where the solution starts), cut at ``max_length``
    tokens; also the number of solutions that were cut."""
    rows, cut = [], 0
    for ex in dataset:
        steps, labels = list(ex["steps"]), list(ex[label_column])
        if not steps:
            continue
        if len(steps) != len(labels):
            raise DataError(f"row of problem {ex.get('problem_id')!r} has {len(steps)} steps but {len(labels)} labels")
        ids, start, pos = encode_steps(tokenizer, ex["prompt"], steps, delimiter)
        target = [-100.0] * len(ids)
        for k, y in zip(pos, labels):
            if y is None or math.isnan(y):
                raise DataError(f"row of problem {ex.get('problem_id')!r} has a NaN label; relabel it")
            target[k] = float(y)
        if len(ids) > max_length:
            cut += 1
            ids, target = ids[:max_length], target[:max_length]
            if all(y < 0 for y in target):
                continue  # not one step ends inside the limit: nothing to train on
        rows.append({"input_ids": ids, "step_labels": target, "start": start, "end": judged_end(readout, ids, pos),
                     "problem_id": ex.get("problem_id", ""), "prompt": ex["prompt"], "steps": steps,
                     "correct": ex.get("correct")})
    return rows, cut


def split_by_problem(rows, eval_fraction: float) -> tuple[list, list]:
    """(train, held-out) rows, split by a stable hash of the problem (``problem_id``, else the prompt).

    Whole problems go to one side, so labels of one problem are never both trained on and judged;
    the split is the same on every run and every machine (``roadmap.core.tasks.base.hash_split``).
    """
    train: list = []
    evals: list = []
    for r in rows:
        held_out = eval_fraction > 0 and hash_split(problem_key(r), eval_fraction) == "test"
        (evals if held_out else train).append(r)
    return train, evals


def _eval_schedule(config: RewardModelConfig, has_evals: bool) -> dict:
    """``TrainingArguments`` of the held-out evaluations during training (``keep_best`` chooses among them)."""
    if not (config.keep_best and has_evals):
        return {"eval_strategy": "no"}
    if config.eval_steps:
        return {"eval_strategy": "steps", "eval_steps": config.eval_steps}
    return {"eval_strategy": "epoch"}


def _class_weights(rows) -> tuple[float, float]:
    """(bad, good) weights that give both classes equal total weight; soft labels count fractionally."""
    targets = [y for r in rows for y in r["step_labels"] if y >= 0]
    good = sum(targets)
    bad = len(targets) - good
    if good == 0 or bad == 0:
        return 1.0, 1.0
    return len(targets) / (2 * bad), len(targets) / (2 * good)


def train_reward_model(
    dataset, init, config: RewardModelConfig | None = None, *, kind: str = "prm", step_delimiter: str = "\n",
    tokenizer=None,
) -> RewardModelResult:
    """Train a PRM or ORM on a label dataset (columns ``prompt``, ``steps``, ``soft_labels``/``hard_labels``).

    Args:
        dataset: rows from ``rewards.labels.label_solutions`` (or ``rewards.orm.orm_dataset``).
        init: a local policy folder whose weights start the reward model, or a ``PretrainedConfig``
            (with ``tokenizer``) for a reward model trained from scratch.
        config: training knobs.
        kind: "prm" or "orm" (stored with the model; decides how ``ProcessRewardModel`` splits).
        step_delimiter: the task's step delimiter.

    Returns:
        A ``RewardModelResult`` (steps, wall seconds, losses, eval AUC, ``completed``; the
        initialisation's held-out AUC, every evaluation's, the step saved and whether it was the
        initialisation), also written as ``train_result.json``. The model folder appears at ``config.output_dir`` only when training
        finished; an existing folder that is not a library output of this ``kind`` is refused
        (``roadmap.core.io.OutputExistsError``).
    """
    import torch
    from transformers import AutoTokenizer, PretrainedConfig, TrainingArguments

    config = config or RewardModelConfig()
    inputs = {} if isinstance(init, PretrainedConfig) else {"init": check_model_dir(init, "init")}
    if tokenizer is None:
        tokenizer = AutoTokenizer.from_pretrained(init)
    rows, cut = _rows(dataset, tokenizer, step_delimiter, f"{config.labels}_labels", config.lengths.train_max_length,
                      config.readout)
    if cut:
        logger.warning("%d of %d solutions are longer than lengths.train_max_length=%d tokens and were cut there",
                       cut, len(dataset), config.lengths.train_max_length)
    if not rows:
        raise DataError("the label dataset has no solution with steps; label some solutions first")
    train, evals = split_by_problem(rows, config.eval_fraction)
    eval_problems = len({problem_key(r) for r in evals})
    if config.keep_best and not evals:
        logger.warning("no problem is held out (eval_fraction=%s over %d rows): the held-out AUC cannot be "
                       "measured, so the last step is saved whether or not training helped",
                       config.eval_fraction, len(rows))
    class_weights = _class_weights(train) if config.balance else (1.0, 1.0)
    how = "last" if kind == "orm" else "min"  # the aggregate selection reads

    def build(scratch: Path):
        model = _load_for_training(init, config.readout)
        # the checkpoint's dtype (the likelihood readout's own scalars are fp32); training runs on fp32 master
        # weights, never pure bf16
        source_dtype = next(p.dtype for n, p in model.named_parameters()
                            if p.is_floating_point() and not n.startswith("verifier_"))
        model.to(torch.float32)
        args = TrainingArguments(**training_args(
            scratch, config.seed, **memory_args(config, config.batch_size),
            per_device_eval_batch_size=config.batch_size * 2, num_train_epochs=config.epochs,
            max_steps=config.max_steps, learning_rate=config.learning_rate, weight_decay=0.01,
            logging_steps=config.logging_steps, save_strategy="steps", save_steps=config.save_steps,
            save_total_limit=1, remove_unused_columns=False, label_names=["step_labels"],
            **_eval_schedule(config, bool(evals)),
        ))
        optimizers: tuple[Any, None] = (None, None)
        if config.readout == "likelihood":  # the calibration scalars learn far faster than the LM
            calibration = [model.verifier_scale, model.verifier_bias]
            body = [p for n, p in model.named_parameters() if not n.startswith("verifier_")]
            groups: list[dict[str, Any]] = [
                {"params": body, "lr": config.learning_rate, "weight_decay": 0.01},
                {"params": calibration, "lr": config.calibration_lr, "weight_decay": 0.0},
            ]
            optimizers = (torch.optim.AdamW(groups), None)
        trainer = trainer_class()(
            model=model, args=args, train_dataset=train, eval_dataset=evals or None, optimizers=optimizers,
            data_collator=collate_rows(tokenizer.pad_token_id or 0), compute_metrics=held_out_metrics(evals, how),
            max_seconds=config.max_minutes * 60 if config.max_minutes else None, class_weights=class_weights,
            readout=config.readout, keep_best=config.keep_best, pairwise_weight=config.pairwise_weight,
            select_by=config.select_by, how=how,
        )
        trainer.source_dtype = source_dtype
        return trainer

    def save(trainer, folder: Path) -> None:
        # saved in the initialising checkpoint's dtype; the likelihood readout's two scalars stay fp32
        model = cast_to(trainer.model, trainer.source_dtype, keep_fp32=("verifier_",))
        ProcessRewardModel(model, tokenizer, step_delimiter, kind, readout=config.readout).save_pretrained(folder)
        if model.config.dtype != trainer.source_dtype:  # transformers read the dtype off the fp32 scalars
            model.config.dtype = trainer.source_dtype
            model.config.save_pretrained(folder)
        cast_to(model, torch.float32)  # the held-out AUC below reads the saved weights, computed in fp32

    def result(trainer, stats) -> RewardModelResult:
        metrics = trainer.evaluate() if evals else {}
        history = trainer.eval_history
        within = metrics.get("eval_selection_auc", float("nan"))
        within, mixed = (None if math.isnan(within) else within), int(metrics.get("eval_selection_problems", 0))
        trainer.model.train()
        if within is not None and within <= 0.5:
            logger.warning("on %d held-out problems, a right solution outscores a wrong one of the same problem with "
                           "probability %.3f (<= 0.5): best-of-N or search by this %s will pick wrong solutions over "
                           "right ones; prefer majority or weighted voting (docs/benchmarks/self_prm.md)",
                           mixed, within, kind.upper())
        return RewardModelResult(output_dir=str(config.output_dir), kind=kind, labels=config.labels,
                                 readout=config.readout, train_solutions=len(train), eval_solutions=len(evals),
                                 eval_problems=eval_problems, eval_auc=metrics.get("eval_auc"),
                                 eval_selection_auc=within, eval_selection_problems=mixed,
                                 init_eval_auc=history[0]["auc"] if history else None, eval_history=history,
                                 chosen_step=trainer.chosen_step, kept_init=trainer.chosen_step == 0,
                                 class_weights=list(class_weights), truncated_solutions=cut, **stats)

    res = run_staged_training(config.output_dir, kind, config=config, build=build, save=save, result=result,
                              result_file="train_result.json", inputs=inputs)
    logger.info("%s trained: %d steps in %.0fs, eval AUC %s (initialisation %s, saved step %s)", kind.upper(),
                res.steps, res.wall_seconds, res.eval_auc, res.init_eval_auc, res.chosen_step)
    return res


def train_prm(dataset, init, config: RewardModelConfig | None = None, *, step_delimiter: str = "\n", **kw):
    """Train a process reward model; see ``train_reward_model``."""
    return train_reward_model(dataset, init, config, kind="prm", step_delimiter=step_delimiter, **kw)
