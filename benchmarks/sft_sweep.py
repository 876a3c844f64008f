"""One SFT warm-start configuration on arith, then greedy accuracy on 300 held-out problems.

    python benchmarks/sft_sweep.py NAME '{"max_minutes": 3, "batch_size": 64, "learning_rate": 1e-3}' [TINY_JSON]

The JSON holds ``SFTWarmStartConfig`` fields (and optionally ``TinyConfig`` fields); the run
writes /tmp/sweep_NAME{_init,} and prints one RESULT line: steps, tokens, tokens/s, the last
three logged losses and the accuracy. docs/benchmarks/sft.md's learning-rate table came from this.
"""

from __future__ import annotations

import json
import sys


def main() -> None:
    from policy_init.sft import SFTWarmStartConfig, warm_start
    from policy_init.tiny import TinyConfig, create_tiny
    from roadmap.app.evaluate import evaluate
    from roadmap.core import HFPolicy
    from roadmap.core.tasks import get_task

    name, cfg = sys.argv[1], json.loads(sys.argv[2])
    tiny = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
    task = get_task("arith")
    create_tiny(task, f"/tmp/sweep_{name}_init", TinyConfig(**tiny))
    r = warm_start(f"/tmp/sweep_{name}_init", task,
                   SFTWarmStartConfig(output_dir=f"/tmp/sweep_{name}", logging_steps=100, **cfg))
    rep = evaluate(HFPolicy.from_pretrained(f"/tmp/sweep_{name}"), task, task.problems("test", n=300), method="greedy")
    print("RESULT", name, cfg, tiny, r.steps, r.train_tokens, round(r.tokens_per_second),
          [round(x, 3) for x in r.losses[-3:]], "acc", rep.accuracy, flush=True)


if __name__ == "__main__":
    main()
