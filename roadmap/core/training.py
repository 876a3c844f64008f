"""Budgeted training for transformers ``Trainer`` subclasses: stop on wall time, schedule by it.

SFT, PRM and ORM training all run under a budget of steps *or* minutes, whichever ends first.
The learning rate (linear warm-up, then cosine decay to a floor) follows the same budget, so a
run stopped by the clock still ends at a small learning rate instead of being cut mid-decay.
torch and transformers are imported lazily: ``roadmap.core`` stays cheap to import.
"""

from __future__ import annotations

import math
import time

__all__ = ["BudgetMixin", "budget_lr_factor"]


def budget_lr_factor(progress: float, warmup_fraction: float, min_lr_ratio: float) -> float:
    """Multiplier of the peak learning rate at ``progress`` in [0, 1] of the budget."""
    progress = min(1.0, max(0.0, progress))
    if progress < warmup_fraction:
        return max(progress / warmup_fraction, 1e-3)
    decay = (progress - warmup_fraction) / max(1e-9, 1 - warmup_fraction)
    return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * decay))


class BudgetMixin:
    """Mix into a ``transformers.Trainer`` subclass (before it) to add a wall-time budget.

    Call ``init_budget`` from ``__init__`` after ``super().__init__``. The trainer then stops
    once ``max_seconds`` of training have passed, schedules the learning rate by whichever of
    steps or time is further along, and counts the non-padding tokens it trained on.
    """

    def init_budget(self, max_seconds: float | None, warmup_fraction: float = 0.03, min_lr_ratio: float = 0.05):
        from transformers import TrainerCallback

        self.max_seconds = max_seconds
        self.warmup_fraction = warmup_fraction
        self.min_lr_ratio = min_lr_ratio
        self.started: float | None = None
        self.train_tokens = 0
        trainer = self

        class _Stop(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):
                if trainer.time_fraction() >= 1.0:
                    control.should_training_stop = True
                return control

        self.add_callback(_Stop())

    def time_fraction(self) -> float:
        if self.max_seconds is None or self.started is None:
            return 0.0
        return (time.perf_counter() - self.started) / self.max_seconds

    def train_seconds(self) -> float:
        return time.perf_counter() - self.started if self.started is not None else 0.0

    def create_scheduler(self, num_training_steps: int, optimizer=None):
        import torch

        optimizer = optimizer if optimizer is not None else self.optimizer

        def factor(step: int) -> float:
            progress = max(step / max(num_training_steps, 1), self.time_fraction())
            return budget_lr_factor(progress, self.warmup_fraction, self.min_lr_ratio)

        self.lr_scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return self.lr_scheduler

    def training_step(self, model, inputs, *args, **kwargs):
        if self.started is None:
            self.started = time.perf_counter()
        if "attention_mask" in inputs:
            self.train_tokens += int(inputs["attention_mask"].sum())
        return super().training_step(model, inputs, *args, **kwargs)
