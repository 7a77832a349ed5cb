#!/usr/bin/env bash
# The wheel set that lets Axolotl 0.19 QLoRA train on the lent GPU machine (Python 3.12, torch 2.11 + CUDA,
# transformers and accelerate preinstalled; no network). See docs/gpu-machine.md for how it was found.
#
#   bench/gpu/wheels.sh fetch     # here, with PyPI: download into .whl/ (git-ignored, ~16 MiB)
#   bench/gpu/wheels.sh install   # there: unpack into .gpu-site/ and print the PYTHONPATH to export
#   bench/gpu/wheels.sh unsloth   # there: unpack .whl/unsloth/ into .gpu-site-unsloth/ and print that folder, for
#                                 # the runs that train with Unsloth only (bench/gpu/standalone.py --engine unsloth)
#   bench/gpu/wheels.sh data      # here: only what a data build needs beyond the machine's packages (pydantic,
#                                 # click; ~5 MiB) into .whl-data/, for bench/gpu/data.sh, which unpacks it there
#
# install and unsloth unpack once per machine: a later call on a still-warm machine finds the same wheels there
# (their names and sizes, kept in the folder) and skips pip.
set -euo pipefail
cd "$(dirname "$0")/../.."

unpack() {  # FOLDER WHEEL...: pip-install the wheels into FOLDER unless it already holds exactly these
  local folder=$1 stamp; shift
  stamp=$(stat -c '%n %s' "$@")
  [ "$(cat "$folder/.wheels" 2>/dev/null)" = "$stamp" ] && return
  rm -rf "$folder"
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$folder" "$@"
  echo "$stamp" > "$folder/.wheels"
}

case "${1:-}" in
fetch)
  mkdir -p .whl/stub/wandb
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d .whl \
    axolotl==0.19.0 bitsandbytes==0.50.2 peft==0.20.0 datasets==4.8.4 trl==1.9.0 dill==0.4.1 \
    multiprocess==0.70.19 pydantic==2.12.5 pydantic-core==2.41.5 annotated-types==0.8.0 \
    typing-inspection==0.4.5 fire==0.7.1 termcolor==3.3.0 addict==2.4.0 posthog==6.7.11 backoff==2.2.1 \
    distro==1.9.0 fastcore==2.2.41 evaluate==0.4.1 click==8.1.8 liger-kernel==0.8.1
  # sdist only on PyPI, pure Python
  python3 -m pip wheel -q --no-deps --no-binary=:all: axolotl-contribs-lgpl==0.0.7 -w .whl
  # bitsandbytes ships a native library per CUDA (11.8-13.2), ROCm and XPU build: 41 MiB of the 48. Keep the CPU
  # one and the one the GPU machine's torch (CUDA 13.0) loads.
  python3 bench/gpu/trim_wheel.py .whl/bitsandbytes-*.whl --cuda "${BNB_CUDA:-130}"
  # Unsloth, beside the rest: nothing else imports it. Of its wheel's 27 MiB, 26 are its web app (studio/)
  # and CLI, which training never imports; all it needs beyond these two is on the machine or in the set above.
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 -d .whl/unsloth unsloth==2026.10.9 unsloth_zoo==2026.10.9
  python3 bench/gpu/trim_wheel.py .whl/unsloth/unsloth-2026.10.9-py3-none-any.whl --drop studio unsloth_cli
  # transformers imports wandb only if it has `run`; Axolotl imports it unconditionally.
  cat > .whl/stub/wandb/__init__.py <<'PY'
__version__ = "0.0.0+stub"


def __getattr__(name):
    raise AttributeError(name)
PY
  du -sh .whl
  ;;
install)
  unpack "$PWD/.gpu-site" .whl/*.whl
  cp -r .whl/stub/wandb .gpu-site/
  echo "export PYTHONPATH=$PWD/.gpu-site:$PWD"
  ;;
unsloth)
  unpack "$PWD/.gpu-site-unsloth" .whl/unsloth/*.whl
  echo "$PWD/.gpu-site-unsloth"
  ;;
data)
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl-data \
    pydantic==2.12.5 pydantic-core==2.41.5 annotated-types==0.8.0 typing-inspection==0.4.5 click==8.1.8
  du -sh .whl-data
  ;;
install-data)
  unpack "$PWD/.gpu-site-data" .whl-data/*.whl
  echo "export PYTHONPATH=$PWD/.gpu-site-data:$PWD"
  ;;
*)
  echo "usage: $0 fetch|install|unsloth|data|install-data" >&2
  exit 2
  ;;
esac
