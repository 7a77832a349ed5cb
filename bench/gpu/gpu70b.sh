#!/usr/bin/env bash
# The 70B-on-40 GB proof in one GPU call: install the carried wheels, write a synthetic Llama-2-70B pre-quantized
# to NF4 (nextai-synth), make v5-shaped rows (data/v5.jsonl: 1,000 random rows; data/v5-grouped.jsonl: the rows
# of GROUPED_STEPS representative steps, see v5_shaped.py), then train each named run (a recipe, or an ablation
# named in bench/gpu/ablations.yaml) through the real Axolotl CLI (or, for an ablation with an `engine`,
# bench/gpu/standalone.py) with only base_model, max_steps, output paths, saving off and the 40 GB memory cap
# overridden. Runs go in the order given; with CALL_LIMIT (seconds from the call's start) each run's timeout is
# cut to what is left and a run that would get less than a minute is skipped. Results land in $OUT.
#
#   bench/gpu/wheels.sh fetch                      # once, here (needs PyPI)
#   device run, carry .whl:  OUT=... bench/gpu/gpu70b.sh recipes/llama2-70b-v5.yml:20 fast-mb2-offload ...
#   python bench/gpu/report70b.py --call FETCHED --runs RUN... --command "..." --out bench/results/gpu70b-<date>.md
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/gpu70b-out}
RUN_TIMEOUT=${RUN_TIMEOUT:-240}   # seconds per training run, so the whole call ends inside the device's limit
MAX_STEPS=${MAX_STEPS:-12}
CAP_GB=${CAP_GB-40}     # empty: no cap
CKPT=${CKPT:-/tmp/llama2-70b-nf4}
CALL_LIMIT=${CALL_LIMIT:-}     # empty: no limit for the call as a whole
GROUPED_STEPS=${GROUPED_STEPS:-12}
call_start=$(date +%s)
WORK="$OUT/work"
mkdir -p "$WORK"
# the device returns at most 8 files: everything goes into one archive, also when a step fails
trap 'tar czf "$OUT/gpu70b.tgz" -C "$WORK" .' EXIT
eval "$(bench/gpu/wheels.sh install)"
# time Python's garbage collections in each run (bench/gpu/gc_probe); NEXTAI_BENCH_GC=off turns them off
export PYTHONPATH="$PWD/bench/gpu/gc_probe:$PYTHONPATH"
export AXOLOTL_DO_NOT_TRACK=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
export TOKENIZERS_PARALLELISM=false

{
  date -u +"date: %Y-%m-%dT%H:%M:%SZ"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | sed 's/^/gpu: /'
  python3 -c "import sys, torch, transformers, peft, bitsandbytes, axolotl, accelerate; print('python:', sys.version.split()[0]); print('versions: torch', torch.__version__, '| transformers', transformers.__version__, '| peft', peft.__version__, '| bitsandbytes', bitsandbytes.__version__, '| axolotl', axolotl.__version__, '| accelerate', accelerate.__version__)"
  python3 -c "import flash_attn" 2>/dev/null && echo "flash_attn: installed" || echo "flash_attn: not installed"
} > "$WORK/env.txt"
cat "$WORK/env.txt"

start=$(date +%s)
[ -d "$CKPT" ] || python3 -m axolotl_nextai.synth --preset llama2-70b --out "$CKPT"
echo "synth_seconds: $(( $(date +%s) - start ))" >> "$WORK/env.txt"
du -sh "$CKPT" | sed 's/^/checkpoint_size: /' >> "$WORK/env.txt"
python3 bench/gpu/v5_shaped.py --tokenizer "$CKPT" --rows 1000 --out data/v5.jsonl
python3 bench/gpu/v5_shaped.py --tokenizer "$CKPT" --grouped "$GROUPED_STEPS" --out data/v5-grouped.jsonl

for spec in "$@"; do
  run=${spec%%:*}                                            # RUN or RUN:STEPS
  steps=$MAX_STEPS; [[ $spec == *:* ]] && steps=${spec##*:}
  name=$(basename "$run" .yml)
  limit=$RUN_TIMEOUT
  if [ -n "$CALL_LIMIT" ]; then
    left=$(( CALL_LIMIT - ($(date +%s) - call_start) - 15 ))   # 15 s for the archive and the return
    if [ "$left" -lt 60 ]; then
      echo "rc=skipped wall_seconds=0" > "$WORK/$name.rc"
      echo "$name: skipped, $left s left of CALL_LIMIT=$CALL_LIMIT"
      continue
    fi
    [ "$left" -lt "$limit" ] && limit=$left
  fi
  engine=$(python3 bench/gpu/run_config.py "$run" --engine)
  # the overrides go into a copy of the config: Axolotl's CLI parses `--save_strategy no` as a boolean. The
  # tokenized data are shared: Axolotl keys them by the dataset settings, the plugin by the file's content.
  python3 bench/gpu/run_config.py "$run" --out "/tmp/cfg-$name.yml" --set base_model="$CKPT" \
    --set max_steps="$steps" --set nextai_peak_tflops=790.0 --set output_dir="/tmp/out-$name" \
    --set dataset_prepared_path=/tmp/prepared --set save_strategy='"no"' --set saves_per_epoch=null \
    ${CAP_GB:+--set nextai_gpu_memory_cap_gb="$CAP_GB"}
  cp "/tmp/cfg-$name.yml" "$WORK/$name.cfg.yml"
  rm -rf "/tmp/out-$name"                                    # no report left from an earlier call on this machine
  # nvidia-smi's view (context, cuBLAS workspace and the paged optimizer's managed memory included)
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 500 > "$WORK/$name.smi.txt" &
  smi=$!
  run_start=$(date +%s)
  set +e
  if [ "$engine" = axolotl ]; then
    timeout "$limit" python3 -m accelerate.commands.launch --num_processes 1 --num_machines 1 \
      --mixed_precision bf16 --dynamo_backend no -m axolotl.cli.train "/tmp/cfg-$name.yml" > "$WORK/$name.log" 2>&1
  elif [ "$engine" = unsloth ]; then      # Unsloth on the path of its own runs only
    site=$(bench/gpu/wheels.sh unsloth 2>"$WORK/$name.log") && PYTHONPATH="$site:$PYTHONPATH" timeout "$limit" \
      python3 bench/gpu/standalone.py --engine unsloth "/tmp/cfg-$name.yml" >> "$WORK/$name.log" 2>&1
  else
    timeout "$limit" python3 bench/gpu/standalone.py --engine "$engine" "/tmp/cfg-$name.yml" > "$WORK/$name.log" 2>&1
  fi
  rc=$?
  set -e
  kill $smi
  echo "rc=$rc wall_seconds=$(( $(date +%s) - run_start ))" > "$WORK/$name.rc"
  cp "/tmp/out-$name/nextai_report.json" "$WORK/$name.report.json" 2>/dev/null || true
  tar czf "$OUT/gpu70b.tgz" -C "$WORK" .     # after each run too: a call cut off at its limit keeps the runs done
  tail -5 "$WORK/$name.log"
  cat "$WORK/$name.rc"
done
