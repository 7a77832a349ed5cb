# make demo: the main job on the embedded sample (tiny model, QLoRA through the real Axolotl CLI, on CPU).
# make test: the test suite. Both create or refresh .venv themselves.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export AXOLOTL_DO_NOT_TRACK := 1
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: venv demo test test-fast lint clean

venv: $(STAMP)

# torch first, pinned to the CPU build on disk; a bare "torch" requirement would pull a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "torch==2.13.0"
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

demo: venv
	$(VENV)/bin/nextai-tiny-model --out .tiny/model
	$(VENV)/bin/nextai-data build --mixture v5 --sample --out data/demo.jsonl
	$(VENV)/bin/accelerate launch --num_processes 1 --mixed_precision no --dynamo_backend no \
		-m axolotl.cli.train recipes/tiny-cpu.yml
	$(PY) -m axolotl_nextai.report outputs/tiny-cpu

# pytest exits 5 when it collects nothing; say so instead of failing CI on an empty selection.
test: venv lint
	$(PY) -m pytest; rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 0; fi; exit $$rc

lint: venv
	$(VENV)/bin/ruff check .

test-fast: venv
	$(PY) -m pytest -m "not slow"

clean:
	rm -rf outputs data .tiny last_run_prepared
