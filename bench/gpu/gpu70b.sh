#!/usr/bin/env bash
# The 70B-on-40 GB proof in one GPU call: install the carried wheels, write a synthetic Llama-2-70B pre-quantized
# to NF4 (nextai-synth; for lanes of several ranks a second one stored as bfloat16, which FSDP can shard), make the rows in $DATA (v5.jsonl: 1,000 v5-shaped rows; v5-4096.jsonl: rows of 4,064
# tokens for the cutoff-4,096 tables; v5-grouped.jsonl: the rows of GROUPED_STEPS representative steps, see
# v5_shaped.py), then train each named run (a recipe, or an ablation named in bench/gpu/ablations.yaml; `@tables`
# is every run of the paper's Tables 4-6) through the real Axolotl CLI (or, for an ablation with an `engine`,
# bench/gpu/standalone.py) with only base_model, max_steps, output paths, saving off and the 40 GB memory cap
# overridden. Results land in $OUT.
#
#   bench/gpu/wheels.sh fetch                      # once, here (needs PyPI)
#   device run, carry .whl:  OUT=... bench/gpu/gpu70b.sh @tables   |   recipes/llama2-70b-v5.yml:20 fast-mb2 ...
#   python bench/gpu/report70b.py --call FETCHED --runs RUN... --command "..." --out bench/results/gpu70b-<date>.md
#
# The device returns at most 8 files from its $OUT, and $OUT/work holds a dozen per run: to run this script twice in
# one call, give each its own OUT outside the device's and copy only its gpu70b.tgz there (two OUT subfolders lost
# the second archive once: the first run's work files took the 8 places).
# RUN[:STEPS]: steps from the spec, else the ablation's `steps`, else MAX_STEPS (`@tables:3`: 3 steps each).
# Lanes: GPUS lists one lane per entry; each lane takes the next run of the queue (in the order given) that needs as
# many GPUs as it has, when its last one ends. GPUS=0,1 is a lane per card; GPUS=0,0,0 is three lanes sharing card 0,
# each process capped at CAP_GB, memory read per process and step times marked as shared in the report. Cards joined
# by + are one lane of several ranks (one a card, `accelerate launch --multi_gpu`, each rank capped at CAP_GB): for
# the runs whose ablation says `gpus: N` (bench/gpu/ablations.yaml). GPUS=0,1+2 trains a 1-GPU run on card 0 beside
# a 2-GPU run on cards 1 and 2; GPUS=0+1+2+3 one 4-GPU run; GPUS=cpu+cpu two CPU ranks (the plugin joins them). CALL_LIMIT (seconds from the
# call's start; set it a minute under the device's limit): each run's timeout is cut to what is left, and a run
# that would get less than a minute is skipped.
# Reuse on a still-warm machine: the checkpoint, the rows and the unpacked wheels are written once and found by
# the next call (rows again when their arguments change). For a CPU check of this script:
# GPUS=cpu WHEELS=0 SYNTH_PRESET=tiny CAP_GB= (GPUS=cpu,cpu: two lanes; cpu+cpu: two ranks; no nvidia-smi; the
# current Python).
set -euo pipefail
cd "$(dirname "$0")/../.."
call_start=$(date +%s)
OUT=${OUT:-/tmp/gpu70b-out}
RUN_TIMEOUT=${RUN_TIMEOUT:-240}   # seconds per training run, so the whole call ends inside the device's limit
CALL_LIMIT=${CALL_LIMIT:-}        # empty: no limit for the call as a whole
MAX_STEPS=${MAX_STEPS:-12}
GROUPED_STEPS=${GROUPED_STEPS:-12}
CAP_GB=${CAP_GB-40}     # empty: no cap
CKPT=${CKPT:-/tmp/llama2-70b-nf4}
DATA=${DATA:-/tmp/gpu70b-data}
SYNTH_PRESET=${SYNTH_PRESET:-llama2-70b}
WHEELS=${WHEELS:-1}     # 0: use the Python environment as it is
GPUS=${GPUS:-$(nvidia-smi --query-gpu=index --format=csv,noheader | paste -sd, -)}   # "cpu": a lane on the CPU
WORK="$OUT/work"
mkdir -p "$WORK"
# this call's run configs, outputs, tokenized rows and queue: two calls at once (two test runs on one machine)
# never read each other's
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/gpu70b.XXXXXX")
archive() {  # the device returns at most 8 files: everything goes into one archive; lanes take turns
  ( flock 9; tar czf "$OUT/gpu70b.tgz.partial" -C "$WORK" . && mv "$OUT/gpu70b.tgz.partial" "$OUT/gpu70b.tgz" ) \
    9>"$SCRATCH/archive.lock"
}
trap 'archive; rm -rf "$SCRATCH"' EXIT
if [ "$WHEELS" = 1 ]; then eval "$(bench/gpu/wheels.sh install)"; fi
# time Python's garbage collections in each run (bench/gpu/gc_probe); NEXTAI_BENCH_GC=off turns them off
export PYTHONPATH="$PWD/bench/gpu/gc_probe:$PWD:${PYTHONPATH:-}"
export AXOLOTL_DO_NOT_TRACK=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
export TOKENIZERS_PARALLELISM=false CUDA_DEVICE_ORDER=PCI_BUS_ID   # CUDA's GPU numbers = nvidia-smi's
PY=${PYTHON:-python3}

{
  date -u +"date: %Y-%m-%dT%H:%M:%SZ"
  if [[ $GPUS == *[0-9]* ]]; then
    nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv,noheader | sed 's/^/gpu: /'
  fi
  echo "lanes: $GPUS"
  $PY -c "import sys, torch, transformers, peft, bitsandbytes, axolotl, accelerate; print('python:', sys.version.split()[0]); print('versions: torch', torch.__version__, '| transformers', transformers.__version__, '| peft', peft.__version__, '| bitsandbytes', bitsandbytes.__version__, '| axolotl', axolotl.__version__, '| accelerate', accelerate.__version__)"
  $PY -c "import flash_attn" 2>/dev/null && echo "flash_attn: installed" || echo "flash_attn: not installed"
  $PY -c "from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS as a; print('attention backends:', ' '.join(a))" 2>&1 | tail -1
} > "$WORK/env.txt"
cat "$WORK/env.txt"

start=$(date +%s)
if [ ! -d "$CKPT" ]; then
  rm -rf "$(dirname "$CKPT")/.$(basename "$CKPT")".*.partial   # what a call cut off mid-write left (~35 GB)
  $PY -m axolotl_nextai.models.synth --preset "$SYNTH_PRESET" --out "$CKPT"
fi
if [[ $GPUS == *+* ]] && [ ! -d "$CKPT-bf16" ]; then  # several ranks: FSDP shards 4-bit weights stored as bf16 only
  rm -rf "$(dirname "$CKPT")/.$(basename "$CKPT")-bf16".*.partial
  $PY -m axolotl_nextai.models.synth --preset "$SYNTH_PRESET" --dtype nf4-bf16 --out "$CKPT-bf16"
fi
echo "synth_seconds: $(( $(date +%s) - start ))" >> "$WORK/env.txt"
du -sh "$CKPT" | sed 's/^/checkpoint_size: /' >> "$WORK/env.txt"

rows() {  # FILE ARGS...: write $DATA/FILE with v5_shaped.py, unless an earlier call wrote it with the same arguments
  local out="$DATA/$1" stamp; shift
  stamp="$* --tokenizer $CKPT"
  if [ -f "$out" ] && [ "$(cat "$out.args" 2>/dev/null)" = "$stamp" ]; then echo "reused $out"; return; fi
  rm -f "$out.args"
  $PY bench/gpu/v5_shaped.py --tokenizer "$CKPT" "$@" --out "$out"
  echo "$stamp" > "$out.args"
}
# the recipes' data/<file> is read from $DATA: synthetic rows never overwrite a real data/v5.jsonl
rows v5.jsonl --rows 1000
rows v5-4096.jsonl --rows 64 --tokens 4064
rows v5-grouped.jsonl --grouped "$GROUPED_STEPS"
echo "setup_seconds: $(( $(date +%s) - call_start ))" >> "$WORK/env.txt"

train() {  # train RUN:STEPS:GPUS on a lane's GPUS (cards joined by +, or cpu), leaving its files in $WORK
  local spec=$1 gpu=$2 run steps name engine limit=$RUN_TIMEOUT left cfg probes=() card rc run_start site ranks launch
  run=${spec%%:*}; steps=${spec#*:}; steps=${steps%%:*}; name=$(basename "$run" .yml)
  IFS=+ read -ra cards <<< "$gpu"; ranks=${#cards[@]}
  launch=(--num_processes 1)
  [ "$ranks" -gt 1 ] && launch=(--multi_gpu --num_processes "$ranks")
  if [ -n "$CALL_LIMIT" ]; then
    # 45 s kept back: a stopped run finishes its step and saves (killed 30 s after the signal), then the archive
    left=$(( CALL_LIMIT - ($(date +%s) - call_start) - 45 ))
    if [ "$left" -lt 60 ]; then
      echo "rc=skipped wall_seconds=0 gpu=$gpu" > "$WORK/$name.rc"
      echo "== $name: skipped, $left s left of CALL_LIMIT=$CALL_LIMIT"
      return
    fi
    [ "$left" -lt "$limit" ] && limit=$left
  fi
  engine=$($PY bench/gpu/run_config.py "$run" --engine)
  # the overrides go into a copy of the config: Axolotl's CLI parses `--save_strategy no` as a boolean. Each run
  # tokenizes into its own folder: lanes running side by side never write the same one. The run report is
  # written every step, so a run stopped at its time limit still reports the steps it made.
  cfg="$SCRATCH/cfg-$name.yml"
  $PY bench/gpu/run_config.py "$run" --out "$cfg" --data-dir "$DATA" --set base_model="$CKPT$([ "$ranks" -gt 1 ] && echo -bf16)" \
    --set max_steps="$steps" --set nextai_peak_tflops=790.0 --set nextai_report_every_steps=1 \
    --set output_dir="$SCRATCH/out-$name" --set dataset_prepared_path="$SCRATCH/prep-$name" \
    --set save_strategy='"no"' --set saves_per_epoch=null ${CAP_GB:+--set nextai_gpu_memory_cap_gb="$CAP_GB"} \
    $([[ $gpu == cpu* ]] && echo --cpu)
  cp "$cfg" "$WORK/$name.cfg.yml"
  if [[ $gpu != cpu* ]]; then  # nvidia-smi's view of each card: the card's total and this run's processes
    for card in "${cards[@]}"; do
      $PY bench/gpu/gpu_memory_probe.py --gpu "$card" --match "$cfg" > "$WORK/$name.smi.$card.txt" &
      probes+=($!)
    done
  fi
  run_start=$(date +%s)
  set +e
  export CUDA_VISIBLE_DEVICES=$([[ $gpu == cpu* ]] && echo "" || echo "${gpu//+/,}")
  export NEXTAI_BENCH_PROFILE_OUT="$WORK/$name.profile.md"   # read only by a run with bench/gpu/step_profile.py
  if [ "$engine" = axolotl ]; then
    timeout -k 30 "$limit" $PY -m accelerate.commands.launch "${launch[@]}" --num_machines 1 \
      --mixed_precision "$([[ $gpu == cpu* ]] && echo no || echo bf16)" --dynamo_backend no \
      -m axolotl.cli.train "$cfg" > "$WORK/$name.log" 2>&1
  elif [ "$engine" = unsloth ]; then      # Unsloth on the path of its own runs only
    site=$(bench/gpu/wheels.sh unsloth 2>"$WORK/$name.log") && PYTHONPATH="$site:$PYTHONPATH" timeout -k 30 "$limit" \
      $PY bench/gpu/standalone.py --engine unsloth "$cfg" >> "$WORK/$name.log" 2>&1
  else
    timeout -k 30 "$limit" $PY bench/gpu/standalone.py --engine "$engine" "$cfg" > "$WORK/$name.log" 2>&1
  fi
  rc=$?
  set -e
  [ ${#probes[@]} -eq 0 ] || kill "${probes[@]}"
  echo "rc=$rc wall_seconds=$(( $(date +%s) - run_start )) gpu=$gpu start=$run_start end=$(date +%s)" > "$WORK/$name.rc"
  cp "$SCRATCH/out-$name/nextai_report.json" "$WORK/$name.report.json" 2>/dev/null || true
  archive                                    # after each run too: a call cut off at its limit keeps the runs done
  echo "== $name (gpu $gpu): $(cat "$WORK/$name.rc")"
  tail -3 "$WORK/$name.log"
}

queue=$SCRATCH/queue
$PY bench/gpu/run_config.py --specs "$@" --default-steps "$MAX_STEPS" > "$queue"
next_run() {  # the queue's first RUN:STEPS:GPUS line needing $1 GPUs, removed; lanes take turns
  ( flock 8; line=$(grep -n -m 1 ":$1\$" "$queue" | cut -d: -f1)
    [ -z "$line" ] || { sed -n "${line}p" "$queue"; sed -i "${line}d" "$queue"; } ) 8>"$queue.lock"
}
IFS=, read -ra lanes <<< "$GPUS"
for gpu in "${lanes[@]}"; do
  width=$(( $(tr -cd + <<< "$gpu" | wc -c) + 1 ))
  ( while spec=$(next_run "$width") && [ -n "$spec" ]; do train "$spec" "$gpu"; done ) &
done
wait
