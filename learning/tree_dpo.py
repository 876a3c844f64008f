"""DPO on pairs from search trees, through TRL's DPOTrainer; the reference model is the previous policy.

Pairs come from ``learning.data``: solution-level (a verified solution against a wrong one of the
same problem) and step-level (siblings under one prefix whose MCTS Q-values differ by more than a
margin, each finished along its best path). Both are plain prompt/chosen/rejected rows, so one
DPO run takes a mix of them.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from roadmap.core.io import replace_dir

__all__ = ["TreeDPOConfig", "tree_dpo_step"]


@dataclass
class TreeDPOConfig:
    """Knobs of one DPO update on tree pairs."""

    output_dir: str = field(default="dpo-policy", metadata={"help": "Where the updated policy is written."})
    beta: float = field(default=0.1, metadata={"help": "DPO temperature: how far the policy may move from the reference."})
    loss_type: str = field(default="sigmoid", metadata={"help": "TRL DPO loss ('sigmoid', 'ipo', 'hinge', ...)."})
    sft_weight: float = field(default=0.0, metadata={
        "help": "Weight of an NLL term on the chosen side (RPO), which keeps chosen likelihoods up."})
    epochs: float = field(default=1.0, metadata={"help": "Passes over the pairs."})
    max_minutes: float | None = field(default=None, metadata={"help": "Wall-time budget."})
    learning_rate: float = field(default=1e-4, metadata={"help": "Peak learning rate."})
    batch_size: int = field(default=32, metadata={"help": "Pairs per optimizer step."})
    max_length: int = field(default=256, metadata={"help": "Longest prompt + completion, in tokens."})
    seed: int = field(default=0, metadata={"help": "Data order seed."})
    margin: float = field(default=0.3, metadata={
        "help": "Step pairs: siblings whose MCTS Q-values differ by more than this (learning.data.step_pairs)."})


def tree_dpo_step(policy_dir: str | Path, pairs, config: TreeDPOConfig | None = None) -> dict[str, Any]:
    """DPO-train the policy in ``policy_dir`` on ``pairs`` (prompt/chosen/rejected); return a summary.

    The reference model is a frozen copy of ``policy_dir``. The new policy is written to
    ``config.output_dir`` (temporary folder, then rename) with ``dpo_result.json``.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    from roadmap.core.training import BudgetMixin

    config = config or TreeDPOConfig()
    if len(pairs) == 0:
        raise ValueError("no preference pairs: the trees held no correct/incorrect contrast; search more or lower the margin")
    src = Path(policy_dir)
    if not (src / "config.json").exists():
        raise FileNotFoundError(f"policy_dir={str(policy_dir)!r} has no config.json; pass a saved policy folder")
    out = Path(config.output_dir)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    torch.manual_seed(config.seed)
    tokenizer = AutoTokenizer.from_pretrained(src)
    model = AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32)
    ref = AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32)
    # RPO-style: an NLL term on the chosen side, through TRL's multi-loss weights
    losses, weights = ([config.loss_type, "sft"], [1.0, config.sft_weight]) if config.sft_weight else ([config.loss_type], None)
    args = DPOConfig(
        output_dir=str(tmp / "trainer"), per_device_train_batch_size=config.batch_size, num_train_epochs=config.epochs,
        learning_rate=config.learning_rate, beta=config.beta, loss_type=losses, loss_weights=weights, max_length=config.max_length,
        logging_steps=10, save_strategy="no", report_to="none", seed=config.seed, use_cpu=not torch.cuda.is_available(),
        gradient_checkpointing=False, dataloader_num_workers=0, warmup_steps=0.05, lr_scheduler_type="cosine",
    )

    class BudgetDPOTrainer(BudgetMixin, DPOTrainer):
        def __init__(self, *a, max_seconds=None, **kw):
            super().__init__(*a, **kw)
            self.init_budget(max_seconds)

    trainer = BudgetDPOTrainer(model=model, ref_model=ref, args=args, train_dataset=pairs.shuffle(seed=config.seed),
                               processing_class=tokenizer,
                               max_seconds=config.max_minutes * 60 if config.max_minutes else None)
    t0 = time.perf_counter()
    trainer.train()
    wall = time.perf_counter() - t0
    logs = trainer.state.log_history
    losses = [h["loss"] for h in logs if "loss" in h]
    margins = [h["rewards/margins"] for h in logs if "rewards/margins" in h]
    trainer.model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    shutil.rmtree(tmp / "trainer", ignore_errors=True)
    result = {"output_dir": str(out), "steps": trainer.state.global_step, "pairs": len(pairs), "wall_seconds": wall,
              "train_tokens": trainer.train_tokens, "first_loss": losses[0] if losses else None,
              "final_loss": losses[-1] if losses else None, "final_margin": margins[-1] if margins else None,
              "losses": losses, "config": asdict(config)}
    (tmp / "dpo_result.json").write_text(json.dumps(result, indent=2))
    replace_dir(tmp, out)
    return result
