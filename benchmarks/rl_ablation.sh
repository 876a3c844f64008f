#!/usr/bin/env bash
# The ScaleRL ablation of docs/benchmarks/rl.md (issue 14): one 40-step run per arm from the same policy, equal compute.
#   bash benchmarks/rl_ablation.sh POLICY OUT
# then: python benchmarks/rl_scale.py report --out OUT --results benchmarks/results/rl_ablation --bootstrap 100
set -euo pipefail
P=${1:?policy folder}
O=${2:?output folder}
cd "$(dirname "$0")/.."
run() { python benchmarks/rl_scale.py run --policy "$P" --out "$O" --lr 1e-5 --steps 40 --eval-every 10 \
        --set warmup_steps=10 "$@"; }
run --name scalerl
run --name lag8 --set max_lag=8
run --name dapo_lag8 --set max_lag=8 --set loss_type=dapo --set epsilon_high=0.28
run --name grpo_lag8 --set max_lag=8 --set loss_type=grpo --set epsilon_high=0.2
run --name gspo_lag8 --set max_lag=8 --set loss_type=gspo --set epsilon_high=0.0004
run --name token_agg --set prompt_level_loss=false
run --name no_zvf --set zero_variance_filter=false
run --name group_norm --set scale_rewards=group
run --name bf16_head --set fp32_lm_head=false
