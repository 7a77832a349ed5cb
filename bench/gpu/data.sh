#!/usr/bin/env bash
# Issue 27's GPU runs, in one device call each (predictions: bench/results/data-gpu-predictions.md, written first):
#
#   here:   bench/gpu/wheels.sh data                                   # pydantic + click wheels, ~5 MiB
#           PYTHONPATH=. python bench/near_dedup.py --save-model .gpu-bench/minilm   # MiniLM, fp16-stored, 45 MB
#   there:  bash bench/gpu/data.sh v5       # goal 4: the v5 build on the GPU, end to end, and on the machine's CPU
#                                           #   cores, same written rows; the 45,000-row pass fp32 vs fp16-screened
#           bash bench/gpu/data.sh 1m       # goal 5: 1,000,000 rows, fp16-screened and fp32, same kept set
#
# carry: .whl-data .gpu-bench/minilm. Reports land in $OUT (the call's output folder), else bench/results/.
set -euo pipefail
cd "$(dirname "$0")/../.."
eval "$(bench/gpu/wheels.sh install-data)"
MODEL=.gpu-bench/minilm
RESULTS=${OUT:-bench/results}
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
case "${1:-}" in
v5)
  python3 bench/data_build.py --device cuda --compare-device cpu --model "$MODEL" --mixtures v5 --results "$RESULTS"
  python3 bench/near_dedup.py --rows 45000 --device cuda --model "$MODEL" --methods exact,exact-screen-fp16 \
    --results "$RESULTS"
  ;;
1m)  # METHODS=exact-screen-fp16 for the screened pass alone, if a call cannot hold both
  python3 bench/near_dedup.py --rows 1000000 --device cuda --model "$MODEL" \
    --methods "${METHODS:-exact-screen-fp16,exact}" --results "$RESULTS"
  ;;
*)
  echo "usage: $0 v5|1m" >&2
  exit 2
  ;;
esac
