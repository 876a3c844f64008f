"""The Trainer behind ``rewards.prm_training``: step BCE (plus the optional within-problem pairwise term) on a
reward model's step scores, the held-out evaluations ``keep_best`` chooses among, and the batches they read.

Split from ``rewards.prm_training`` (the config, the rows and the staged training around this trainer).
"""

from __future__ import annotations

import logging
import math

from rewards.prm import prefix_log_scores, token_logits
from rewards.prm_metrics import problem_key
from rewards.prm_pairwise import ProblemGroupedSampler, pairwise_loss, solution_scores
from roadmap.core.training import forward_through

logger = logging.getLogger(__name__)

__all__ = ["collate_rows", "trainer_class"]


def collate_rows(pad_id: int):
    """The collate function of training rows (``rewards.prm_training._rows``): padded ids and mask, the step
    labels (-100 where none), the judged-token mask, and per row its problem (an index within the batch) and its
    final verdict (1 right, 0 wrong, -1 unknown) for the pairwise term."""

    def collate(batch):
        import torch

        width = max(len(b["input_ids"]) for b in batch)
        ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        labels = torch.full((len(batch), width), -100.0)
        judged = torch.zeros((len(batch), width))
        keys: dict[str, int] = {}
        groups = torch.tensor([keys.setdefault(problem_key(b), len(keys)) for b in batch], dtype=torch.long)
        correct = torch.tensor([-1 if b.get("correct") is None else int(bool(b["correct"])) for b in batch],
                               dtype=torch.long)
        for r, b in enumerate(batch):
            n = len(b["input_ids"])
            ids[r, :n] = torch.tensor(b["input_ids"])
            mask[r, :n] = 1
            labels[r, :n] = torch.tensor(b["step_labels"])
            judged[r, b["start"] : b["end"]] = 1.0
        return {"input_ids": ids, "attention_mask": mask, "step_labels": labels, "token_mask": judged,
                "groups": groups, "correct": correct}

    return collate


def trainer_class():
    import torch
    from transformers import Trainer

    from roadmap.core.training import BudgetMixin

    class StepBCETrainer(BudgetMixin, Trainer):
        """BCE on the step scores at step ends; every other position carries label -100.

        With the ``tokens`` and ``likelihood`` readouts the step score is exp(``prefix_log_scores``),
        and the BCE is written in log space (log(1 - p) = log(-expm1(log p))) so that it stays finite.
        The eval "logits" are then those log scores: the AUC only needs their order.
        """

        def __init__(self, *args, max_seconds=None, class_weights=(1.0, 1.0), readout="tokens", keep_best=False,
                     pairwise_weight=0.0, select_by="step_auc", how="min", **kw):
            super().__init__(*args, **kw)
            self.pairwise_weight, self.select_by, self.how = pairwise_weight, select_by, how
            self.init_budget(max_seconds)
            self.class_weights = class_weights  # (bad, good)
            self.readout = readout
            self.keep_best = keep_best and self.eval_dataset is not None
            self.eval_history: list[dict] = []  # {"step", "auc"} of every held-out evaluation, step 0 = the init
            self.chosen_step: int | None = None
            self._tracking = False
            self._best: tuple[float, int, dict] | None = None  # (auc, step, CPU copy of the weights)

        def evaluate(self, *args, **kw):
            metrics = super().evaluate(*args, **kw)
            if self._tracking:
                auc, step = metrics.get("eval_auc", float("nan")), self.state.global_step
                loss = metrics.get("eval_loss", float("nan"))
                within = metrics.get("eval_selection_auc", float("nan"))  # held_out_metrics, same predictions
                within = None if math.isnan(within) else within
                self.eval_history.append({"step": step, "auc": auc, "loss": loss, "selection_auc": within})
                if self.select_by == "selection_auc":
                    auc = float("nan") if within is None else within
                # a higher AUC wins; an equal one (it saturates at 1.0) goes to the lower held-out BCE, and a
                # full tie keeps the earlier weights, the initialisation first of all
                key = (auc, -loss if not math.isnan(loss) else -math.inf)
                if not math.isnan(auc) and (self._best is None or key > self._best[0]):
                    weights = {k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()}
                    self._best = (key, step, weights)
            return metrics

        def train(self, *args, **kw):
            """Train between two held-out evaluations (the initialisation, the last step); with ``keep_best``
            the model ends with the weights of the best evaluation."""
            if not self.keep_best:
                return super().train(*args, **kw)
            self._tracking = True
            try:
                self.evaluate()  # step 0: the initialisation, the bar every checkpoint must clear
                out = super().train(*args, **kw)
                if self.eval_history[-1]["step"] != self.state.global_step:
                    self.evaluate()
            finally:
                self._tracking = False
            if self._best is None:
                logger.warning("no held-out evaluation gave a %s (the held-out steps or solutions are all of one "
                               "class); keeping the last step's weights", self.select_by)
                self.chosen_step = self.state.global_step
                return out
            (auc, _), self.chosen_step, weights = self._best
            if self.chosen_step != self.state.global_step:
                self.model.load_state_dict(weights)
                last = self.eval_history[-1]["auc" if self.select_by == "step_auc" else "selection_auc"]
                logger.warning("the held-out %s was best at step %d (%.4f%s), not at the last step %d (%s): "
                               "saving step %d's weights", self.select_by, self.chosen_step, auc,
                               ", the initialisation" if self.chosen_step == 0 else "", self.state.global_step,
                               last, self.chosen_step)
            self._best = None  # free the copy
            return out

        def _get_train_sampler(self, train_dataset=None):
            if not self.pairwise_weight:
                return super()._get_train_sampler(train_dataset)
            rows = self.train_dataset if train_dataset is None else train_dataset
            return ProblemGroupedSampler([problem_key(r) for r in rows], self.args.seed)

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            labels = inputs.pop("step_labels")
            judged = inputs.pop("token_mask")
            groups, correct = inputs.pop("groups"), inputs.pop("correct")
            # accelerate autocasts model.forward only; the likelihood readout calls the decoder and head itself
            with self.accelerator.autocast():
                logits = forward_through(model, token_logits, self.readout, inputs["input_ids"],
                                         inputs["attention_mask"])
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
            if self.pairwise_weight:  # the step-end logit or the log score: either orders solutions as selection does
                scores, has = solution_scores(out["logits"], keep, self.how)
                pair = pairwise_loss(scores, has, groups, correct)
                if pair is not None:
                    loss = loss + self.pairwise_weight * pair
            return (loss, out) if return_outputs else loss

    return StepBCETrainer
