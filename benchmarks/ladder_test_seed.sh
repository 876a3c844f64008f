#!/usr/bin/env bash
# Held-out greedy accuracy of ladder policies on the TEST seed (918273), 500 problems per level, through the plain
# CLI (a policy's task.json carries arith's solution format). Usage:
#   bash benchmarks/ladder_test_seed.sh OUT_DIR NAME=POLICY_DIR [NAME=POLICY_DIR ...]
# Writes OUT_DIR/<name>-L<level>.json and prints one line per (policy, level).
set -euo pipefail
out="$1"; shift
mkdir -p "$out"
for spec in "$@"; do
  name="${spec%%=*}"; policy="${spec#*=}"
  for level in ${LEVELS:-2 3 4 6}; do
    roadmap eval --policy "$policy" --task arith --task-arg "min_operands=$level" --task-arg "max_operands=$level" \
      --n "${N:-500}" --seed 918273 --out "$out/$name-L$level.json" > /dev/null
    python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(sys.argv[2], 'L'+sys.argv[3], f\"{r['accuracy']:.3f}\", [round(x, 3) for x in r['ci95']], r['n'])" \
      "$out/$name-L$level.json" "$name" "$level"
  done
done
