"""The ratio readout of a self-made PRM: what training on the labels added to the policy's own likelihood.

A ``likelihood`` PRM trained from a policy starts as that policy's token confidence, and training moves it only
part of the way: the policy's beliefs stay in its scores. Among one problem's samples that is what hurts. The
policy's confident mistakes are the answers that win the vote, and its own likelihood ranks them above the right
answers. On the ladder's warm start at 3 operands, the trained PRM ranked a right solution above one with the
winning wrong answer with probability 0.45 (its untrained start: 0.35).

``RatioPRM`` divides the policy's beliefs out. Its step score is σ(log s_θ(prefix) − log s_0(prefix)), where
s_θ is the trained PRM's score and s_0 the score of its initialisation: the same policy under the same starting
calibration, which is where training began. This is the implicit PRM's log-ratio to a reference (Yuan et al.,
arXiv 2412.01981; PRIME, arXiv 2502.01456), read from a PRM trained with step labels. It is 0.5 where training
changed nothing, above 0.5 where the labels taught that the prefix is better than the policy thought, and below
where they taught it is worse. On the same problems it ranked a right solution above the winning wrong answer
with probability 0.74 (``docs/benchmarks/self_prm.md``).

It needs the initialising policy. ``RatioPRM.from_pretrained`` finds it through the PRM folder's marker (the
``init`` input recorded by ``roadmap train-prm``) and refuses a moved or changed one. Use it as
``--prm-format ratio`` on any command that takes ``--prm``. Scoring costs two forward passes, one per model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from rewards.prm import MARKER, ProcessRewardModel
from roadmap.core.errors import ConfigError, MissingPathError

__all__ = ["RatioPRM"]


def _sigmoid_log_ratio(a: float, b: float) -> float:
    z = math.log(max(a, 1e-30)) - math.log(max(b, 1e-30))
    return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))


class RatioPRM:
    """Step scores σ(log s_trained − log s_initial) of a trained ``likelihood`` PRM and its initialisation.

    Args:
        trained: the trained reward model (``likelihood`` readout).
        reference: its initialisation (``ProcessRewardModel.from_policy`` of the policy it was trained from).

    It has ``ProcessRewardModel``'s scoring interface (``step_scores``, ``units``, ``tokenizer``,
    ``max_positions``, ``last_truncated``), so ``PRMScorer`` and every search take it unchanged.
    """

    def __init__(self, trained: ProcessRewardModel, reference: ProcessRewardModel) -> None:
        if trained.readout != "likelihood" or reference.readout != "likelihood":
            raise ConfigError(f"the ratio readout divides two likelihood PRMs; got readouts {trained.readout!r} and "
                              f"{reference.readout!r} (train the PRM with --readout likelihood, the default)")
        self.trained, self.reference = trained, reference
        self.kind, self.step_delimiter = trained.kind, trained.step_delimiter
        self.tokenizer, self.readout = trained.tokenizer, "ratio"

    @property
    def max_positions(self) -> int | None:
        return self.trained.max_positions

    @property
    def last_truncated(self) -> list[int]:
        return self.trained.last_truncated

    @property
    def scored_tokens(self) -> int:
        return self.trained.scored_tokens + self.reference.scored_tokens

    def units(self, text: str) -> list[str]:
        return self.trained.units(text)

    def step_scores(self, prompts: Sequence[str], solutions: Sequence[str]) -> list[list[float]]:
        """σ(log s_trained − log s_initial) of each step; 0.0 for a step past the positions (as the trained PRM)."""
        trained = self.trained.step_scores(prompts, solutions)
        reference = self.reference.step_scores(prompts, solutions)
        cut = set(self.trained.last_truncated)
        out = []
        for i, (a, b) in enumerate(zip(trained, reference)):
            row = [_sigmoid_log_ratio(x, y) for x, y in zip(a, b)]
            if i in cut:  # the steps the guard cut keep the trained PRM's 0.0, never a ratio of two zeros
                row = [r if x > 0.0 else 0.0 for r, x in zip(row, a)]
            out.append(row)
        return out

    @classmethod
    def from_pretrained(cls, path, *, batch_size: int = 64, options=None) -> RatioPRM:
        """The trained PRM folder ``path`` and, as reference, the policy it was initialised from (its marker's
        ``init``), checked to be the same files as when the PRM was trained."""
        from roadmap.core.outputs import folder_hash, read_marker

        trained = ProcessRewardModel.from_pretrained(path, batch_size=batch_size, options=options)
        init = ((read_marker(path) or {}).get("inputs") or {}).get("init") or {}
        if not init.get("path"):
            raise MissingPathError(f"{path}: its marker records no initialising policy, which the ratio readout "
                                   f"divides by; retrain it with `roadmap train-prm --init POLICY` (it has "
                                   f"{MARKER}, so plain --prm-format roadmap reads it)")
        if not Path(init["path"]).is_dir():
            raise MissingPathError(f"{path} was initialised from {init['path']}, which is gone; the ratio readout "
                                   "needs that policy folder back at that path (or use --prm-format roadmap)")
        if init.get("sha256") and folder_hash(init["path"]) != init["sha256"]:
            raise ConfigError(f"{path} was initialised from {init['path']}, whose files have changed since "
                              "(fingerprint differs); the ratio readout needs the initialising policy as it was")
        reference = ProcessRewardModel.from_policy(init["path"], step_delimiter=trained.step_delimiter,
                                                   readout="likelihood", batch_size=batch_size, options=options)
        return cls(trained, reference)
